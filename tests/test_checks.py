"""Every checker passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks, drift, evaluation


def test_prf_checker(capsys):
    checks.check_precision_recall_f1(evaluation.precision_recall_f1)
    assert "✅ Exercise 0.1 passed" in capsys.readouterr().out

    def swapped(y, p):
        pr, rc, f = evaluation.precision_recall_f1(y, p)
        return rc, pr, f

    with pytest.raises(AssertionError, match="precision = TP / \\(TP \\+ FP\\)"):
        checks.check_precision_recall_f1(swapped)

    def nan_on_zero_division(y, p):
        y, p = np.asarray(y), np.asarray(p)
        tp = np.sum((y == 1) & (p == 1))
        with np.errstate(all="ignore"):
            pr, rc = tp / np.float64(p.sum()), tp / np.float64(y.sum())
        return pr, rc, 2 * pr * rc / (pr + rc)

    with pytest.raises(AssertionError, match="0/0"):
        checks.check_precision_recall_f1(nan_on_zero_division)
    with pytest.raises(AssertionError, match="tuple"):
        checks.check_precision_recall_f1(lambda y, p: 0.5)


def _good_split(groups, test_size, seed):
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    test = np.random.default_rng(seed).choice(uniq, int(round(test_size * len(uniq))), replace=False)
    m = np.isin(groups, test)
    return np.flatnonzero(~m), np.flatnonzero(m)


def test_group_split_checker():
    checks.check_group_split(_good_split)

    def row_split(groups, test_size, seed):  # the leak: splits rows, not groups
        idx = np.random.default_rng(seed).permutation(len(groups))
        k = int(test_size * len(groups))
        return idx[k:], idx[:k]

    with pytest.raises(AssertionError, match="both sides"):
        checks.check_group_split(row_split)

    def unseeded(groups, test_size, seed):
        return _good_split(groups, test_size, np.random.randint(1 << 30))

    with pytest.raises(AssertionError, match="seed"):
        checks.check_group_split(unseeded)

    with pytest.raises(AssertionError, match="20 %"):
        checks.check_group_split(lambda g, t, s: _good_split(g, 0.5, s))


def test_diagnose_checker():
    checks.check_diagnose_fit(lambda tr, va, t: evaluation.diagnose_fit(tr, va, t))

    def target_first(tr, va, t):
        return "underfitting" if tr < t else ("overfitting" if tr - va > 0.05 else "good fit")

    with pytest.raises(AssertionError, match="gap first"):
        checks.check_diagnose_fit(target_first)


def test_psi_checker():
    checks.check_psi(drift.psi)

    def no_epsilon(e, a, bins):
        e, a = np.asarray(e), np.asarray(a)
        edges = np.quantile(e, np.linspace(0, 1, bins + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        es, as_ = np.histogram(e, edges)[0] / len(e), np.histogram(a, edges)[0] / len(a)
        with np.errstate(all="ignore"):
            return float(np.sum((as_ - es) * np.log(as_ / es)))

    with pytest.raises(AssertionError, match="epsilon"):
        checks.check_psi(no_epsilon)

    def equal_width_bins(e, a, bins):
        edges = np.linspace(min(np.min(e), np.min(a)), max(np.max(e), np.max(a)), bins + 1)
        es = np.clip(np.histogram(e, edges)[0] / len(e), 1e-4, None)
        as_ = np.clip(np.histogram(a, edges)[0] / len(a), 1e-4, None)
        return float(np.sum((as_ - es) * np.log(as_ / es)))

    with pytest.raises(AssertionError, match="quantiles"):
        checks.check_psi(equal_width_bins)


def test_magnitude_prune_checker():
    def right(w, s):
        w = np.array(w, copy=True)
        k = int(round(s * w.size))
        if k:
            w.flat[np.argsort(np.abs(w), axis=None)[:k]] = 0
        return w

    checks.check_magnitude_prune(right)

    def by_value(w, s):  # forgets the absolute value
        w = np.array(w, copy=True)
        k = int(round(s * w.size))
        if k:
            w.flat[np.argsort(w, axis=None)[:k]] = 0
        return w

    with pytest.raises(AssertionError, match="sort by \\|w\\|"):
        checks.check_magnitude_prune(by_value)

    def in_place(w, s):
        w.flat[np.argsort(np.abs(w), axis=None)[: int(round(s * w.size))]] = 0
        return w

    with pytest.raises(AssertionError, match="in place"):
        checks.check_magnitude_prune(in_place)


def test_int8_checker():
    def right(w):
        w = np.asarray(w, np.float32)
        s = float(np.abs(w).max()) / 127
        return np.clip(np.round(w / s), -127, 127).astype(np.int8), s

    checks.check_int8_quantize(right)

    def truncating(w):
        q, s = right(w)
        return np.trunc(np.asarray(w) / s).astype(np.int8), s

    with pytest.raises(AssertionError, match="round"):
        checks.check_int8_quantize(truncating)
    with pytest.raises(AssertionError, match="int8"):
        checks.check_int8_quantize(lambda w: (np.round(np.asarray(w) / (np.abs(w).max() / 127)), np.abs(w).max() / 127))


def test_low_rank_checker():
    def right(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, :r] * S[:r], Vt[:r]

    checks.check_low_rank(right)

    def smallest_values(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, -r:] * S[-r:], Vt[-r:]

    with pytest.raises(AssertionError, match="largest"):
        checks.check_low_rank(smallest_values)


def test_relative_contrast_checker():
    from mlcourse import reduction

    checks.check_relative_contrast(reduction.relative_contrast)

    def squared(p, q):
        d = ((np.asarray(p) - q) ** 2).sum(1)
        return (d.max() - d.min()) / d.min()

    with pytest.raises(AssertionError, match="not squared"):
        checks.check_relative_contrast(squared)


def test_pca_checker():
    def right(X, k):
        U, S, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return Vt[:k], (S ** 2 / (S ** 2).sum())[:k]

    checks.check_pca(right)

    def uncentred(X, k):
        U, S, Vt = np.linalg.svd(X, full_matrices=False)
        return Vt[:k], (S ** 2 / (S ** 2).sum())[:k]

    with pytest.raises(AssertionError, match="centre"):
        checks.check_pca(uncentred)


def test_sample_point_checker():
    from mlcourse.tuning import SPACE

    def right(space, rng):
        out = {}
        for name, (kind, spec) in space.items():
            if kind == "choice":
                out[name] = spec[int(rng.integers(len(spec)))]
            elif kind == "float":
                lo, hi, step = spec
                out[name] = lo + step * int(rng.integers(0, round((hi - lo) / step) + 1))
            else:
                out[name] = float(10 ** rng.uniform(np.log10(spec[0]), np.log10(spec[1])))
        return out

    checks.check_sample_point(right)

    def linear_lr(space, rng):
        p = right(space, rng)
        p["learning_rate"] = float(rng.uniform(*space["learning_rate"][1]))
        return p

    with pytest.raises(AssertionError, match="log scale|log sampling"):
        checks.check_sample_point(linear_lr)
    with pytest.raises(AssertionError, match="rng you are given"):
        checks.check_sample_point(lambda space, rng: right(space, np.random.default_rng()))


def test_successive_halving_checker():
    checks.check_successive_halving(lambda s, f: list(np.argsort(-np.asarray(s))[: max(1, len(s) // f)]))
    with pytest.raises(AssertionError, match="best first"):
        checks.check_successive_halving(lambda s, f: list(np.argsort(np.asarray(s))[: max(1, len(s) // f)]))


def test_tournament_checker():
    def right(pop, k, rng):
        idx = rng.choice(len(pop), size=k, replace=False)
        return max((pop[i] for i in idx), key=lambda m: m[1])[0]

    checks.check_tournament_select(right)
    with pytest.raises(AssertionError, match="best member"):
        checks.check_tournament_select(lambda pop, k, rng: pop[int(rng.integers(len(pop)))][0])


def test_spearman_checker():
    from scipy.stats import pearsonr, rankdata

    checks.check_spearman(lambda a, b: pearsonr(rankdata(a), rankdata(b)).statistic)
    with pytest.raises(AssertionError, match="average"):
        checks.check_spearman(lambda a, b: pearsonr(np.argsort(np.argsort(a)), np.argsort(np.argsort(b))).statistic)


def test_tf_config_checker(capsys):
    def good(n, i, port):
        return {"cluster": {"worker": [f"localhost:{port + k}" for k in range(n)]}, "task": {"type": "worker", "index": i}}

    checks.check_tf_config(good)
    assert "✅ Exercise 5.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Only 'task' differs"):
        checks.check_tf_config(lambda n, i, p: {**good(n, i, p), "task": {"type": "worker", "index": 0}})
    with pytest.raises(AssertionError, match="all addresses"):
        checks.check_tf_config(lambda n, i, p: {**good(n, i, p), "cluster": {"worker": [f"localhost:{p + i}"]}})


def test_scaled_learning_rate_checker(capsys):
    checks.check_scaled_learning_rate(lambda lr, b0, b: lr * b / b0)
    assert "✅ Exercise 5.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="k times the batch"):
        checks.check_scaled_learning_rate(lambda lr, b0, b: lr * (b / b0) ** 0.5)


def _np_kd(labels, t, s, T, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    hard = -log_softmax(s)[np.arange(len(labels)), labels]
    lpt, lps = log_softmax(t / T), log_softmax(s / T)
    return (1 - alpha) * hard + alpha * T ** 2 * (np.exp(lpt) * (lpt - lps)).sum(axis=1)


def test_kd_loss_checker(capsys):
    checks.check_kd_loss(_np_kd)
    assert "✅ Exercise 6.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="multiplied by T\\*\\*2"):  # forgot the T^2 factor
        checks.check_kd_loss(lambda l, t, s, T, a: _np_kd(l, t, s, T, a) if a in (0, 1) and T == 1 else
                             (1 - a) * _np_kd(l, t, s, T, 0.0) + a * _np_kd(l, t, s, T, 1.0) / T ** 2)
    with pytest.raises(AssertionError, match="one loss per example"):
        checks.check_kd_loss(lambda l, t, s, T, a: float(_np_kd(l, t, s, T, a).mean()))


def test_majority_vote_checker(capsys):
    checks.check_majority_vote(lambda p: np.array([np.bincount(c, minlength=10).argmax() for c in np.asarray(p).T]))
    assert "✅ Exercise 6.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="tie"):  # ties broken towards the largest label
        checks.check_majority_vote(lambda p: np.array([9 - np.bincount(9 - c, minlength=10).argmax()
                                                       for c in np.asarray(p).T]))


def _validate(images):
    x = np.asarray(images, dtype="float32")
    if x.shape == (28, 28):
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28), got {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise ValueError("pixels must be finite and in 0..255")
    return x


def test_validate_checker(capsys):
    checks.check_validate(_validate)
    assert "✅ Exercise 7.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="float32"):  # forgot to convert
        checks.check_validate(lambda x: _validate(x).astype("float64") if np.ndim(x) == 3 else _validate(x))
    with pytest.raises(AssertionError, match="batch of one"):  # a single image not batched
        checks.check_validate(lambda x: np.asarray(x, "float32") if np.shape(x) == (28, 28) else _validate(x))
    with pytest.raises(AssertionError, match="NaN pixel"):  # only the range is checked; NaN compares False
        checks.check_validate(lambda x: _check_range_only(x))
    with pytest.raises(AssertionError, match="pixels up to 510"):  # NaN checked, range forgotten
        checks.check_validate(_check_finite_only)


def _check_finite_only(images):
    x = np.asarray(images, dtype="float32")
    x = x[None] if x.shape == (28, 28) else x
    if x.ndim != 3 or x.shape[1:] != (28, 28) or not np.isfinite(x).all():
        raise ValueError("shape or NaN")
    return x


def _check_range_only(images):
    x = np.asarray(images, dtype="float32")
    x = x[None] if x.shape == (28, 28) else x
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError("shape")
    if (x < 0).any() or (x > 255).any():
        raise ValueError("range")
    return x
