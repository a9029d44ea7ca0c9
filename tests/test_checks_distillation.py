"""The checkers of notebook 07 distillation: each passes a right answer and rejects typical wrong ones, explaining."""
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
    assert "✅ Exercise 7.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="multiplied by T\\*\\*2"):  # forgot the T^2 factor
        checks.check_kd_loss(lambda lab, t, s, T, a: _np_kd(lab, t, s, T, a) if a in (0, 1) and T == 1 else
                             (1 - a) * _np_kd(lab, t, s, T, 0.0) + a * _np_kd(lab, t, s, T, 1.0) / T ** 2)
    with pytest.raises(AssertionError, match="one loss per example"):
        checks.check_kd_loss(lambda lab, t, s, T, a: float(_np_kd(lab, t, s, T, a).mean()))
    # KL the wrong way round, KL(student || teacher): the same at alpha = 0, wrong as soon as the teacher counts
    with pytest.raises(AssertionError, match="expected"):
        checks.check_kd_loss(lambda lab, t, s, T, a: (1 - a) * _np_kd(lab, t, s, T, 0.0)
                             + a * _np_kd(lab, s, t, T, 1.0))
    # keras.io's convention (alpha on the hard term) handed in for this notebook's
    with pytest.raises(AssertionError, match="expected"):
        checks.check_kd_loss(lambda lab, t, s, T, a: _np_kd(lab, t, s, T, 1 - a))
    # the student's logits not softened (T on the teacher only)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_kd_loss(lambda lab, t, s, T, a: (1 - a) * _np_kd(lab, t, s, T, 0.0)
                             + a * T ** 2 * _np_kd(lab, t / T, s, 1.0, 1.0))


def _wrong_distiller(mistake):
    """The reference Distiller with one typical mistake."""
    import keras
    from keras import ops

    from mlcourse import distillation as kd

    base = kd._distiller_class()

    class Wrong(base):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            if mistake == "no mask":  # unlabelled examples weighted like labelled ones (and label -1 -> class 0)
                T, a = self.temperature, self.alpha
                t = self.teacher(x, training=False)
                labels = ops.maximum(ops.cast(ops.reshape(y, (-1,)), "int32"), 0)
                hard = keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
                lt, ls = ops.log_softmax(t / T, axis=-1), ops.log_softmax(y_pred / T, axis=-1)
                return ops.mean((1 - a) * hard + a * T ** 2 * ops.sum(ops.exp(lt) * (lt - ls), axis=-1))
            if mistake == "alpha swapped":  # keras.io's convention: alpha on the hard term
                self.alpha = 1 - self.alpha
                try:
                    return super().compute_loss(x, y, y_pred, sample_weight, training)
                finally:
                    self.alpha = 1 - self.alpha
            if mistake == "no T squared":  # the soft term left unscaled: its gradients shrink like 1 / T**2
                T, a = self.temperature, self.alpha
                t = self.teacher(x, training=False)
                labels = ops.cast(ops.reshape(y, (-1,)), "int32")
                labelled = ops.cast(labels >= 0, y_pred.dtype)
                hard = keras.losses.sparse_categorical_crossentropy(ops.maximum(labels, 0), y_pred, from_logits=True)
                lt, ls = ops.log_softmax(t / T, axis=-1), ops.log_softmax(y_pred / T, axis=-1)
                kl = ops.sum(ops.exp(lt) * (lt - ls), axis=-1)
                return ops.mean((1 - a) * hard * labelled + (labelled * a + 1 - labelled) * kl)
            if mistake == "no gradient":  # the loss does not depend on the student (y_pred detached)
                return super().compute_loss(x, y, ops.stop_gradient(y_pred), sample_weight, training)
            return super().compute_loss(x, y, y_pred, sample_weight, training)

    return Wrong


def test_distiller_checker(capsys):
    from mlcourse import distillation as kd

    checks.check_distiller(kd.Distiller)
    assert "✅ Exercise 7.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="label -1"):
        checks.check_distiller(_wrong_distiller("no mask"))
    with pytest.raises(AssertionError, match="student's weights"):
        checks.check_distiller(_wrong_distiller("no gradient"))
    with pytest.raises(AssertionError, match="expected"):
        checks.check_distiller(_wrong_distiller("alpha swapped"))
    with pytest.raises(AssertionError, match="expected"):
        checks.check_distiller(_wrong_distiller("no T squared"))


def _stack(seed):
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return StackingClassifier([("forest", RandomForestClassifier(30, random_state=seed)),
                               ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)))],
                              final_estimator=LogisticRegression(max_iter=500), cv=3)


def test_stacking_checker(capsys):
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    checks.check_stacking(_stack)
    assert "✅ Exercise 7.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="StackingClassifier"):
        checks.check_stacking(lambda seed: RandomForestClassifier(10, random_state=seed))
    with pytest.raises(AssertionError, match="different"):
        checks.check_stacking(lambda seed: StackingClassifier([("a", DecisionTreeClassifier()),
                                                               ("b", DecisionTreeClassifier(max_depth=3))]))

    with pytest.raises(AssertionError, match="a lone logistic regression reaches"):  # weak kinds: tree + naive Bayes
        checks.check_stacking(lambda seed: StackingClassifier([("tree", DecisionTreeClassifier(random_state=seed)),
                                                               ("nb", GaussianNB())],
                                                              final_estimator=LogisticRegression(max_iter=500), cv=3))
    with pytest.raises(AssertionError, match="below"):  # two shallow trees of different kinds, still weak
        checks.check_stacking(lambda seed: StackingClassifier(
            [("tree", DecisionTreeClassifier(max_depth=3, random_state=seed)),
             ("forest", RandomForestClassifier(5, max_depth=3, random_state=seed))],
            final_estimator=LogisticRegression(max_iter=500), cv=3))
