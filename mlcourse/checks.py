"""Exercise checkers: call one on your answer; it prints a pass line or raises an AssertionError that
says what is wrong (never just "wrong").

    >>> from mlcourse import checks
    >>> checks.check_precision_recall_f1(my_prf)
    ✅ Exercise 0.1 passed: precision, recall and F1 match on 6 cases, including the edge cases.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_precision_recall_f1", "check_group_split", "check_diagnose_fit", "check_psi", "check_tf_config",
           "check_scaled_learning_rate", "check_kd_loss", "check_majority_vote", "check_validate"]


def _passed(exercise: str, what: str) -> None:
    print(f"✅ Exercise {exercise} passed: {what}")


def _close(a, b, tol=1e-6) -> bool:
    return abs(float(a) - float(b)) <= tol


def check_precision_recall_f1(fn) -> None:
    """Exercise 0.1: ``fn(y_true, y_pred) -> (precision, recall, f1)`` for binary labels."""
    from mlcourse.evaluation import precision_recall_f1 as ref

    cases = [
        ([1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0], "a mixed case"),
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0] * 10, "a model that never predicts positive"),
        ([0, 0, 0, 0], [0, 0, 1, 0], "no positives in y_true"),
        ([1, 1, 1, 0], [1, 1, 1, 1], "a model that flags everything"),
        ([1, 0, 1, 0], [1, 0, 1, 0], "a perfect model"),
        (list(np.random.default_rng(0).integers(0, 2, 200)), list(np.random.default_rng(1).integers(0, 2, 200)),
         "200 random labels"),
    ]
    for y, p, what in cases:
        got = fn(np.array(y), np.array(p))
        assert isinstance(got, (tuple, list)) and len(got) == 3, (
            f"Return a tuple (precision, recall, f1); got {got!r}.")
        want = ref(y, p)
        for name, g, w in zip(("precision", "recall", "f1"), got, want):
            assert g is not None and np.isfinite(g), (
                f"{name} is {g} for {what}: when a ratio is 0/0, return 0.0 (as scikit-learn's zero_division=0).")
            assert _close(g, w), (
                f"{name} is {g:.4f} for {what} (y_true={y[:10]}, y_pred={p[:10]}); expected {w:.4f}. "
                "precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = their harmonic mean.")
    return _passed("0.1", f"precision, recall and F1 match on {len(cases)} cases, including the edge cases.")


def check_group_split(fn) -> None:
    """Exercise 0.2: ``fn(groups, test_size, seed) -> (train_idx, test_idx)`` keeping each group on one side."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(100), rng.integers(1, 8, 100))
    rng.shuffle(groups)
    train, test = fn(groups, 0.2, 0)
    train, test = np.asarray(train), np.asarray(test)
    assert train.ndim == 1 and test.ndim == 1 and np.issubdtype(train.dtype, np.integer), (
        "Return two 1-D integer arrays of row indices (train_idx, test_idx).")
    assert len(np.intersect1d(train, test)) == 0, "A row is in both train and test."
    assert len(train) + len(test) == len(groups) and len(np.union1d(train, test)) == len(groups), (
        f"Every row must be in exactly one side: {len(train)} + {len(test)} rows for {len(groups)}.")
    shared = np.intersect1d(groups[train], groups[test])
    assert len(shared) == 0, (
        f"{len(shared)} groups (e.g. {shared[:5].tolist()}) are on both sides: that is the leak. Split the "
        "unique group ids, then take every row of each group.")
    share = len(np.unique(groups[test])) / len(np.unique(groups))
    assert 0.15 <= share <= 0.25, f"test holds {share:.0%} of the groups; test_size=0.2 asks for about 20 %."
    again = fn(groups, 0.2, 0)
    assert np.array_equal(np.sort(again[1]), np.sort(test)), "The same seed must give the same split."
    other = fn(groups, 0.2, 1)
    assert not np.array_equal(np.sort(other[1]), np.sort(test)), "A different seed should give a different split."
    return _passed("0.2", f"no group on both sides, {share:.0%} of groups in test, deterministic by seed.")


