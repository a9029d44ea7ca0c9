"""The checkers of notebook 00 (the ML workflow): each passes a right answer and rejects typical wrong ones."""
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


def _good_pipeline(n_splits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))]), GroupKFold(n_splits)


def test_leak_free_pipeline_checker(capsys):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    checks.check_leak_free_pipeline(_good_pipeline)
    assert "✅ Exercise 0.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not a sklearn Pipeline"):
        checks.check_leak_free_pipeline(lambda n: (LogisticRegression(), _good_pipeline(n)[1]))
    with pytest.raises(AssertionError, match="GroupKFold"):
        checks.check_leak_free_pipeline(lambda n: (_good_pipeline(n)[0], KFold(n, shuffle=True, random_state=0)))

    def prefitted(n):
        pipe, cv = _good_pipeline(n)
        pipe.steps[0][1].fit(np.zeros((3, 6)))
        return pipe, cv

    with pytest.raises(AssertionError, match="already fitted"):
        checks.check_leak_free_pipeline(prefitted)

    def no_scaler(n):
        from sklearn.pipeline import Pipeline
        return Pipeline([("model", LogisticRegression())]), _good_pipeline(n)[1]

    with pytest.raises(AssertionError, match="preprocessing"):
        checks.check_leak_free_pipeline(no_scaler)
    assert StandardScaler  # the scaler import documents what the good answer uses


def _good_confused(y, p, top):
    from sklearn.metrics import confusion_matrix
    cm = confusion_matrix(y, p)
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm.ravel(), kind="stable")[:top]
    return [(i // cm.shape[0], i % cm.shape[0], cm.ravel()[i]) for i in order]


def test_most_confused_checker(capsys):
    checks.check_most_confused(_good_confused)
    assert "✅ Exercise 0.4 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="swapped"):
        checks.check_most_confused(lambda y, p, top: _good_confused(p, y, top))

    def with_diagonal(y, p, top):
        from sklearn.metrics import confusion_matrix
        cm = confusion_matrix(y, p)
        order = np.argsort(-cm.ravel(), kind="stable")[:top]
        return [(i // cm.shape[0], i % cm.shape[0], cm.ravel()[i]) for i in order]

    with pytest.raises(AssertionError, match="diagonal"):
        checks.check_most_confused(with_diagonal)
    with pytest.raises(AssertionError, match="largest first"):
        checks.check_most_confused(lambda y, p, top: _good_confused(y, p, top)[::-1])


def test_psi_checker(capsys):
    checks.check_psi(drift.psi)
    assert "✅ Exercise 0.5 passed" in capsys.readouterr().out

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


def test_psi_checker_rejects_swapped_arguments_and_arithmetic_f1():
    with pytest.raises(AssertionError, match="quantiles of `expected`"):
        checks.check_psi(lambda e, a, bins: drift.psi(a, e, bins))

    def arithmetic_f1(y, p):
        pr, rc, _ = evaluation.precision_recall_f1(y, p)
        return pr, rc, (pr + rc) / 2

    with pytest.raises(AssertionError, match="f1 is .*harmonic mean"):
        checks.check_precision_recall_f1(arithmetic_f1)
