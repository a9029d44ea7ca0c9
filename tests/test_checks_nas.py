"""The checkers of notebook nas: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


def test_tournament_checker():
    def right(pop, k, rng):
        idx = rng.choice(len(pop), size=k, replace=False)
        return max((pop[i] for i in idx), key=lambda m: m[1])[0]

    checks.check_tournament_select(right)
    with pytest.raises(AssertionError, match="best member"):
        checks.check_tournament_select(lambda pop, k, rng: pop[int(rng.integers(len(pop)))][0])


def test_spearman_checker():
    from scipy.stats import pearsonr, rankdata

    checks.check_spearman(lambda a, b: pearsonr(rankdata(a), rankdata(b)).statistic)
    with pytest.raises(AssertionError, match="average"):
        checks.check_spearman(lambda a, b: pearsonr(np.argsort(np.argsort(a)), np.argsort(np.argsort(b))).statistic)