def check_diagnose_fit(fn) -> None:
    """Exercise 0.3: ``fn(train_score, val_score, target) -> 'underfitting' | 'overfitting' | 'good fit'``."""
    cases = [
        (0.99, 0.80, 0.90, "overfitting", "train far above validation"),
        (0.70, 0.69, 0.90, "underfitting", "both low, below the target"),
        (0.93, 0.91, 0.90, "good fit", "both high, small gap"),
        (0.60, 0.40, 0.90, "overfitting", "a large gap wins even below the target"),
    ]
    for tr, va, target, want, what in cases:
        got = fn(tr, va, target)
        assert got == want, (f"train={tr}, validation={va}, target={target} ({what}): you said {got!r}, "
                             f"expected {want!r}. Look at the gap first (> 0.05 is overfitting), then at the "
                             "train score against the target.")
    return _passed("0.3", f"all {len(cases)} learning-curve readings diagnosed correctly.")


def check_psi(fn) -> None:
    """Exercise 0.4: ``fn(expected, actual, bins) -> float`` Population Stability Index."""
    from mlcourse.drift import psi as ref

    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    cases = [(base, rng.normal(size=5000), "two samples of the same distribution"),
             (base, rng.normal(0.5, 1, 5000), "a mean shift of half a standard deviation"),
             (base, rng.normal(0, 2, 5000), "a doubled spread"),
             (base, np.full(1000, 10.0), "everything in one bin (empty bins need an epsilon)")]
    for e, a, what in cases:
        got, want = fn(e, a, 10), ref(e, a, 10)
        assert got is not None and np.isfinite(got), (
            f"PSI is {got} for {what}: clip empty bin shares to a small epsilon (1e-4) before the log.")
        assert abs(got - want) <= 0.02 * max(1.0, abs(want)), (
            f"PSI is {got:.4f} for {what}; expected about {want:.4f}. Use the quantiles of `expected` as bin "
            "edges (open-ended at both ends) and sum (a - e) * ln(a / e) over bin shares.")
    assert fn(base, base, 10) < 1e-9, "PSI of a sample against itself must be 0."
    return _passed("0.4", "PSI matches the reference on no shift, mean shift, spread shift and empty bins.")


