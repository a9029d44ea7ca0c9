"""Checkers of the exercises of notebook 00, the ML workflow (its week module: :mod:`mlcourse.evaluation`)."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _close, _passed
from mlcourse.drift import psi
from mlcourse.evaluation import precision_recall_f1

__all__ = ["check_precision_recall_f1", "check_group_split", "check_leak_free_pipeline", "check_most_confused",
           "check_psi"]


def check_precision_recall_f1(fn) -> None:
    """Exercise 0.1: ``fn(y_true, y_pred) -> (precision, recall, f1)`` for binary labels.

    Lesson: 00_workflow § ✏️ Exercise 0.1: precision, recall and F1 from scratch.
    """
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
        want = precision_recall_f1(y, p)
        for name, g, w in zip(("precision", "recall", "f1"), got, want):
            assert g is not None and np.isfinite(g), (
                f"{name} is {g} for {what}: when a ratio is 0/0, return 0.0 (as scikit-learn's zero_division=0).")
            assert _close(g, w), (
                f"{name} is {g:.4f} for {what} (y_true={y[:10]}, y_pred={p[:10]}); expected {w:.4f}. "
                "precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = their harmonic mean.")
    return _passed("0.1", f"precision, recall and F1 match on {len(cases)} cases, including the edge cases.")


def check_group_split(fn) -> None:
    """Exercise 0.2: ``fn(groups, test_size, seed) -> (train_idx, test_idx)`` keeping each group on one side.

    Lesson: 00_workflow § ✏️ Exercise 0.2: a grouped train/test split.
    """
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


def _leaky_groups_data():
    """240 rows in 60 groups of 4 near-twins, 6 features on wildly different scales (fixed, seconds to fit)."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(60, 6))
    y_group = (centres[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int)
    X = np.repeat(centres, 4, axis=0) + 0.05 * rng.normal(size=(240, 6))
    X *= np.array([1.0, 1e3, 1e-3, 50.0, 1.0, 1e4])  # unscaled, a linear model struggles
    return X, np.repeat(y_group, 4), np.repeat(np.arange(60), 4)


def check_leak_free_pipeline(fn) -> None:
    """Exercise 0.3: ``fn(n_splits) -> (pipeline, cv)``: scaler + classifier in one Pipeline, grouped folds.

    Lesson: 00_workflow § ✏️ Exercise 0.3: a leak-free pipeline, evaluated by group.
    """
    from sklearn.base import TransformerMixin, is_classifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline

    got = fn(4)
    assert isinstance(got, (tuple, list)) and len(got) == 2, f"Return a tuple (pipeline, cv); got {got!r}."
    pipe, cv = got
    assert isinstance(pipe, Pipeline), (
        f"The model is a {type(pipe).__name__}, not a sklearn Pipeline: put the scaler and the classifier in "
        "one Pipeline([('scale', StandardScaler()), ('model', LogisticRegression(...))]) so that every fold "
        "fits the scaler on its own training rows only.")
    steps = [est for _, est in pipe.steps]
    assert len(steps) >= 2 and all(isinstance(e, TransformerMixin) for e in steps[:-1]), (
        f"The pipeline's steps are {[type(e).__name__ for e in steps]}: it needs a preprocessing step (a "
        "scaler) before the model, inside the pipeline.")
    assert is_classifier(steps[-1]), (
        f"The last step is a {type(steps[-1]).__name__}; it must be a classifier (e.g. LogisticRegression).")
    assert not hasattr(steps[0], "n_features_in_"), (
        "The scaler is already fitted: fitting it on all rows before cross-validation is the leak this "
        "exercise avoids. Return the pipeline unfitted; cross_val_score fits it per fold.")
    X, y, groups = _leaky_groups_data()
    assert hasattr(cv, "split"), f"cv must be a scikit-learn splitter such as GroupKFold(n_splits); got {cv!r}."
    folds = list(cv.split(X, y, groups))
    assert len(folds) == 4, f"fn(4) should give 4 folds; your cv gave {len(folds)}. Pass n_splits to the splitter."
    for i, (tr, te) in enumerate(folds):
        shared = np.intersect1d(groups[tr], groups[te])
        assert len(shared) == 0, (
            f"Fold {i}: {len(shared)} groups (e.g. {shared[:3].tolist()}) are in both its training and validation "
            "rows, so near-twins leak. Use GroupKFold and pass groups=... to cross_val_score.")
    scores = cross_val_score(pipe, X, y, groups=groups, cv=cv)
    assert np.all(np.isfinite(scores)) and scores.mean() > 0.6, (
        f"Grouped CV accuracy is {scores.mean():.2f} on a problem a scaled logistic regression solves (> 0.6): "
        "is the scaler really before the classifier?")
    return _passed("0.3", f"scaler + {type(steps[-1]).__name__} in one Pipeline, {len(folds)} grouped folds with "
                          "no group on both sides, grouped CV accuracy above 0.6 on the fixed data.")


def check_most_confused(fn) -> None:
    """Exercise 0.4: ``fn(y_true, y_pred, top) -> [(true, predicted, count), ...]`` largest errors first.

    Lesson: 00_workflow § ✏️ Exercise 0.4: the most-confused pairs.
    """
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(5)
    y = rng.integers(0, 6, 600)
    p = y.copy()
    flip = rng.random(600)
    p[flip < 0.15] = (y[flip < 0.15] + 1) % 6          # each class drifts to the next one
    p[(flip > 0.15) & (flip < 0.2) & (y == 2)] = 4       # and class 2 also to 4 (an asymmetric pair)
    cm = confusion_matrix(y, p, labels=range(6))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    for top in (3, 5):
        got = fn(y, p, top)
        got = [tuple(int(v) for v in row) for row in got]
        assert len(got) == top, f"fn(..., top={top}) returned {len(got)} pairs; return exactly `top`."
        for t, q, c in got:
            assert t != q, (f"({t}, {q}, {c}) is a correct prediction (the diagonal): set the diagonal of the "
                            "confusion matrix to 0 before looking for the largest cells.")
            if c != off[t, q] and c == off[q, t]:
                raise AssertionError(f"({t}, {q}, {c}): true and predicted are swapped. In sklearn's confusion_"
                                     "matrix(y_true, y_pred), rows are the TRUE class, columns the predicted.")
            assert c == off[t, q], (f"({t}, {q}, {c}): the confusion matrix says {off[t, q]} images of class {t} "
                                    f"were predicted as {q}.")
        counts = [c for _, _, c in got]
        assert counts == sorted(counts, reverse=True), f"Sort the pairs by count, largest first; got counts {counts}."
        want = sorted(off.ravel(), reverse=True)[:top]
        assert counts == want, f"The {top} largest off-diagonal counts are {want}; you returned {counts}."
    return _passed("0.4", "the most-confused pairs match the confusion matrix (rows true, columns predicted), "
                          "diagonal excluded, largest first.")


def check_psi(fn) -> None:
    """Exercise 0.5: ``fn(expected, actual, bins) -> float`` Population Stability Index.

    Lesson: 00_workflow § ✏️ Exercise 0.5: the Population Stability Index.
    """

    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    cases = [(base, rng.normal(size=5000), "two samples of the same distribution"),
             (base, rng.normal(0.5, 1, 5000), "a mean shift of half a standard deviation"),
             (base, rng.normal(0, 2, 5000), "a doubled spread"),
             (base, np.full(1000, 10.0), "everything in one bin (empty bins need an epsilon)")]
    for e, a, what in cases:
        got, want = fn(e, a, 10), psi(e, a, 10)
        assert got is not None and np.isfinite(got), (
            f"PSI is {got} for {what}: clip empty bin shares to a small epsilon (1e-4) before the log.")
        assert abs(got - want) <= 0.02 * max(1.0, abs(want)), (
            f"PSI is {got:.4f} for {what}; expected about {want:.4f}. Use the quantiles of `expected` as bin "
            "edges (open-ended at both ends) and sum (a - e) * ln(a / e) over bin shares.")
    assert fn(base, base, 10) < 1e-9, "PSI of a sample against itself must be 0."
    return _passed("0.5", "PSI matches the reference on no shift, mean shift, spread shift and empty bins.")
