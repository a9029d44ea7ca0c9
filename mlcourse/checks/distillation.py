"""Checkers of the exercises of notebook 07_distillation_ensembles (distillation loss, Distiller, stacking)."""
from __future__ import annotations

import numpy as np

from mlcourse import models
from mlcourse.checks._common import _passed
from mlcourse.distillation import distillation_loss, logits_output, pack, teacher_logits
from mlcourse.session import quiet_import, set_seed

__all__ = ["check_kd_loss", "check_distiller", "check_stacking"]


def check_kd_loss(fn) -> None:
    """Exercise 7.1: ``fn(labels, teacher_logits, student_logits, T, alpha) -> per-example loss`` (NumPy).

    Lesson: 07_distillation_ensembles § ✏️ Exercise 7.1: the distillation loss, in NumPy.
    """

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 16)
    t, s = rng.normal(0, 3, (16, 10)).astype("float32"), rng.normal(0, 3, (16, 10)).astype("float32")
    for T, alpha in ((1.0, 0.0), (4.0, 0.9), (2.0, 0.5), (8.0, 1.0)):
        got = np.asarray(fn(labels, t, s, T, alpha), dtype="float64")
        want = np.asarray(distillation_loss(T, alpha)(pack(labels, t), s), dtype="float64")
        assert got.shape == want.shape, f"Return one loss per example, shape {want.shape}; got {got.shape}."
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (
            f"With T={T}, alpha={alpha} your mean loss is {got.mean():.4f}, expected {want.mean():.4f}. "
            "Check: hard = cross-entropy with the labels at T=1; soft = KL(softmax(t/T) || softmax(s/T)), "
            "multiplied by T**2; loss = (1 - alpha) * hard + alpha * soft.")
    _passed("7.1", "the distillation loss matches for four temperatures and alphas (alpha=0: plain cross-entropy).")


def _tiny_pair():
    """A fixed tiny teacher and a fresh tiny student (Keras 3 MLPs, seeded), and 64 images with labels."""

    set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28)).astype("float32")
    y = rng.integers(0, 10, 64)
    teacher = models.build_model({"arch": "mlp", "hidden_units": [16], "dropout": 0.0}, compile=False, name="t")
    student = models.build_model({"arch": "mlp", "hidden_units": [8], "dropout": 0.0}, compile=False, name="s")
    return teacher, student, x, y


def check_distiller(cls) -> None:
    """Exercise 7.2: ``cls(student, teacher, temperature, alpha)``, a ``keras.Model`` whose ``compute_loss`` is the
    distillation loss with a transfer-set mask (label -1: soft term only, weight 1), averaged over the batch.

    Lesson: 07_distillation_ensembles § ✏️ Exercise 7.2: a Distiller that learns from unlabelled images.
    """
    keras = quiet_import("keras")

    teacher, student, x, y = _tiny_pair()
    y = y.copy()
    y[::4] = -1                                   # every fourth image is an unlabelled transfer-set image
    t_logits = teacher_logits(teacher, x)
    d = cls(student, teacher, temperature=4.0, alpha=0.7)
    assert isinstance(d, keras.Model), f"Distiller must subclass keras.Model, got {type(d).__mro__[1]}."
    s_logits = np.random.default_rng(1).normal(0, 2, (64, 10)).astype("float32")
    with logits_output(teacher):
        for T, a in ((4.0, 0.7), (1.0, 0.2), (2.0, 1.0)):
            d.temperature, d.alpha = T, a
            got = float(np.asarray(d.compute_loss(x=x, y=y, y_pred=s_logits)))
            want_rows = np.asarray(distillation_loss(T, a)(pack(y, t_logits), s_logits), dtype="float64")
            want = float(want_rows.mean())
            hint = ""
            if a < 0.5:
                hint = (" Check the hard term: the unlabelled images (label -1) must add no cross-entropy, and the "
                        "mean is over the whole batch.")
            elif a == 1:
                hint = " With alpha = 1 every example learns from the soft term alone, T**2 * KL."
            assert np.isclose(got, want, rtol=1e-4, atol=1e-5), (
                f"With T={T}, alpha={a} your compute_loss gives {got:.5f}, expected {want:.5f} (the batch mean of "
                "(1 - alpha) * CE(y, student) + alpha * T**2 * KL(softmax(teacher/T) || softmax(student/T)) for "
                "labelled images, and T**2 * KL alone for label -1; run the teacher on x with training=False)."
                + hint)
    d.temperature, d.alpha = 4.0, 0.7
    before = [w.copy() for w in student.get_weights()]
    t_before = [w.copy() for w in teacher.get_weights()]
    d.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # 2 steps: tracing would cost more
    no_grad = ("fit did not change the student's weights: call() must return self.student(x), and the loss must be "
               "computed from y_pred (the student's logits, not detached), so that the gradients reach the student.")
    with logits_output(teacher), logits_output(student):
        try:
            hist = d.fit(x, y, epochs=1, batch_size=32, verbose=0)
        except ValueError as exc:
            if "gradient" in str(exc).lower():
                raise AssertionError(no_grad + f" Keras said: {str(exc)[:200]}") from None
            raise
    loss = hist.history.get("loss", [np.nan])[-1]
    assert np.isfinite(loss), f"One epoch of fit gave loss {loss}: check the log-softmax (no log of 0)."
    assert any(not np.allclose(b, w) for b, w in zip(before, student.get_weights())), no_grad
    assert all(np.allclose(b, w) for b, w in zip(t_before, teacher.get_weights())), (
        "fit changed the teacher's weights: freeze it (teacher.trainable = False) and run it with training=False.")
    _passed("7.2", "compute_loss matches the reference for three (T, alpha) with unlabelled images in the batch; "
                   "one epoch of fit trains the student and leaves the teacher alone.")