# ------------------------------------------------------------------------------ 04 compression exercises
def check_magnitude_prune(fn) -> None:
    """Exercise 4.1: ``fn(weights, sparsity) -> pruned copy`` zeroing the smallest-magnitude weights."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32)).astype(np.float32)
    original = w.copy()
    for s in (0.0, 0.5, 0.9):
        out = np.asarray(fn(w, s))
        assert np.array_equal(w, original), "Do not change the input array in place: return a pruned copy."
        assert out.shape == w.shape, f"The result has shape {out.shape}, the weights {w.shape}."
        zeros = (out == 0).mean()
        assert abs(zeros - s) <= 1 / w.size + 1e-9, (
            f"sparsity={s}: {zeros:.1%} of the weights are zero; expected {s:.0%}.")
        kept = out != 0
        assert np.array_equal(out[kept], w[kept]), "Weights you keep must keep their values (no rescaling)."
        if 0 < s:
            assert np.abs(w[~kept]).max() <= np.abs(w[kept]).min() + 1e-12, (
                "You zeroed a weight larger in magnitude than one you kept: sort by |w|, not by w.")
    _passed("4.1", "the smallest-magnitude weights are zeroed at sparsities 0, 50 % and 90 %.")


def check_int8_quantize(fn) -> None:
    """Exercise 4.2: ``fn(w) -> (q, scale)``: symmetric per-tensor int8, ``w ≈ q * scale``."""
    rng = np.random.default_rng(1)
    for w in (rng.normal(size=1000).astype(np.float32), np.array([-0.5, 0.0, 0.25, 2.0], np.float32)):
        q, scale = fn(w)
        q = np.asarray(q)
        assert q.dtype == np.int8, f"q must be int8, got {q.dtype}."
        assert q.min() >= -127 and q.max() <= 127, "Symmetric int8 uses -127..127 (keep -128 unused)."
        assert np.isclose(scale, np.abs(w).max() / 127, rtol=1e-5), (
            f"scale is {scale}; the symmetric scale maps the largest |w| ({np.abs(w).max():.4f}) to 127.")
        err = np.abs(q.astype(np.float32) * scale - w).max()
        assert err <= scale / 2 + 1e-6, f"Rounding error {err:.4g} exceeds half a step ({scale / 2:.4g}): round, do not truncate."
    _passed("4.2", "int8 values in [-127, 127], the right scale, error within half a quantization step.")


def check_low_rank(fn) -> None:
    """Exercise 4.3: ``fn(W, r) -> (A, B)`` with ``A @ B`` the best rank-``r`` approximation of ``W``."""
    rng = np.random.default_rng(2)
    W = rng.normal(size=(60, 40))
    s = np.linalg.svd(W, compute_uv=False)
    for r in (1, 5, 20):
        A, B = fn(W, r)
        A, B = np.asarray(A), np.asarray(B)
        assert A.shape == (60, r) and B.shape == (r, 40), (
            f"rank {r}: A must be (60, {r}) and B ({r}, 40); got {A.shape} and {B.shape}.")
        err, best = np.linalg.norm(W - A @ B), np.sqrt((s[r:] ** 2).sum())
        assert err <= best * (1 + 1e-6), (
            f"rank {r}: ||W - AB|| = {err:.3f}, the optimum (Eckart-Young) is {best:.3f}. Keep the {r} largest "
            "singular values: A = U[:, :r] * S[:r], B = Vt[:r].")
    _passed("4.3", "A @ B reaches the Eckart-Young optimum at ranks 1, 5 and 20.")


# ---------------------------------------------------------------- 03 dimensionality reduction exercises
def check_relative_contrast(fn) -> None:
    """Exercise 3.1: ``fn(points, query) -> (d_max - d_min) / d_min`` with Euclidean distances."""
    from mlcourse.reduction import relative_contrast as ref

    rng = np.random.default_rng(3)
    for d in (2, 50):
        pts, q = rng.random((200, d)), rng.random(d)
        got, want = fn(pts, q), ref(pts, q)
        assert np.isclose(got, want, rtol=1e-6), (
            f"In {d} dimensions you return {got:.4f}, expected {want:.4f}: use Euclidean distances (not squared) "
            "from the query to every point, then (max - min) / min.")
    _passed("3.1", "relative contrast matches in 2 and 50 dimensions.")


def check_pca(fn) -> None:
    """Exercise 3.2: ``fn(X, k) -> (components (k, d), explained_variance_ratio (k,))`` by SVD."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 5.0  # correlated, far from the origin
    comps, ratio = fn(X, 3)
    comps, ratio = np.asarray(comps), np.asarray(ratio)
    ref = PCA(3).fit(X)
    assert comps.shape == (3, 6) and ratio.shape == (3,), (
        f"Return components of shape (3, 6) and ratios of shape (3,); got {comps.shape} and {ratio.shape}.")
    assert np.allclose(ratio, ref.explained_variance_ratio_, atol=1e-6), (
        f"explained variance ratios {np.round(ratio, 4)} differ from {np.round(ref.explained_variance_ratio_, 4)}: "
        "did you centre X first? ratio = S**2 / sum(S**2) over *all* singular values.")
    dots = np.abs(np.sum(comps * ref.components_, axis=1))
    assert np.allclose(dots, 1, atol=1e-4), (
        "Your components are not the principal axes (up to sign): take the first k rows of Vt from "
        "np.linalg.svd(X - X.mean(0), full_matrices=False).")
    _passed("3.2", "components (up to sign) and explained variance ratios match scikit-learn's PCA.")


# ------------------------------------------------------------------------- 01 tuning and 02 NAS exercises
def check_sample_point(fn) -> None:
    """Exercise 1.1: ``fn(space, rng) -> dict``: one random point of a search space like ``tuning.SPACE``."""
    from mlcourse.tuning import SPACE

    pts = [fn(SPACE, np.random.default_rng(i)) for i in range(400)]
    for p in pts[:50]:
        assert set(p) == set(SPACE), f"Return one value per hyperparameter {sorted(SPACE)}; got {sorted(p)}."
        for name, (kind, spec) in SPACE.items():
            if kind == "choice":
                assert p[name] in spec, f"{name}={p[name]!r} is not one of {spec}."
            elif kind == "float":
                lo, hi, step = spec
                assert lo - 1e-9 <= p[name] <= hi + 1e-9 and abs(round((p[name] - lo) / step) * step + lo - p[name]) < 1e-6, (
                    f"{name}={p[name]} must be on the grid {lo}, {lo + step}, ..., {hi}.")
            else:
                assert spec[0] <= p[name] <= spec[1], f"{name}={p[name]} is outside {spec}."
    assert fn(SPACE, np.random.default_rng(7)) == fn(SPACE, np.random.default_rng(7)), (
        "Use the rng you are given (same seed, same point), not np.random or random.")
    lrs = np.array([p["learning_rate"] for p in pts])
    share_low = np.mean(lrs < 1e-3)
    assert 0.38 <= share_low <= 0.62, (
        f"{share_low:.0%} of learning rates fall below 1e-3, the geometric middle of [1e-4, 1e-2]; log sampling "
        "gives about 50 % (uniform sampling gives 9 %). Sample the exponent uniformly: 10 ** uniform(-4, -2).")
    _passed("1.1", "valid points, reproducible by seed, learning rate sampled on a log scale.")


