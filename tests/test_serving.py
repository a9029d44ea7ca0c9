"""Serving: the Predictor checks its input, saves without overwriting, is benchmarked and monitored."""

import numpy as np
import pandas as pd
import pytest

from mlcourse import data, drift, litert, models, serving


@pytest.fixture(scope="module")
def deployed():
    ds = data.load_fashion_mnist(source="embedded")
    model = models.build_model({"arch": "mlp", "hidden_units": [32], "dropout": 0.0})
    model.fit(ds.x_train[:1000], ds.y_train[:1000], epochs=2, verbose=0)
    return ds, model, litert.to_tflite(model, "int8", ds.x_train[:200])


def test_predictor_answers_and_rejects_bad_input(deployed):
    ds, model, blob = deployed
    p = serving.Predictor(blob, class_names=data.CLASS_NAMES)
    out = p.predict(ds.x_test[:50])
    assert list(out.columns) == ["label", "class", "confidence"] and len(out) == 50
    assert out["class"].tolist() == [data.CLASS_NAMES[i] for i in out.label]
    keras_labels = model.predict(ds.x_test[:50], verbose=0).argmax(1)
    assert np.mean(out.label.to_numpy() == keras_labels) > 0.9           # int8 agrees with the float model
    assert len(p.predict(ds.x_test[0])) == 1                              # one image is a batch of one
    assert len(p.predict(np.zeros((2, 28, 28), np.uint8))) == 2           # black images are valid images
    for bad, match in ((ds.x_test[:2, :20], "shape"), (ds.x_test[:3] / 255.0, "scaled to 0..1"),
                       (np.full((28, 28), np.nan), "NaN"), (ds.x_test[:2] * 2.0, "0..255")):
        with pytest.raises(ValueError, match=match):
            p.predict(bad)
    with pytest.raises(TypeError, match="numbers"):
        p.predict(np.array([["a"] * 28] * 28))
    with pytest.raises(ValueError, match="class names"):
        serving.Predictor(blob, class_names=["a", "b"])


def test_predictor_save_load_never_overwrites(deployed, tmp_path):
    ds, _, blob = deployed
    p = serving.Predictor(blob, class_names=data.CLASS_NAMES)
    folder = p.save(tmp_path / "pred")
    q = serving.Predictor.load(folder)
    assert np.array_equal(q.predict(ds.x_test[:100]).label, p.predict(ds.x_test[:100]).label)
    with pytest.raises(FileExistsError):
        p.save(folder)
    with pytest.raises(FileNotFoundError, match="model.tflite"):
        serving.Predictor.load(tmp_path / "nothing")


def test_benchmark_and_monitor_alarm_on_drift_only(deployed):
    ds, _, blob = deployed
    p = serving.Predictor(blob)
    bench = serving.benchmark(p, ds.x_test, batch_sizes=(1, 16), repeats=3)
    assert bench["batch size"].tolist() == [1, 16] and (bench["images/s"] > 0).all()
    mon = serving.Monitor(p, ds.x_test[:400])
    calm = mon.check(ds.x_test[400:800], window="normal", labels=ds.y_test[400:800])
    dark = mon.check(drift.shift_images(ds.x_test[:400], brightness=-60, contrast=0.6), window="dark")
    assert not calm["alarm"] and calm["input alarms"] == 0 and 0 <= calm["accuracy"] <= 1
    assert dark["alarm"] and dark["input alarms"] >= 1 and np.isnan(dark["accuracy"])
    h = mon.history()
    assert h.window.tolist() == ["normal", "dark"] and set(mon.reports) == {"normal", "dark"}
    assert mon.plot() is not None
    with pytest.raises(ValueError, match="at least 100"):
        serving.Monitor(p, ds.x_test[:10])


def test_deployment_hp_prefers_your_own_tuning(tmp_path):
    hp, where = serving.deployment_hp(tmp_path)
    assert hp == serving.TUNED_HP and "TUNED_HP" in where
    mine = models.build_model({"arch": "mlp", "hidden_units": [8]})
    models.save(mine, tmp_path / "best_model")
    hp, where = serving.deployment_hp(tmp_path)
    assert hp["hidden_units"] == [8] and "best_model/spec.json" in where


# --- issue 17 item 7: the Predictor's gaps, each probed as an adversarial learner would ---

def test_predictor_rejects_an_input_shape_the_model_does_not_have(deployed):
    _, _, blob = deployed
    with pytest.raises(ValueError, match=r"input_shape \(32, 32\).*model.*\(28, 28\)"):
        serving.Predictor(blob, input_shape=(32, 32))
    with pytest.raises(ValueError, match="input_shape"):
        serving.Predictor(blob, input_shape=(784,))
    assert serving.Predictor(blob, input_shape=[28, 28]).input_shape == (28, 28)


