"""The checkers of notebook compression: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


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