def check_successive_halving(fn) -> None:
    """Exercise 1.2: ``fn(scores, factor) -> indices`` of the trials that go on (best first)."""
    cases = [([0.5, 0.9, 0.7, 0.1, 0.8, 0.3, 0.6, 0.2, 0.4], 3, [1, 4, 2]),
             ([0.2, 0.4], 3, [1]), ([0.3, 0.1, 0.2, 0.9], 2, [3, 0])]
    for scores, factor, want in cases:
        got = [int(i) for i in fn(np.array(scores), factor)]
        assert got == want, (f"scores={scores}, factor={factor}: you kept {got}, expected {want}. Keep the best "
                             "max(1, n // factor) trials, as indices into scores, best first.")
    _passed("1.2", "the top 1/factor of trials go on to the next rung, best first.")


def check_tournament_select(fn) -> None:
    """Exercise 2.1: ``fn(population, sample_size, rng) -> arch``: best of a random sample of the population."""
    pop = [({"id": i}, s) for i, s in enumerate([0.3, 0.9, 0.5, 0.1, 0.7])]
    for seed in range(20):
        assert fn(pop, len(pop), np.random.default_rng(seed)) == {"id": 1}, (
            "With sample_size = the whole population, the best member (score 0.9) must win every time.")
    picks = [fn(pop, 1, np.random.default_rng(seed))["id"] for seed in range(300)]
    counts = np.bincount(picks, minlength=5)
    assert (counts > 20).all(), (f"With sample_size=1 every member should win sometimes (uniform); wins: "
                                 f"{counts.tolist()}. Sample the contenders at random, without replacement.")
    picks2 = [fn(pop, 2, np.random.default_rng(seed))["id"] for seed in range(300)]
    assert 3 not in picks2, "The worst member can never win a tournament of 2 distinct contenders."
    assert fn(pop, 2, np.random.default_rng(5)) == fn(pop, 2, np.random.default_rng(5)), "Use the rng you are given."
    _passed("2.1", "tournament selection: the best of a uniform random sample, reproducible by seed.")


