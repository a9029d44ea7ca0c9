"""Checkers of the exercises of notebook 00 workflow."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _close, _passed

__all__ = ["check_precision_recall_f1", "check_group_split", "check_diagnose_fit", "check_psi"]


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
