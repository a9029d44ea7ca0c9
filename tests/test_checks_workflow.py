"""The checkers of notebook workflow: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks, drift, evaluation


def test_prf_checker(capsys):
    checks.check_precision_recall_f1(evaluation.precision_recall_f1)
    assert "✅ Exercise 0.1 passed" in capsys.readouterr().out

    def swapped(y, p):
        pr, rc, f = evaluation.precision_recall_f1(y, p)
        return rc, pr, f

    with pytest.raises(AssertionError, match="precision = TP / \\(TP \\+ FP\\)"):
        checks.check_precision_recall_f1(swapped)

    def nan_on_zero_division(y, p):
        y, p = np.asarray(y), np.asarray(p)
        tp = np.sum((y == 1) & (p == 1))
        with np.errstate(all="ignore"):
            pr, rc = tp / np.float64(p.sum()), tp / np.float64(y.sum())
        return pr, rc, 2 * pr * rc / (pr + rc)

    with pytest.raises(AssertionError, match="0/0"):
        checks.check_precision_recall_f1(nan_on_zero_division)
    with pytest.raises(AssertionError, match="tuple"):
        checks.check_precision_recall_f1(lambda y, p: 0.5)


def _good_split(groups, test_size, seed):
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    test = np.random.default_rng(seed).choice(uniq, int(round(test_size * len(uniq))), replace=False)
    m = np.isin(groups, test)
    return np.flatnonzero(~m), np.flatnonzero(m)


def test_group_split_checker():
    checks.check_group_split(_good_split)

    def row_split(groups, test_size, seed):  # the leak: splits rows, not groups
        idx = np.random.default_rng(seed).permutation(len(groups))
        k = int(test_size * len(groups))
        return idx[k:], idx[:k]

    with pytest.raises(AssertionError, match="both sides"):
        checks.check_group_split(row_split)

    def unseeded(groups, test_size, seed):
        return _good_split(groups, test_size, np.random.randint(1 << 30))

    with pytest.raises(AssertionError, match="seed"):
        checks.check_group_split(unseeded)

    with pytest.raises(AssertionError, match="20 %"):
        checks.check_group_split(lambda g, t, s: _good_split(g, 0.5, s))


def test_diagnose_checker():
    checks.check_diagnose_fit(lambda tr, va, t: evaluation.diagnose_fit(tr, va, t))

    def target_first(tr, va, t):
        return "underfitting" if tr < t else ("overfitting" if tr - va > 0.05 else "good fit")

    with pytest.raises(AssertionError, match="gap first"):
        checks.check_diagnose_fit(target_first)


def test_psi_checker():
    checks.check_psi(drift.psi)

    def no_epsilon(e, a, bins):
        e, a = np.asarray(e), np.asarray(a)
        edges = np.quantile(e, np.linspace(0, 1, bins + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        es, as_ = np.histogram(e, edges)[0] / len(e), np.histogram(a, edges)[0] / len(a)
        with np.errstate(all="ignore"):
            return float(np.sum((as_ - es) * np.log(as_ / es)))

    with pytest.raises(AssertionError, match="epsilon"):
        checks.check_psi(no_epsilon)

    def equal_width_bins(e, a, bins):
        edges = np.linspace(min(np.min(e), np.min(a)), max(np.max(e), np.max(a)), bins + 1)
        es = np.clip(np.histogram(e, edges)[0] / len(e), 1e-4, None)
        as_ = np.clip(np.histogram(a, edges)[0] / len(a), 1e-4, None)
        return float(np.sum((as_ - es) * np.log(as_ / es)))

    with pytest.raises(AssertionError, match="quantiles"):
        checks.check_psi(equal_width_bins)
