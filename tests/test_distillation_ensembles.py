"""mlcourse.distillation (loss, logits, students, gap) and mlcourse.ensembles (comparison, bias/variance)."""
import numpy as np
import pytest

from mlcourse import data, ensembles, models
from mlcourse import distillation as kd


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
    kept = {}
    ds = data.load_fashion_mnist(source="embedded")
    study = kd.seed_study(ds, teacher, xt, yt, seeds=(0,), n_labelled=100, n_val=50, n_transfer=100, epochs=1,
                          temperature=4.0, alpha=0.7, temperature_labelled=2.0, alpha_labelled=0.5, keep=kept)
    assert list(study.columns[:4]) == ["seed", "teacher", "scratch", "distilled"]
    assert set(kd.STUDY) | {"gap closed", "gap closed + transfer", "gap closed (hard labels + transfer)",
                            "hard labels + transfer s"} <= set(study.columns)
    assert all(0 < study[c].iloc[0] <= 1 for c in kd.STUDY)
    assert set(kept) == set(kd.STUDY)
    assert np.isclose(kd.accuracy(kept["scratch"], xt, yt), study.scratch.iloc[0])


def test_equal_steps_gives_the_labelled_students_the_transfer_students_budget():
    assert kd.equal_steps(8, 1_000, 5_000) == 48       # 8 epochs of 6,000 images = 48 epochs of 1,000
    assert kd.equal_steps(3, 500, 0) == 3 and kd.equal_steps(1, 3, 1) == 1
    with pytest.raises(ValueError, match="positive"):
        kd.equal_steps(5, 0, 10)


def test_augmenter_flips_and_shifts_but_keeps_shapes_and_labels():
    x = np.zeros((16, 28, 28), "uint8")
    x[:, 10:18, 2:8] = 255                            # a bar at the left edge: a flip or a shift moves it
    labels = np.arange(16)
    out, lab = kd.augmenter(seed=0)(x, labels)
    out = np.asarray(out)
    assert out.shape == (16, 28, 28) and np.array_equal(np.asarray(lab), labels)
    assert 0 <= out.min() and out.max() <= 255
    moved = [not np.allclose(out[i], x[i]) for i in range(16)]
    assert sum(moved) >= 8                            # most images changed: drawn anew for each image
    assert len({out[i].tobytes() for i in range(16)}) > 4


