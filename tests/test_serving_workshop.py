"""mlcourse.serving (predictor, benchmark, monitor) and mlcourse.workshop (model cache, room check)."""
import json

import numpy as np
import pytest

from mlcourse import cache, compression, data, drift, models, serving, workshop


@pytest.fixture(scope="module")
def deployed():
    ds = data.load_fashion_mnist(source="embedded")
    model = models.build_model({"arch": "mlp", "hidden_units": [32], "dropout": 0.0})
    model.fit(ds.x_train[:1000], ds.y_train[:1000], epochs=2, verbose=0)
    return ds, model, compression.to_tflite(model, "int8", ds.x_train[:200])


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
    assert hp["hidden_units"] == [8] and where.endswith("spec.json")


def test_cached_model_trains_once_and_keys_on_the_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    x, y = np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10
    calls = []

    def train():
        calls.append(1)
        return models.build_model({"arch": "mlp", "hidden_units": [4]})

    a = cache.cached_model("m", train, x, y, epochs=1)
    b = cache.cached_model("m", train, x, y, epochs=1)
    assert len(calls) == 1 and "loaded from the workshop cache" in capsys.readouterr().out
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    cache.cached_model("m", train, x, y, epochs=2)                       # another recipe: trained
    cache.cached_model("m", train, x, (y + 1) % 10, epochs=1)            # other data: trained
    assert len(calls) == 3
    entry = next(p for p in tmp_path.iterdir() if (p / "recipe.json").exists())
    assert json.loads((entry / "recipe.json").read_text())["name"] == "m"
    for p in tmp_path.iterdir():                                             # damage every entry
        (p / "weights.npz").write_bytes(b"garbage")
    cache.cached_model("m", train, x, y, epochs=1)
    assert len(calls) == 4 and "unreadable" in capsys.readouterr().out
    assert any("previous" in p.name for p in tmp_path.iterdir())            # the damaged entry was kept aside


def test_prepare_smoke_fills_the_cache_and_check_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    seconds = workshop.prepare(smoke=True)
    assert set(seconds) == set(workshop.RECIPES)
    names = {p.name.rsplit("-", 1)[0] for p in tmp_path.glob("*/spec.json") for p in [p.parent]}
    assert names == {"compression-baseline", "teacher", "deployment"}
    info = workshop.check()
    assert info["tensorflow"] and "3 in" in info["cached models"]
    assert "--port=9999" in workshop.lab_command(9999) and "--no-browser" in workshop.lab_command()
