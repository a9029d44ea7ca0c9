"""Verdicts over seeds: a t-interval with its n, never "two standard errors" on three seeds."""
import math

import pytest

from mlcourse import stats


def test_interval_uses_students_t_not_two_standard_errors():
    iv = stats.seed_interval([0.012, 0.004, 0.009])
    # t(0.975, df=2) = 4.303: the half-width is 4.303 * sd / sqrt(3), far wider than 2 s.e.
    assert iv.n == 3
    assert math.isclose(iv.hi - iv.mean, 4.3027 * iv.sd / math.sqrt(3), rel_tol=1e-3)
    assert not iv.excludes_zero  # 2 s.e. would have called this "more than the noise"
    assert abs(iv.mean) > 2 * iv.sd / math.sqrt(3)


def test_verdict_sentence_matches_its_interval():
    clear = stats.difference_verdict([0.020, 0.021, 0.019, 0.022], "soft", "hard")
    assert "excludes 0" in clear and "n = 4" in clear and "ahead in 4 of 4" in clear
    noisy = stats.difference_verdict([0.003, 0.003, 0.0], "tuned", "baseline")
    assert "includes 0" in noisy and "within the seed-to-seed noise" in noisy
    negative = stats.difference_verdict([-0.020, -0.021, -0.019], "a", "b")
    assert "excludes 0" in negative and "-2.00 points" in negative and "ahead in 0 of 3" in negative
    one = stats.difference_verdict([0.05], "a", "b")
    assert "one seed only" in one and math.isnan(stats.seed_interval([0.05]).lo)


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="at least one value"):
        stats.seed_interval([])
    with pytest.raises(ValueError, match="finite"):
        stats.seed_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        stats.seed_interval([0.1, 0.2], confidence=95)


def test_cross_validation_folds_get_the_corrected_interval():
    import numpy as np

    d = np.random.default_rng(0).normal(0.01, 0.02, 50)
    plain, corrected = stats.seed_interval(d), stats.seed_interval(d, test_train_ratio=0.25)
    assert corrected.hi - corrected.lo > 3 * (plain.hi - plain.lo)  # sqrt(1/50 + 0.25) / sqrt(1/50) = 3.7
    sentence = stats.difference_verdict(d, "LDA", "PCA", over="fold", test_train_ratio=0.25)
    assert "of 50 fold(s)" in sentence and "corrected resampled t-interval over n = 50 folds" in sentence
    assert "fold-to-fold noise" in sentence
    with pytest.raises(ValueError, match="test_train_ratio"):
        stats.seed_interval(d, test_train_ratio=-1)
