"""The checkers of notebook reduction: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


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
