"""The model cache trains once per recipe and data."""
import json

import numpy as np

from mlcourse import cache, models


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
