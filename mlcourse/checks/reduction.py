"""Checkers of the exercises of notebook 03 dimensionality reduction."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_relative_contrast", "check_pca"]


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
