"""Checkers of the exercises of notebook 02 neural architecture search."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_tournament_select", "check_spearman"]


def check_tournament_select(fn) -> None:
    """Exercise 2.1: ``fn(population, sample_size, rng) -> arch``: best of a random sample of the population."""
    pop = [({"id": i}, s) for i, s in enumerate([0.3, 0.9, 0.5, 0.1, 0.7])]
    for seed in range(20):
        assert fn(pop, len(pop), np.random.default_rng(seed)) == {"id": 1}, (
            "With sample_size = the whole population, the best member (score 0.9) must win every time.")
    picks = [fn(pop, 1, np.random.default_rng(seed))["id"] for seed in range(300)]
    counts = np.bincount(picks, minlength=5)
    assert (counts > 20).all(), (f"With sample_size=1 every member should win sometimes (uniform); wins: "
                                 f"{counts.tolist()}. Sample the contenders at random, without replacement.")
    picks2 = [fn(pop, 2, np.random.default_rng(seed))["id"] for seed in range(300)]
    assert 3 not in picks2, "The worst member can never win a tournament of 2 distinct contenders."
    assert fn(pop, 2, np.random.default_rng(5)) == fn(pop, 2, np.random.default_rng(5)), "Use the rng you are given."
    _passed("2.1", "tournament selection: the best of a uniform random sample, reproducible by seed.")


def check_spearman(fn) -> None:
    """Exercise 2.2: ``fn(a, b) -> float``: Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(6)
    cases = [(rng.random(20), rng.random(20), "random scores"), ([1, 2, 3, 4], [10, 20, 30, 40], "same order"),
             ([1, 2, 3, 4], [4, 3, 2, 1], "reversed"), ([0.5, 0.5, 0.7, 0.1, 0.7], [1, 2, 3, 0, 3], "ties")]
    for a, b, what in cases:
        got, want = fn(np.asarray(a), np.asarray(b)), spearmanr(a, b).statistic
        assert np.isclose(got, want, atol=1e-9), (
            f"{what}: you return {got:.4f}, expected {want:.4f}. Rank each array (tied values share their average "
            "rank: scipy.stats.rankdata), then take the Pearson correlation of the ranks.")
    _passed("2.2", "Spearman correlation matches scipy, ties included.")