def check_spearman(fn) -> None:
    """Exercise 2.2: ``fn(a, b) -> float``: Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(6)
    cases = [(rng.random(20), rng.random(20), "random scores"), ([1, 2, 3, 4], [10, 20, 30, 40], "same order"),
             ([1, 2, 3, 4], [4, 3, 2, 1], "reversed"), ([0.5, 0.5, 0.7, 0.1, 0.7], [1, 2, 3, 0, 3], "ties")]
    for a, b, what in cases:
        got, want = fn(np.asarray(a), np.asarray(b)), spearmanr(a, b).statistic
        assert np.isclose(got, want, atol=1e-9), (
            f"{what}: you return {got:.4f}, expected {want:.4f}. Rank each array (tied values share their average "
            "rank: scipy.stats.rankdata), then take the Pearson correlation of the ranks.")
    _passed("2.2", "Spearman correlation matches scipy, ties included.")


def check_tf_config(fn) -> None:
    """Exercise 5.1: ``fn(n_workers, index, base_port) -> dict``: the TF_CONFIG of worker ``index`` of
    ``n_workers`` workers on localhost, ports ``base_port``, ``base_port + 1``, ..."""
    from mlcourse.distributed import tf_config

    for n, i, port in ((2, 0, 12345), (3, 2, 20000), (1, 0, 5000)):
        got = fn(n, i, port)
        want = tf_config({"worker": [f"localhost:{port + k}" for k in range(n)]}, "worker", i)
        assert isinstance(got, dict), f"Return a dict (json.dumps of it goes into TF_CONFIG); got {type(got).__name__}."
        assert set(got) == {"cluster", "task"}, f"TF_CONFIG has two keys, 'cluster' and 'task'; got {sorted(got)}."
        assert got["cluster"] == want["cluster"], (
            f"For {n} workers from port {port}, 'cluster' should be {want['cluster']}; got {got['cluster']}. "
            "Every worker sees the same cluster: all addresses, in order.")
        assert got["task"] == want["task"], (
            f"'task' should be {want['task']} for worker {i}; got {got['task']}. Only 'task' differs per worker.")
    _passed("5.1", "the TF_CONFIG of every worker names the whole cluster and the worker itself.")


def check_scaled_learning_rate(fn) -> None:
    """Exercise 5.2: ``fn(base_lr, base_batch, global_batch) -> lr`` by the linear scaling rule."""
    for base_lr, base_batch, batch in ((1e-3, 128, 512), (0.1, 256, 256), (0.01, 64, 32)):
        got = fn(base_lr, base_batch, batch)
        want = base_lr * batch / base_batch
        assert got is not None and _close(got, want, 1e-12), (
            f"fn({base_lr}, {base_batch}, {batch}) = {got}; expected {want}: k times the batch, k times the "
            "learning rate (Goyal et al. 2017), so each epoch moves the weights about as far.")
    _passed("5.2", "the learning rate grows in proportion to the global batch.")


def check_kd_loss(fn) -> None:
    """Exercise 6.1: ``fn(labels, teacher_logits, student_logits, T, alpha) -> per-example loss`` (NumPy)."""
    from mlcourse.distillation import distillation_loss, pack

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 16)
    t, s = rng.normal(0, 3, (16, 10)).astype("float32"), rng.normal(0, 3, (16, 10)).astype("float32")
    for T, alpha in ((1.0, 0.0), (4.0, 0.9), (2.0, 0.5), (8.0, 1.0)):
        got = np.asarray(fn(labels, t, s, T, alpha), dtype="float64")
        want = np.asarray(distillation_loss(T, alpha)(pack(labels, t), s), dtype="float64")
        assert got.shape == want.shape, f"Return one loss per example, shape {want.shape}; got {got.shape}."
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (
            f"With T={T}, alpha={alpha} your mean loss is {got.mean():.4f}, expected {want.mean():.4f}. "
            "Check: hard = cross-entropy with the labels at T=1; soft = KL(softmax(t/T) || softmax(s/T)), "
            "multiplied by T**2; loss = (1 - alpha) * hard + alpha * soft.")
    _passed("6.1", "the distillation loss matches for four temperatures and alphas (alpha=0: plain cross-entropy).")


def check_majority_vote(fn) -> None:
    """Exercise 6.2: ``fn(predictions) -> labels``: the most frequent label per column, ties to the smallest."""
    preds = np.array([[0, 1, 2, 3], [0, 2, 2, 1], [1, 2, 0, 2]])
    want = np.array([0, 2, 2, 1])
    got = np.asarray(fn(preds))
    assert got.shape == (4,), f"One label per example (column): shape (4,), got {got.shape}."
    assert np.array_equal(got, want), (
        f"For predictions\n{preds}\n(rows = models, columns = examples) expected {want}, got {got}. The last "
        "column is a three-way tie: break ties towards the smallest label, as np.bincount(...).argmax() does.")
    rng = np.random.default_rng(0)
    big = rng.integers(0, 10, (7, 500))
    want = np.array([np.bincount(c, minlength=10).argmax() for c in big.T])
    assert np.array_equal(np.asarray(fn(big)), want), "Wrong on 7 models x 500 examples of random labels."
    _passed("6.2", "majority vote matches on a hand-made case with a tie and on 7 x 500 random predictions.")


def check_validate(fn) -> None:
    """Exercise 7.1: ``fn(images) -> float32 (N, 28, 28)``; ValueError for bad shape, NaN/inf, range."""
    good = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    out = np.asarray(fn(good))
    assert out.shape == (5, 28, 28) and out.dtype == np.float32, (
        f"A good batch of 5 uint8 images should come back as float32 (5, 28, 28); got {out.dtype} {out.shape}.")
    one = np.asarray(fn(good[0]))
    assert one.shape == (1, 28, 28), f"One 28 x 28 image should become a batch of one, (1, 28, 28); got {one.shape}."
    nan = good[:2].astype(np.float32)
    nan[0, 3, 3] = np.nan
    inf = good[:2].astype(np.float32)
    inf[1, 0, 0] = np.inf
    for bad, what in ((good[:, :20, :20], "cropped 20 x 20 images"), (good[..., None], "images with a channel axis"),
                      (nan, "a NaN pixel"), (inf, "an infinite pixel"), (good * 2.0, "pixels up to 510"),
                      (good - 300.0, "negative pixels")):
        try:
            fn(bad)
        except ValueError:
            continue
        raise AssertionError(f"A request with {what} was accepted: raise ValueError so the caller learns what is wrong.")
    _passed("7.1", "good requests pass (a single image becomes a batch); six kinds of bad ones are rejected.")