def test_predictor_catches_scaled_and_binarised_images_one_by_one(deployed):
    ds, _, blob = deployed
    p = serving.Predictor(blob)
    batch = ds.x_test[:6].astype("float32")
    batch[3] = batch[3] / 255.0                                  # one image scaled to 0..1 in a 0..255 batch
    with pytest.raises(ValueError, match=r"image 3 .*0\.\.1"):
        p.predict(batch)
    binary = (ds.x_test[:4] > 127).astype("uint8")               # binarised to 0/1
    with pytest.raises(ValueError, match=r"image 0 .*0 and 1"):
        p.predict(binary)
    mixed = ds.x_test[:4].copy()
    mixed[2] = (mixed[2] > 127)
    with pytest.raises(ValueError, match="image 2"):
        p.predict(mixed)
    assert len(p.predict(np.zeros((3, 28, 28), np.uint8))) == 3  # black images are still valid


def test_predictor_empty_batch_and_bad_batch_size(deployed):
    ds, _, blob = deployed
    p = serving.Predictor(blob)
    with pytest.raises(ValueError, match="empty"):
        p.predict(np.zeros((0, 28, 28), np.uint8))
    for bad in (0, -1, 2.5, "8"):
        with pytest.raises(ValueError, match="batch_size"):
            p.predict(ds.x_test[:4], batch_size=bad)


def test_predictor_load_names_the_bad_file(deployed, tmp_path):
    _, _, blob = deployed
    folder = serving.Predictor(blob).save(tmp_path / "p")
    meta = folder / "predictor.json"
    for text in ("{not json", "[1, 2]", '{"class_names": ["a"]}', '{"class_names": "abc", "input_shape": [28, 28]}',
                 '{"class_names": [], "input_shape": "28x28"}'):
        meta.write_text(text)
        with pytest.raises(ValueError, match="predictor.json"):
            serving.Predictor.load(folder)


# --- sizes, retraining and promotion (issues 23 and 28) ---

def test_sizes_three_sizes_and_overrides():
    assert set(serving.SIZES) == {"smoke", "lesson", "full"}
    lesson, full = serving.sizes("lesson"), serving.sizes("full")
    assert lesson["N_TRAIN"] < full["N_TRAIN"] and serving.sizes("smoke")["N_TRAIN"] <= lesson["N_TRAIN"]
    assert serving.sizes("lesson", N_TRAIN=123, EPOCHS=None)["N_TRAIN"] == 123
    assert serving.sizes("lesson", EPOCHS=None)["EPOCHS"] == lesson["EPOCHS"]
    for size in serving.SIZES.values():  # the shadow days and the new days fit in the test set after the reference
        assert size["WINDOW"] + size["N_NEW"] + size["SHADOW_DAYS"] * size["SHADOW_DAY"] <= 10_000
    with pytest.raises(ValueError, match="not a size"):
        serving.sizes("medium")
    with pytest.raises(ValueError, match="unknown"):
        serving.sizes("lesson", N_TRIAN=5)


def _table(leads):
    return pd.DataFrame({"day": [f"day {i}" for i in range(len(leads))], "candidate lead (points)": leads})


def test_promotion_needs_the_interval_above_the_margin():
    promote, said = serving.promotion(_table([4.0, 5.0, 4.5, 5.5]), margin_points=0.5)
    assert promote and "PROMOTED" in said and "excludes 0" in said
    promote, said = serving.promotion(_table([0.8, 1.2, 0.6, 1.0, 0.9]), margin_points=2.0)  # wins, not by enough
    assert not promote and "NOT promoted" in said and "margin" in said
    promote, said = serving.promotion(_table([3.0, -2.0, 4.0, -1.0]))  # noisy: the interval holds 0
    assert not promote and "includes 0" in said
    promote, said = serving.promotion(_table([-3.0, -4.0, -2.5]))
    assert not promote
    promote, said = serving.promotion(_table([30.0]))  # one day: no spread, never promoted
    assert not promote and "one day" in said


def test_retrain_leaves_the_serving_model_and_wins_in_shadow_on_the_new_camera(deployed):
    ds, model, blob = deployed
    before = [w.copy() for w in model.get_weights()]
    x_new = drift.shift_images(ds.x_train[1000:2000], shift=4)
    candidate = serving.retrain(model, x_new, ds.y_train[1000:2000], epochs=2, learning_rate=1e-3)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the serving model is untouched
    assert models.get_hp(candidate)["learning_rate"] == 1e-3
    served = serving.Predictor(blob)
    cand = serving.Predictor(litert.to_tflite(candidate, "float32"))
    shifted = drift.shift_images(ds.x_test, shift=4)
    days = {f"day {i}": (shifted[i * 200:(i + 1) * 200], ds.y_test[i * 200:(i + 1) * 200]) for i in range(4)}
    table = serving.shadow(served, cand, days)
    assert table.columns.tolist() == ["day", "images", "serving accuracy", "candidate accuracy",
                                      "candidate lead (points)", "agreement"]
    assert table["images"].tolist() == [200] * 4 and table["agreement"].between(0, 1).all()
    assert np.allclose(table["candidate lead (points)"],
                       100 * (table["candidate accuracy"] - table["serving accuracy"]))
    assert serving.promotion(table)[0], table  # retrained on the new camera, it wins on the new camera's traffic
    with pytest.raises(ValueError, match="same length"):
        serving.retrain(model, x_new, ds.y_train[:10])
    with pytest.raises(ValueError, match="at least one day"):
        serving.shadow(served, cand, {})