def check_stacking(fn) -> None:
    """Exercise 7.3: ``fn(seed) -> StackingClassifier`` (unfitted) of at least two different base models; the
    checker fits it on scikit-learn's digits (8 x 8 images, shipped with scikit-learn) and compares.

    Lesson: 07_distillation_ensembles § ✏️ Exercise 7.3: build a stacking ensemble.
    """
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = fn(0)
    assert isinstance(model, StackingClassifier), (
        f"Return a sklearn.ensemble.StackingClassifier (not fitted), got {type(model).__name__}.")
    kinds = {type(est).__name__ if not hasattr(est, "steps") else type(est.steps[-1][1]).__name__
             for _, est in model.estimators}
    assert len(model.estimators) >= 2 and len(kinds) >= 2, (
        f"Stack at least two *different* kinds of model (e.g. a random forest and a logistic regression); "
        f"got {sorted(kinds)}: models that make the same mistakes give the meta-model nothing to combine.")
    assert model.final_estimator is not None, "Give a final_estimator (e.g. LogisticRegression): the meta-model."
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    tr, te = idx[:500], idx[500:900]
    stack = clone(model).fit(X[tr], y[tr])
    acc = float(np.mean(stack.predict(X[te]) == y[te]))
    bases = {name: float(np.mean(est.predict(X[te]) == y[te])) for name, est in stack.named_estimators_.items()}
    # the bar is measured on this split, not fixed: a lone (scaled) logistic regression reaches about 0.94 here
    lone = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[tr], y[tr])
    lone_acc = float(np.mean(lone.predict(X[te]) == y[te]))
    margin = 0.015
    bar = max(lone_acc, max(bases.values())) - margin
    shown = ", ".join(f"{k} {v:.3f}" for k, v in bases.items())
    assert acc >= bar, (
        f"Your stack reaches {acc:.3f} on digits (400 test images), below {bar:.3f}: a lone logistic regression "
        f"reaches {lone_acc:.3f} on the same split and your base models alone reach {shown}. A stack should be at "
        f"least as good as the best of those (within {margin}): use strong, different base models (e.g. a random "
        "forest and a scaled logistic regression, or k-nearest neighbours) and a simple final_estimator.")
    _passed("7.3", f"a StackingClassifier of {len(model.estimators)} different models fits on digits and is, on 400 "
                   f"held-out images, at least as accurate as a lone logistic regression and its best base model "
                   f"(within {margin}).")
