"""Is a difference over seeds more than noise? A t-interval, its n, and a sentence built from them.

A lesson that trains two variants on three seeds and prints "+0.3 points" has measured one draw from a noisy
process. The honest statement is an interval: the mean of the per-seed differences, and the range that the
true mean difference lies in with 95 % confidence, from Student's t distribution with ``n - 1`` degrees of
freedom (with 3 seeds the t factor is 4.30, not the 2 of "two standard errors": few seeds buy a wide interval).

    >>> iv = stats.seed_interval([0.012, 0.004, 0.009])   # ahead in 3 of 3 seeds...
    >>> iv.excludes_zero, round(iv.lo, 4), round(iv.hi, 4), iv.n
    (False, -0.0017, 0.0184, 3)                            # ...and still within the noise
    >>> print(stats.difference_verdict([0.012, 0.004, 0.009], "tuned", "baseline"))
    tuned vs baseline: +0.83 points on average, tuned ahead in 3 of 3 seed(s); 95% t-interval over n = 3 seeds: \
[-0.17, +1.84] points, which includes 0: within the seed-to-seed noise (no verdict either way).

Used by the tuning (02), NAS (03) and distillation (07) lessons wherever a verdict is drawn over seeds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["Interval", "seed_interval", "difference_verdict"]


class Interval(NamedTuple):
    """A mean over ``n`` seeds with its ``confidence`` t-interval ``[lo, hi]`` (``nan`` bounds when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int
    sd: float
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0: the difference is more than the seed noise."""
        return bool(self.n >= 2 and (self.lo > 0 or self.hi < 0))


def seed_interval(diffs: Sequence[float], confidence: float = 0.95, test_train_ratio: float = 0.0) -> Interval:
    """The mean of per-seed values (usually paired differences, variant minus control on the same seed) with its
    two-sided Student-t confidence interval. With one value the bounds are ``nan``: no spread was measured.

    Scores from the folds of a (repeated) cross-validation share training rows, so they are not independent and
    the plain interval is too narrow: pass ``test_train_ratio`` (0.25 for 5-fold) for Nadeau and Bengio's
    corrected resampled t-interval, whose variance is ``(1/n + test_train_ratio) * sd**2``.

    Lesson: 08_deployment § 6 · Retrained, shadowed, promoted (or not); also used in 10_capstone.
    """
    from scipy import stats as st

    d = np.asarray(diffs, dtype=float).ravel()
    if d.size == 0:
        raise ValueError("seed_interval needs at least one value (one per seed); got none.")
    if not np.isfinite(d).all():
        raise ValueError(f"seed_interval got a value that is not a finite number: {d.tolist()}.")
    if test_train_ratio < 0:
        raise ValueError(f"test_train_ratio must be >= 0 (0.25 for 5-fold CV), got {test_train_ratio}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
    n, mean = int(d.size), float(d.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, float("nan"), confidence)
    sd = float(d.std(ddof=1))
    half = float(st.t.ppf(0.5 + confidence / 2, df=n - 1)) * sd * np.sqrt(1 / n + test_train_ratio)
    return Interval(mean, float(mean - half), float(mean + half), n, sd, confidence)


def difference_verdict(diffs: Sequence[float], a: str, b: str, scale: float = 100.0, unit: str = "points",
                       confidence: float = 0.95, over: str = "seed", test_train_ratio: float = 0.0) -> str:
    """A sentence from per-seed differences ``a - b``: the mean, how many seeds ``a`` was ahead in, the
    t-interval with its n, and whether the interval excludes 0 (more than the seed noise) or not.
    ``scale`` turns the values into ``unit`` (100: accuracy fractions into percentage points); ``over`` names
    what was repeated ("fold" for cross-validation folds, with ``test_train_ratio`` as in :func:`seed_interval`).

    Lesson: 01_training § 1 · Batch normalization: where it pays, where it does not, and free at inference once
    folded; also used in 03_nas, 05_compression, 08_deployment, 10_capstone.
    """
    iv = seed_interval(diffs, confidence, test_train_ratio)
    d = np.asarray(diffs, dtype=float).ravel()
    wins = int((d > 0).sum())
    head = f"{a} vs {b}: {iv.mean * scale:+.2f} {unit} on average, {a} ahead in {wins} of {iv.n} {over}(s)"
    if iv.n < 2:
        return head + f"; one {over} only, so no spread was measured: one draw, not a finding."
    kind = "corrected resampled t-interval" if test_train_ratio else "t-interval"
    interval = (f"{confidence:.0%} {kind} over n = {iv.n} {over}s: "
                f"[{iv.lo * scale:+.2f}, {iv.hi * scale:+.2f}] {unit}")
    if iv.excludes_zero:
        return head + f"; {interval}, which excludes 0: more than the {over}-to-{over} noise."
    return head + f"; {interval}, which includes 0: within the {over}-to-{over} noise (no verdict either way)."
