"""Checkers of the exercises of notebook 06 distillation and ensembles."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_kd_loss", "check_majority_vote"]


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
