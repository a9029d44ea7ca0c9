"""The checkers of notebook deployment: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


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
