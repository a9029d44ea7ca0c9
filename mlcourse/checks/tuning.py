"""Checkers of the exercises of notebook 01 tuning."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_sample_point", "check_successive_halving"]


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
