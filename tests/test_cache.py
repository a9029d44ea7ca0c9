"""The model cache trains once per recipe and data."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mlcourse import cache, models, processes


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



def test_trained_model_is_the_plain_recipe_trained_once(tmp_path, monkeypatch, capsys):
    """cache.trained_model = models.train (seed, build, fit) + the cache: the same weights as training by hand,
    trained once per recipe; the batch size and the seed are part of the recipe."""
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (64, 28, 28)).astype(np.uint8), np.arange(64) % 10
    hp = {"arch": "mlp", "hidden_units": [8]}
    first = cache.trained_model("t", x, y, hp, epochs=1, seed=3, model_name="mine")
    assert "cached in" in capsys.readouterr().out and first.name == "mine"
    again = cache.trained_model("t", x, y, hp, epochs=1, seed=3, model_name="mine")
    assert "loaded from the workshop cache" in capsys.readouterr().out
    by_hand = models.train(hp, x, y, 1, seed=3)
    for a, b, c in zip(first.get_weights(), again.get_weights(), by_hand.get_weights()):
        assert np.array_equal(a, b) and np.allclose(a, c, atol=1e-6)
    cache.trained_model("t", x, y, hp, epochs=1, seed=3, batch_size=32)   # another batch size: trained again
    assert "cached in" in capsys.readouterr().out
    assert len(cache.entries(tmp_path)) == 2

def _mlp():
    return models.build_model({"arch": "mlp", "hidden_units": [4]})


XY = (np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10)


def _one_entry(tmp_path):
    [entry] = cache.entries(tmp_path)
    return entry


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a zip", "bad json", "missing key", "no weights"])
def test_any_unreadable_entry_is_moved_aside_and_retrained(tmp_path, monkeypatch, capsys, damage):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    calls = []
    train = lambda: calls.append(1) or _mlp()  # noqa: E731
    cache.cached_model("m", train, *XY, epochs=1)
    entry = _one_entry(tmp_path)
    weights, spec = entry / "weights.npz", entry / "spec.json"
    if damage == "empty":
        weights.write_bytes(b"")
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "not a zip":
        weights.write_bytes(b"garbage")
    elif damage == "bad json":
        spec.write_text("{not json")
    elif damage == "missing key":
        spec.write_text(json.dumps({"hp": {"arch": "mlp"}}))
    else:
        weights.unlink()
    model = cache.cached_model("m", train, *XY, epochs=1)
    assert len(calls) == 2 and "unreadable" in capsys.readouterr().out
    assert model.predict(XY[0][:2], verbose=0).shape == (2, 10)
    assert len(cache.entries(tmp_path)) == 1                  # the moved-aside copy is not counted as cached
    assert len(list(tmp_path.glob("*-previous-*"))) == 1      # ... but kept for a look
    cache.cached_model("m", train, *XY, epochs=1)             # and the new entry loads
    assert len(calls) == 2


def test_nan_weights_are_damage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        m = _mlp()
        if len(calls) == 1:
            m.set_weights([np.full_like(w, np.nan) for w in m.get_weights()])
        return m

    cache.cached_model("m", train, *XY, epochs=1)
    model = cache.cached_model("m", train, *XY, epochs=1)
    assert len(calls) == 2 and "not finite" in capsys.readouterr().out
    assert np.isfinite(model.predict(XY[0][:2], verbose=0)).all()


def test_weights_replaced_by_valid_zeros_are_caught_by_the_content_hash(tmp_path, monkeypatch, capsys):
    """Valid, finite numbers in place of the trained weights: only the content hash can tell."""
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        return _mlp()

    cache.cached_model("m", train, *XY, epochs=1)
    (entry,) = cache.entries(tmp_path)
    recipe = json.loads((entry / "recipe.json").read_text())
    assert recipe["content_sha256"] == cache.content_hash(entry)
    weights = dict(np.load(entry / "weights.npz"))
    np.savez(entry / "weights.npz", **{k: np.zeros_like(v) for k, v in weights.items()})
    cache.cached_model("m", train, *XY, epochs=1)
    out = capsys.readouterr().out
    assert len(calls) == 2 and "content hash does not match" in out and "moved aside" in out
    # an entry cached by an older version (no hash) cannot be trusted either: retrained, kept aside
    (entry,) = cache.entries(tmp_path)
    recipe = json.loads((entry / "recipe.json").read_text())
    del recipe["content_sha256"]
    (entry / "recipe.json").write_text(json.dumps(recipe))
    cache.cached_model("m", train, *XY, epochs=1)
    assert len(calls) == 3 and "no content hash" in capsys.readouterr().out


def test_entries_lists_only_complete_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    assert cache.entries() == [] and cache.entries(tmp_path / "absent") == []
    cache.cached_model("m", _mlp, *XY, epochs=1)
    (tmp_path / "m-abc-previous-20260101-000000-000000").mkdir()
    (tmp_path / "m-abc-previous-20260101-000000-000000" / "spec.json").write_text("{}")
    (tmp_path / ".tmp-m-123").mkdir()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "spec.json").write_text("{}")
    assert [p.name.split("-")[0] for p in cache.entries()] == ["m"]


def test_fingerprint_keys_arrays_by_full_content():
    a = np.arange(24, dtype=np.int64).reshape(4, 6)
    assert cache.fingerprint(a[:, ::2]) == cache.fingerprint(a[:, ::2].copy())      # a view = its content
    assert cache.fingerprint(np.asfortranarray(a)) == cache.fingerprint(a)
    assert cache.fingerprint(a) != cache.fingerprint(a.reshape(6, 4))               # shape
    assert cache.fingerprint(a) != cache.fingerprint(a.view(np.float64))            # dtype, same bytes
    b = a.copy()
    b[-1, -1] += 1
    assert cache.fingerprint(a) != cache.fingerprint(b)                             # the last element counts
    assert cache.fingerprint(a, None) != cache.fingerprint(a)
    assert cache.fingerprint([1, 2]) == cache.fingerprint(np.array([1, 2]))
    with pytest.raises(TypeError, match="numeric"):
        cache.fingerprint(np.array([{"a": 1}], dtype=object))


_RACE = """
import os, pathlib, sys, time
import numpy as np
from mlcourse import cache, models
x, y = np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10
meet = pathlib.Path(sys.argv[1])
def train():
    m = models.build_model({"arch": "mlp", "hidden_units": [4]})
    (meet / str(os.getpid())).touch()
    t0 = time.time()
    while len(list(meet.iterdir())) < 2 and time.time() - t0 < 120:  # both finish training at the same moment
        time.sleep(0.01)
    return m
