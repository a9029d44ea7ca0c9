"""mlcourse.distillation (loss, logits, students, gap) and mlcourse.ensembles (comparison, bias/variance)."""
import numpy as np
import pytest

from mlcourse import data, distillation as kd, ensembles, models


def test_soften_and_gap_closed():
    z = np.array([[2.0, 1.0, 0.0]])
    p1, p10 = kd.soften(z, 1), kd.soften(z, 10)
    assert np.allclose(p1.sum(), 1) and np.allclose(p10.sum(), 1)
    assert p10[0, 2] > p1[0, 2] and p10.max() < p1.max()          # a higher T shows the small probabilities
    assert kd.gap_closed(0.85, 0.80, 0.90) == pytest.approx(0.5)
    assert np.isnan(kd.gap_closed(0.85, 0.90, 0.88))               # no gap: not a fake number
    with pytest.raises(ValueError, match="positive"):
        kd.soften(z, 0)


def test_loss_is_cross_entropy_at_alpha_0_and_zero_when_student_copies_teacher():
    rng = np.random.default_rng(0)
    labels, t = rng.integers(0, 10, 32), rng.normal(0, 2, (32, 10)).astype("float32")
    y = kd.pack(labels, t)
    ce = -np.log(kd.soften(t, 1))[np.arange(32), labels]
    assert np.allclose(np.asarray(kd.distillation_loss(4, 0.0)(y, t)), ce, atol=1e-5)
    assert np.allclose(np.asarray(kd.distillation_loss(4, 1.0)(y, t)), 0, atol=1e-5)  # KL(p || p) = 0
    assert (np.asarray(kd.distillation_loss(4, 1.0)(y, -t)) > 0).all()
    unlabelled = kd.pack(-np.ones(32, int), t)                      # label -1: learn from the teacher only
    assert np.allclose(np.asarray(kd.distillation_loss(4, 0.5)(unlabelled, t)), 0, atol=1e-5)
    assert np.allclose(np.asarray(kd.distillation_loss(4, 0.5)(unlabelled, -t)),
                       np.asarray(kd.distillation_loss(4, 1.0)(y, -t)), atol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        kd.distillation_loss(2, 1.5)
    with pytest.raises(ValueError, match="one row of teacher logits per label"):
        kd.pack(labels[:5], t)


@pytest.fixture(scope="module")
def tiny():
    ds = data.load_fashion_mnist(source="embedded")
    return ds.x_train[:600], ds.y_train[:600], ds.x_test[:300], ds.y_test[:300]


def test_logits_output_is_temporary_and_exact(tiny):
    x = tiny[0][:8]
    m = models.build_model(kd.STUDENT)
    p = m.predict(x, verbose=0)
    z = kd.teacher_logits(m, x)
    assert np.allclose(kd.soften(z, 1), p, atol=1e-5)               # softmax(logits) == the model's output
    assert np.allclose(m.predict(x, verbose=0).sum(1), 1, atol=1e-5)  # the softmax is back afterwards
    ens = kd.ensemble_logits([m, m], x)
    assert np.allclose(kd.soften(ens, 1), p, atol=1e-5)             # an ensemble of one model twice is that model


def test_distilled_student_trains_and_predicts_probabilities(tiny):
    x, y, xt, yt = tiny
    teacher = kd.train_teacher(x, y, epochs=1)
    logits = kd.teacher_logits(teacher, x)
    student = kd.distill(x, y, logits, temperature=4, alpha=0.5, epochs=1)
    p = student.predict(xt, verbose=0)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert models.count_params(student) < models.count_params(teacher) / 5
    assert 0.1 < kd.accuracy(student, xt, yt) <= 1
    with pytest.raises(ValueError, match="alpha > 0"):
        kd.distill(x, y, logits, alpha=0.0, transfer=(xt, kd.teacher_logits(teacher, xt)))
    with pytest.raises(ValueError, match="rows of teacher logits"):
        kd.distill(x, y, logits, transfer=(xt, logits[:5]))
    study = kd.seed_study(x, y, xt, yt, seeds=(0,), student_epochs=1, teachers=[teacher], x_transfer=xt[:100])
    assert list(study.columns[:5]) == ["seed", "teacher", "scratch", "distilled", "gap closed"]
    assert {"distilled + transfer", "gap closed + transfer"} <= set(study.columns)
    assert 0 < study["distilled + transfer"].iloc[0] <= 1
    with pytest.raises(ValueError, match="one teacher per seed"):
        kd.seed_study(x, y, xt, yt, seeds=(0, 1), teachers=[teacher])


def test_ensembles_compare_and_bias_variance():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    line_up = ensembles.default_models(n_estimators=10)
    assert {"random forest", "AdaBoost", "gradient boosting", "stacking (forest + logreg)"} <= set(line_up)
    table = ensembles.compare({k: line_up[k] for k in ("decision tree (one)", "random forest")}, X[:1200], y[:1200],
                              X[1200:], y[1200:])
    assert table["test accuracy"].between(0.5, 1).all() and (table["size (KB)"] > 0).all()
    forest = table.set_index("model").loc["random forest"]
    assert forest["size (KB)"] > table.set_index("model").loc["decision tree (one)", "size (KB)"]
    bv = ensembles.bias_variance({k: line_up[k] for k in ("decision tree (one)", "random forest")},
                                 X[:800], y[:800], X[1200:1500], y[1200:1500], rounds=4)
    bv = bv.set_index("model")
    assert bv.loc["random forest", "variance"] < bv.loc["decision tree (one)", "variance"]  # bagging cuts variance
    assert ((bv.bias >= 0) & (bv.bias <= bv.error + 1e-9 + bv.variance)).all()
    with pytest.raises(ValueError, match="same number of rows"):
        ensembles.compare(line_up, X[:10], y[:9], X[:5], y[:5])


def test_check_claims_reports_what_holds_and_what_does_not():
    import pandas as pd

    table = pd.DataFrame({"model": ["decision tree (one)", "random forest", "AdaBoost", "stacking (forest + logreg)"],
                          "test accuracy": [0.72, 0.84, 0.67, 0.85], "train time (s)": [0.3, 3.0, 4.4, 7.5]})
    bv = pd.DataFrame({"model": ["decision tree (one)", "random forest", "AdaBoost"], "bias": [0.21, 0.16, 0.24],
                       "variance": [0.22, 0.05, 0.21]})
    claims = ensembles.check_claims(table, bv).set_index("claim")["holds"]
    assert claims["random forest is more accurate than one tree"] and not claims["AdaBoost is more accurate than one tree"]
    assert claims["bagging cuts variance"] and not claims["boosting cuts bias (AdaBoost)"]
    assert claims["boosting is sequential, so slower to train than bagging (AdaBoost)"]
    assert claims["stacking (forest + logreg) is as accurate as the best other ensemble"]
    assert len(ensembles.check_claims(table)) == 5  # no bias/variance measured: those claims are left out
    with pytest.raises(ValueError, match="no 'decision tree \\(one\\)' row"):
        ensembles.check_claims(table[table.model != "decision tree (one)"])