def test_teachers_and_students_come_from_the_cache(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    ds = data.load_fashion_mnist(source="embedded")
    size = {**kd.sizes("smoke"), "N_TEACHER": 300, "N_TEACHERS": 1, "TEACHER_EPOCHS": 2, "QUICK_EPOCHS": 1}
    teachers, where = kd.prepared_teachers(ds, size)  # lesson-like: nothing cached, so a quicker teacher
    assert len(teachers) == 1 and "QUICKER" in where and "1 epoch(s)" in where
    kd.prepared_teachers(ds, {**size, "QUICK_EPOCHS": 0})  # the full recipe, as `make workshop` trains it
    capsys.readouterr()
    teachers2, where2 = kd.prepared_teachers(ds, size)
    assert "from the cache" in where2 and "loaded from the workshop cache" in capsys.readouterr().out
    with pytest.raises(kd.NotCached):
        kd.cached_teacher(ds.x_train[:300], ds.y_train[:300], epochs=7, cache_only=True)
    # a room prepared the fixed TEACHER before the learner's weeks chose another model: the prepared one is used
    choice = {**kd.TEACHER, "dropout": 0.123}
    hp, why = kd.room_teacher(ds, size, choice, "your 03_nas choice")
    assert hp == kd.TEACHER and "room's prepared teacher" in why and "your 03_nas choice" in why
    assert kd.room_teacher(ds, {**size, "QUICK_EPOCHS": 0}, choice, "x") == (choice, "x")  # full size: your choice
    assert kd.room_teacher(ds, {**size, "TEACHER_EPOCHS": 9}, choice, "x") == (choice, "x")  # nothing prepared
    x, y, xt, yt = tiny
    t = teachers2[0]
    lg, transfer = kd.teacher_logits(t, x[:100]), (x[100:200], kd.teacher_logits(t, x[100:200]))
    a = kd.cached_distill(t, x[:100], y[:100], lg, transfer=transfer, temperature=2.0, alpha=0.5, epochs=1)
    n = len(list((tmp_path / "cache").iterdir()))
    b = kd.cached_distill(t, x[:100], y[:100], lg, transfer=transfer, temperature=2.0, alpha=0.5, epochs=1)
    assert len(list((tmp_path / "cache").iterdir())) == n  # loaded, not trained again
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    c = kd.cached_distill(t, x[:100], y[:100], lg, transfer=transfer, control=True, epochs=1)
    assert len(list((tmp_path / "cache").iterdir())) == n + 1  # the control is another recipe
    assert not all(np.array_equal(u, v) for u, v in zip(a.get_weights(), c.get_weights()))


def test_warm_cache_prepares_the_teachers_and_the_sweep_students(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLCOURSE_WORK_DIR", str(tmp_path / "runs"))
    tiny = {**kd.SIZES["smoke"], "N_TEACHER": 300, "N_LABELLED": 100, "N_VAL": 50, "N_TRANSFER": 100,
            "TEMPERATURES": (2,), "ALPHAS": (0.5,)}
    monkeypatch.setitem(kd.SIZES, "smoke", tiny)
    ds = data.load_fashion_mnist(source="embedded")
    kd.warm_cache(ds, "smoke")
    entries = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())
    assert entries == ["student", "student", "teacher", "teacher"]  # 2 teachers, one student per sweep
    capsys.readouterr()
    kd.warm_cache(ds, "smoke")  # a second time: everything loads
    out = capsys.readouterr().out
    assert "cached in" not in out and out.count("1 of 1 students loaded from the workshop cache") == 2


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
    with pytest.raises(ValueError, match="not in the line-up"):
        ensembles.compare(line_up, X[:10], y[:10], X[:5], y[:5], fit_params={"LightGBM": {}})


def test_xgboost_stops_early_on_the_validation_set():
    from sklearn.datasets import load_digits
    from xgboost import XGBClassifier

    X, y = load_digits(return_X_y=True)
    assert isinstance(ensembles.default_models(n_estimators=10)["XGBoost"], XGBClassifier)
    model = ensembles.xgboost_model(n_estimators=300, early_stopping_rounds=5, learning_rate=0.5)
    assert model.get_params()["tree_method"] == "hist" and model.get_params()["n_jobs"] == 1
    table = ensembles.compare({"XGBoost": model}, X[:900], y[:900], X[1300:], y[1300:],
                              fit_params={"XGBoost": {"eval_set": [(X[900:1300], y[900:1300])], "verbose": False}})
    assert table["test accuracy"].iloc[0] > 0.85
    assert 0 < model.best_iteration < 299              # stopped before the 300 rounds: early stopping worked


def test_check_claims_reports_what_holds_and_what_does_not():
    import pandas as pd

    table = pd.DataFrame({"model": ["decision tree (one)", "random forest", "AdaBoost", "stacking (forest + logreg)"],
                          "test accuracy": [0.72, 0.84, 0.67, 0.85], "train time (s)": [0.3, 3.0, 4.4, 7.5]})
    bv = pd.DataFrame({"model": ["decision tree (one)", "random forest", "AdaBoost"], "bias": [0.21, 0.16, 0.24],
                       "variance": [0.22, 0.05, 0.21]})
    claims = ensembles.check_claims(table, bv).set_index("claim")["holds"]
    assert claims["random forest is more accurate than one tree"]
    assert not claims["AdaBoost is more accurate than one tree"]
    # without its base learner measured, the claim says exactly which tree AdaBoost was compared with
    assert claims["bagging cuts variance"] and not claims["boosting cuts bias (AdaBoost vs one fully grown tree, "
                                                         "not its base learner)"]
    assert claims["boosting trains slower than bagging (AdaBoost vs random forest)"]
    assert claims["stacking (forest + logreg) is as accurate as the best other ensemble"]
    assert len(ensembles.check_claims(table)) == 5  # no bias/variance measured: those claims are left out
    # with the base learners measured: boosting against its own base learner, hist gradient boosting's time included
    table2 = pd.concat([table, pd.DataFrame({"model": ["hist gradient boosting", "decision tree (depth 3)"],
                                             "test accuracy": [0.86, 0.60], "train time (s)": [1.0, 0.1]})])
    bv2 = pd.concat([bv, pd.DataFrame({"model": ["decision tree (depth 3)", "hist gradient boosting",
                                                 "decision tree (31 leaves)"],
                                       "bias": [0.40, 0.14, 0.30], "variance": [0.1, 0.05, 0.15]})])
    claims2 = ensembles.check_claims(table2, bv2).set_index("claim")["holds"]
    assert claims2["boosting cuts bias (AdaBoost vs one decision tree (depth 3), its base learner)"]
    assert claims2["boosting cuts bias (hist gradient boosting vs one decision tree (31 leaves), its base learner)"]
    assert not claims2["boosting trains slower than bagging (hist gradient boosting vs random forest)"]
    assert not any(c.startswith("decision tree (depth 3)") for c in claims2.index)  # base learners are no contestants
    assert set(ensembles.base_learners()) == set(ensembles.BASE_LEARNER.values())
    with pytest.raises(ValueError, match="no 'decision tree \\(one\\)' row"):
        ensembles.check_claims(table[table.model != "decision tree (one)"])


def test_hard_label_control_uses_the_teachers_argmax(tiny, monkeypatch):
    x, y, xt, _ = tiny
    seen = {}
    monkeypatch.setattr(kd, "distill", lambda x, y, logits, **kw: seen.update(x=x, y=y, logits=logits, **kw))
    lu = np.eye(10, dtype="float32")[np.arange(50) % 10] * 5
    kd.hard_label_control(x[:20], y[:20], np.zeros((20, 10), "float32"), (xt[:50], lu), temperature=4, alpha=0.9,
                          epochs=1)
    assert seen["alpha"] == 0.0 and "temperature" not in seen and len(seen["x"]) == 70
    assert np.array_equal(seen["y"][20:], np.arange(50) % 10) and np.array_equal(seen["y"][:20], y[:20])
    with pytest.raises(ValueError, match="rows of teacher logits"):
        kd.hard_label_control(x[:20], y[:20], np.zeros((20, 10)), (xt[:50], lu[:3]))


def test_distiller_trains_the_student_only_and_students_of_other_architectures_build(tiny):
    import keras

    x, y = tiny[0][:128], tiny[1][:128].copy()
    teacher = models.build_model(kd.TEACHER)
    for name, hp in kd.STUDENTS.items():
        s = models.build_model({**kd.STUDENT, **hp}, compile=False)
        assert models.count_params(s) < models.count_params(teacher) / 3, name
    student = models.build_model(kd.STUDENTS["depthwise-separable CNN"], compile=False)
    assert any(type(layer).__name__ == "SeparableConv2D" for layer in student.layers)
    d = kd.Distiller(student, teacher, temperature=2.0, alpha=0.5)
    assert kd.Distiller is type(d)
    y[::3] = -1
    t0, s0 = [w.copy() for w in teacher.get_weights()], [w.copy() for w in student.get_weights()]
    d.compile(optimizer=keras.optimizers.Adam(1e-2))
    with kd.logits_output(teacher), kd.logits_output(student):
        h = d.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(h.history["loss"][-1])
    assert all(np.array_equal(a, b) for a, b in zip(t0, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(s0, student.get_weights()))
    with pytest.raises(ValueError, match="alpha"):
        kd.Distiller(student, teacher, alpha=2)


def test_sizes_table_and_teacher_choice(tmp_path):
    assert kd.sizes("smoke")["N_LABELLED"] == kd.SIZES["smoke"]["N_LABELLED"]
    assert kd.sizes("lesson", N_LABELLED=123, SEEDS=[4])["N_LABELLED"] == 123
    assert kd.sizes("full", SEEDS=[4])["SEEDS"] == (4,) and kd.sizes("lesson")["TEMPERATURES"] == (2, 4)
    with pytest.raises(ValueError, match="unknown size"):
        kd.sizes("smoke", EPOCHS=3)
    with pytest.raises(ValueError, match="not a size"):
        kd.sizes("medium")
    lesson, full = kd.SIZES["lesson"], kd.SIZES["full"]
    assert lesson["N_LABELLED"] <= 2_000 and full["N_LABELLED"] <= 2_000      # a small labelled set
    assert full["N_TEACHER"] == 60_000 and full["QUICK_EPOCHS"] == 0 and len(full["SEEDS"]) >= 3
    assert len(lesson["SEEDS"]) >= 3 and lesson["QUICK_EPOCHS"] < lesson["TEACHER_EPOCHS"]
    hp, where = kd.teacher_hp(tmp_path)
    assert hp == kd.TEACHER and "TEACHER" in where
    (tmp_path / "nas_choice.json").write_text('{"hp": {"arch": "cnn", "filters": [16, 32], "dense_units": 64}}')
    hp, where = kd.teacher_hp(tmp_path)
    assert hp["filters"] == [16, 32] and where.endswith("nas_choice.json")


def test_verdict_says_what_the_seeds_show():
    import pandas as pd

    one = pd.DataFrame({"a": [0.80], "b": [0.78]})
    assert "one seed only" in kd.verdict(one, "a", "b") and "+2.00 points" in kd.verdict(one, "a", "b")
    clear = pd.DataFrame({"a": [0.80, 0.81, 0.82], "b": [0.70, 0.70, 0.71]})
    assert "excludes 0" in kd.verdict(clear, "a", "b")
    noisy = pd.DataFrame({"a": [0.80, 0.70, 0.82], "b": [0.75, 0.78, 0.76]})
    assert "within the seed-to-seed noise" in kd.verdict(noisy, "a", "b")
    with pytest.raises(KeyError, match="columns"):
        kd.verdict(one, "a", "c")


def test_keras_logits_distillation_with_the_kl_class_is_this_course_s_soft_term():
    import keras

    rng = np.random.default_rng(0)
    t, s = rng.normal(0, 3, (32, 10)).astype("float32"), rng.normal(0, 3, (32, 10)).astype("float32")
    ours = float(np.mean(kd.distillation_loss(4.0, 1.0)(kd.pack(np.zeros(32), t), s)))
    theirs = keras.distillation.LogitsDistillation(4.0, loss=keras.losses.KLDivergence()).compute_loss(t, s)
    assert np.isclose(float(theirs), ours, rtol=1e-4)  # T**2 * KL(softmax(t/T) || softmax(s/T)), batch mean


def test_a_students_batch_is_part_of_its_cache_recipe(monkeypatch):
    """A room's student cached at one batch size is never loaded for another (the default batch went 256 -> 64)."""
    seen = []
    monkeypatch.setattr(kd.cache, "cached_model", lambda name, train, x, y, verbose=False, **r: seen.append(r))

    class Teacher:
        def get_weights(self):
            return [np.zeros(3, "float32")]

    x, y, logits = np.zeros((4, 28, 28), "uint8"), np.zeros(4, "int64"), np.zeros((4, 10), "float32")
    kd.cached_distill(Teacher(), x, y, logits, epochs=1)
    kd.cached_distill(Teacher(), x, y, logits, epochs=1, batch_size=256)
    assert [r["batch_size"] for r in seen] == [kd.STUDENT_BATCH, 256] and kd.STUDENT_BATCH == 64
    assert kd.SIZES["lesson"]["DEMO_EPOCHS"] > 0 and kd.SIZES["full"]["DEMO_EPOCHS"] == 0  # full: as many as lab-only

