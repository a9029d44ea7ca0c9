"""The checkers of notebook distillation: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


def _np_kd(labels, t, s, T, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    hard = -log_softmax(s)[np.arange(len(labels)), labels]
    lpt, lps = log_softmax(t / T), log_softmax(s / T)
    return (1 - alpha) * hard + alpha * T ** 2 * (np.exp(lpt) * (lpt - lps)).sum(axis=1)


def test_kd_loss_checker(capsys):
    checks.check_kd_loss(_np_kd)
    assert "✅ Exercise 6.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="multiplied by T\\*\\*2"):  # forgot the T^2 factor
        checks.check_kd_loss(lambda l, t, s, T, a: _np_kd(l, t, s, T, a) if a in (0, 1) and T == 1 else
                             (1 - a) * _np_kd(l, t, s, T, 0.0) + a * _np_kd(l, t, s, T, 1.0) / T ** 2)
    with pytest.raises(AssertionError, match="one loss per example"):
        checks.check_kd_loss(lambda l, t, s, T, a: float(_np_kd(l, t, s, T, a).mean()))


def test_majority_vote_checker(capsys):
    checks.check_majority_vote(lambda p: np.array([np.bincount(c, minlength=10).argmax() for c in np.asarray(p).T]))
    assert "✅ Exercise 6.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="tie"):  # ties broken towards the largest label
        checks.check_majority_vote(lambda p: np.array([9 - np.bincount(9 - c, minlength=10).argmax()
                                                       for c in np.asarray(p).T]))