m = cache.cached_model("race", train, x, y, epochs=1)
assert np.isfinite(m.predict(x[:1], verbose=0)).all()
print("OK")
"""


def test_two_processes_caching_the_same_recipe(tmp_path):
    env = processes.child_env(MLCOURSE_CACHE_DIR=str(tmp_path / "cache"))
    (tmp_path / "meet").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(tmp_path / "meet")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0 and "OK" in out, out[-2000:]
    [entry] = cache.entries(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob(".tmp-*")) and not list((tmp_path / "cache").glob("*-previous-*"))
    models.load(entry)                                        # the one entry is whole
    assert sum("another process cached the same recipe first" in out for out in outs) == 1, outs


def test_the_shared_cache_is_read_and_never_written(tmp_path, monkeypatch, capsys):
    """A room: the instructor's prepared cache is shared read-only; a learner's own training goes to their own."""
    shared, own = tmp_path / "shared", tmp_path / "own"
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(shared))
    calls = []

    def train():
        calls.append(1)
        return _mlp()

    cache.cached_model("m", train, *XY, epochs=1)                  # the instructor prepares the room
    before = sorted(p.name for p in shared.iterdir())
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(own))
    monkeypatch.setenv("MLCOURSE_CACHE_SHARED", str(shared))
    cache.cached_model("m", train, *XY, epochs=1)                  # a learner: loaded from the shared cache
    assert len(calls) == 1 and "loaded from the shared workshop cache" in capsys.readouterr().out
    cache.cached_model("m", train, *XY, epochs=2)                  # a recipe the room lacks: trained into own
    assert len(calls) == 2 and len(cache.entries(own)) == 1
    (entry,) = cache.entries(shared)
    (entry / "weights.npz").write_bytes(b"damaged")                # a damaged shared entry: said, left alone
    cache.cached_model("m", train, *XY, epochs=1)
    assert len(calls) == 3 and "left as it is (shared, read-only)" in capsys.readouterr().out
    assert sorted(p.name for p in shared.iterdir()) == before and len(cache.entries(own)) == 2
