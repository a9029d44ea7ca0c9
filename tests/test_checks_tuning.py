"""The checkers of notebook tuning: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


def test_sample_point_checker():

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
