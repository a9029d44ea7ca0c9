"""Neural architecture search: spaces, strategies, performance estimation, the Pareto front."""
import shutil

import numpy as np
import pandas as pd
import pytest

from mlcourse import data, models, nas


@pytest.fixture(scope="module")
def small():
    ds = data.load_fashion_mnist(source="embedded")
    return ds.x_train[:400], ds.y_train[:400], ds.x_test[:200], ds.y_test[:200]


def test_spaces_sample_mutate_build():
    rng = np.random.default_rng(0)
    for space in ("macro", "micro"):
        for _ in range(5):
            a = nas.sample(space, rng)
            b = nas.mutate(a, rng)
            assert b["space"] == space
            for arch in (a, b):
                assert nas.build(arch).count_params() > 0
    assert nas.build(nas.sample("macro", rng), image_size=14).get_layer("downsample")
    with pytest.raises(ValueError, match="space"):
        nas.sample("nano", rng)
    with pytest.raises(ValueError, match="image_size"):
        nas.build(nas.sample("macro", rng), image_size=10)


def test_batch_norm_is_recalibrated_before_a_network_is_scored(small):
    """After recalibration the moving averages are the data's statistics: inference mode gives what training mode
    gives on the same images (a one-pass update at momentum 0.9, a pass in inference mode, or momenta left at 0
    all fail this); no batch norm: untouched. The evaluator's score is the recalibrated network's."""
    micro = {"space": "micro", "ops": ["conv3", "sep3", "identity", "conv3"], "filters": 8, "n_cells": 1, "dense": 0}
    m = nas.build(micro)
    x = small[0][:64].astype("float32")
    assert not np.allclose(np.asarray(m(x, training=False)), np.asarray(m(x, training=True)), atol=1e-3)
    assert nas.recalibrate_batch_norm(m, x) == 4  # the cell's input 1x1 and its three convolutions, BN each
    np.testing.assert_allclose(np.asarray(m(x, training=False)), np.asarray(m(x, training=True)), atol=1e-4)
    assert {la.momentum for la in m.layers if la.name.endswith("_bn")} == {0.9}
    macro = {"space": "macro", "blocks": [{"filters": 8, "kernel": 3, "type": "standard"}], "dense": 0}
    assert nas.recalibrate_batch_norm(nas.build(macro), x) == 0
    ev = nas.Evaluator(*small)
    s_micro, s_macro = ev(micro, epochs=1), ev(macro, epochs=1)
    micro_entry, macro_entry = ev.log
    assert micro_entry["score_plain"] == micro_entry["curve"][-1] and s_micro == micro_entry["score"]
    assert s_micro == pytest.approx(ev.models[0].evaluate(small[2], small[3], verbose=0)[1])  # the model as scored
    assert s_macro == macro_entry["score_plain"] == macro_entry["curve"][-1]  # nothing to recalibrate


def test_strategies_respect_the_budget(small, tmp_path):
    fake = lambda arch: float(sum(b["filters"] for b in arch["blocks"])) if arch["space"] == "macro" else 1.0  # noqa: E731
    r = nas.random_search("macro", 5, fake)
    e = nas.regularized_evolution("macro", 8, fake, population=3, sample_size=2)
    b = nas.bayesian_search(5, fake, tmp_path)
    rl = nas.rl_search(6, fake)
    for df in (r, e, b, rl):
        assert len(df) <= 8 and df.best_so_far.is_monotonic_increasing
    assert len(r) == 5 and len(e) == 8 and len(b) == 5 and len(rl) == 6
    assert isinstance(rl.attrs["controller"], nas.Controller) and rl.baseline.notna().all()
    assert e.score.iloc[3:].mean() >= e.score.iloc[:3].mean()  # evolution climbs a simple landscape
    nas.bayesian_search(2, fake, tmp_path)  # a second search keeps the first aside
    assert list(tmp_path.glob("nas_bayes-previous-*"))
    with pytest.raises(ValueError, match="population"):
        nas.regularized_evolution("macro", 2, fake, population=3)


def test_evaluator_fidelities_and_inheritance(small):
    ev = nas.Evaluator(*small)
    arch = {"space": "macro", "blocks": [{"filters": 8, "kernel": 3, "type": "standard"}], "dense": 16}
    ev(arch, epochs=2)
    ev(arch, epochs=1, n_train=100, image_size=14)
    assert [r["epochs"] for r in ev.log] == [2, 1] and ev.log[1]["n_train"] == 100 and len(ev.log[0]["curve"]) == 2
    child = dict(arch, dense=32)
    ev(child, epochs=1, parent=ev.models[0])
    assert ev.log[-1]["inherited_layers"] == 1  # conv0 keeps its shapes; dense (16->32) and probs change
    np.testing.assert_array_equal(ev.models[2].get_layer("conv0").get_weights()[0].shape, (3, 3, 1, 8))
    assert len(ev.log[0]["epoch_seconds"]) == 2 and sum(ev.log[0]["epoch_seconds"]) <= ev.log[0]["seconds"] + 1e-6


def test_estimators_and_pareto_front():
    assert nas.rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert nas.rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        nas.rank_agreement([1, 2], [1, 2])
    t = np.arange(1, 11)
    curve = 0.9 - 0.3 * t ** -1.0
    assert nas.extrapolate(curve[:4], 10) == pytest.approx(curve[-1], abs=0.01)
    assert nas.extrapolate(curve[:3], 10, info=True)[1] == "fitted"  # three points are enough to fit
    assert nas.extrapolate([0.5, 0.6], 10) == 0.6  # too few points: the last value
    pred, how = nas.extrapolate([0.5, 0.6], 10, info=True)
    assert pred == 0.6 and "at least 3" in how  # and it says so
    params, how = nas.fit_learning_curve(curve[:5])
    assert how == "fitted" and params[0] == pytest.approx(0.9, abs=0.02)
    df = pd.DataFrame({"score": [0.8, 0.85, 0.7, 0.9, 0.84], "params": [10, 20, 30, 40, 50]})
    assert nas.pareto_front(df).index.tolist() == [0, 1, 3]
    arch = {"space": "macro", "blocks": [{"filters": 16, "kernel": 5, "type": "separable"},
                                         {"filters": 32, "kernel": 3, "type": "standard"}], "dense": 32}
    hp = nas.to_hp(arch)
    assert hp["filters"] == [16, 32] and hp["kernel_size"] == [5, 3] and hp["conv"] == ["separable", "standard"]
    assert hp["dropout"] == 0.0
    assert nas.to_hp({"space": "micro"}) is None
    with pytest.raises(ValueError, match="space"):
        nas.to_hp({"blocks": []})


def _signature(model):
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def test_to_hp_round_trips_the_scored_architecture():
    """What week 05/07/08 rebuild from nas_choice.json's hp is the network 03 scored: same layers, same params."""
    import json

    rng = np.random.default_rng(3)
    archs = [nas.sample("macro", rng) for _ in range(6)]
    archs.append({"space": "macro", "blocks": [{"filters": 8, "kernel": 5, "type": "separable"},
                                               {"filters": 64, "kernel": 3, "type": "standard"},
                                               {"filters": 16, "kernel": 5, "type": "standard"}], "dense": 0})
    for arch in archs:
        hp = json.loads(json.dumps(nas.to_hp(arch)))  # as written to, and read from, nas_choice.json
        rebuilt, scored = models.build_model(hp), nas.build(arch)
        assert _signature(rebuilt) == _signature(scored), arch
        assert models.count_params(rebuilt) == scored.count_params()
        assert not any(type(layer).__name__ == "Dropout" for layer in rebuilt.layers)  # scored without dropout
        assert models.get_hp(rebuilt)["kernel_size"] == [b["kernel"] for b in arch["blocks"]]
    # lower fidelity keeps the layer names (so weight inheritance works across them)
    low = nas.build(archs[-1], image_size=14)
    assert {"conv0", "conv1", "conv2", "probs"} <= {layer.name for layer in low.layers}


def test_mutate_changes_exactly_one_thing():
    from mlcourse import checks

    checks.check_mutate(nas.mutate)  # one valid edit, never a no-op, parent intact, every kind reachable
    rng = np.random.default_rng(0)
    micro = nas.sample("micro", rng)
    for _ in range(30):
        assert nas.mutate(micro, rng) != micro
    with pytest.raises(ValueError, match="space"):
        nas.mutate({"blocks": []}, rng)


def test_controller_learns_a_fixed_reward_and_reinforce_step():
    c = nas.Controller(seed=1, lr=0.5)
    for _ in range(200):
        arch, actions = c.sample()
        assert set(actions) >= {"depth", "dense"} and len(actions) == 2 + 3 * len(arch["blocks"])
        c.update(actions, 1.0 if arch["dense"] == 64 and len(arch["blocks"]) == 2 else 0.0)
    best = c.most_likely()
    assert best["dense"] == 64 and len(best["blocks"]) == 2
    assert c.probabilities()["dense"]["64"] > 0.8
    with pytest.raises(ValueError, match="lr"):
        nas.Controller(lr=0)


def test_early_stopping_by_extrapolation():
    t = np.arange(1, 7)
    good = list(0.9 - 0.3 * t ** -1.0)
    bad = list(0.6 - 0.2 * t ** -1.0)
    r = nas.early_stopping_by_extrapolation([good, bad, bad, good], k=3, margin=0.01)  # margin: fitting error
    assert r["stopped"] == 2 and r["best_kept"] and r["epochs_with_stopping"] == 6 + 3 + 3 + 6
    assert r["epochs_saved"] == pytest.approx(1 - 18 / 24)
    with pytest.raises(ValueError, match="common length"):
        nas.early_stopping_by_extrapolation([good, bad[:3]], k=2)


def test_sizes_table_and_lesson_is_smaller_than_full():
    from mlcourse import settings

    assert set(nas.SIZES) == set(settings.SIZES)
    assert nas.sizes("smoke") == nas.SIZES["smoke"] and nas.sizes("lesson", BUDGET=7)["BUDGET"] == 7
    lesson, full = nas.SIZES["lesson"], nas.SIZES["full"]
    assert lesson["N_SEEDS"] >= 2 and lesson["N_TRAIN"] <= full["N_TRAIN"] and lesson["BUDGET"] <= full["BUDGET"]
    with pytest.raises(ValueError, match="unknown size"):
        nas.sizes("smoke", EPOCH=3)
    with pytest.raises(ValueError, match="FIT_EPOCHS"):
        nas.sizes("smoke", FIT_EPOCHS=2)


def test_param_count_matches_keras_and_budget_is_kept():
    rng = np.random.default_rng(5)
    for space in ("macro", "micro"):
        for _ in range(4):
            arch = nas.sample(space, rng)
            assert nas.param_count(arch) == nas.build(arch).count_params(), arch
        for _ in range(20):
            assert nas.param_count(nas.sample(space, rng, max_params=30_000)) <= 30_000
    micro = nas.sample("micro", rng)
    deep = nas.stack(micro, 3)
    assert deep["n_cells"] == 3 and micro["n_cells"] in (1, 2)
    assert nas.param_count(deep) == nas.build(deep).count_params()
    names = [layer.name for layer in nas.build(deep).layers]
    assert "flatten" in names and "probs" in names and any(n.endswith("_bn") for n in names)  # same head, batch norm
    with pytest.raises(ValueError, match="max_params"):
        nas.sample("macro", rng, max_params=10)


@pytest.mark.parametrize("kind", ["widen", "dense", "insert"])
def test_function_preserving_mutations_keep_the_function(small, kind):
    arch = {"space": "macro", "blocks": [{"filters": 8, "kernel": 3, "type": "separable"},
                                         {"filters": 16, "kernel": 5, "type": "standard"}],
            "dense": {"widen": 32, "dense": 32, "insert": 0}[kind]}
    parent = nas.build(arch)
    parent.fit(small[0], small[1], epochs=1, verbose=0)  # trained weights, not the initial ones
    rng = np.random.default_rng(0)
    for _ in range(30):
        child_arch, what = nas.preserving_mutation(arch, rng)
        if kind in what or (kind == "dense" and "dense layer:" in what):
            break
    assert kind in what or "dense layer:" in what
    child = nas.morph(parent, child_arch, rng)
    assert child.count_params() > parent.count_params() and nas.param_count(child_arch) == child.count_params()
    gap = np.abs(child.predict(small[2], verbose=0) - parent.predict(small[2], verbose=0)).max()
    assert gap < 1e-5, (what, gap)
    widest = {"space": "macro", "blocks": [{"filters": 64, "kernel": 3, "type": "standard"}], "dense": 64}
    assert nas.preserving_mutation(widest, rng)[0] is None
    assert nas.from_hp(nas.to_hp(arch)) == arch


def test_at_chance_and_pareto_floor():
    assert nas.at_chance(0.099, 1000) and not nas.at_chance(0.5, 1000)
    df = pd.DataFrame({"score": [0.1, 0.85, 0.7, 0.9], "params": [5, 20, 30, 40]})
    assert nas.pareto_front(df).index.tolist() == [0, 1, 3]  # the guesser is the cheapest point
    assert nas.pareto_front(df, floor=0.1).index.tolist() == [1, 3]


def test_evaluator_store_loads_instead_of_training(small, tmp_path):
    arch = {"space": "macro", "blocks": [{"filters": 8, "kernel": 3, "type": "standard"}], "dense": 0}
    store = tmp_path / "evals.jsonl"
    first = nas.Evaluator(*small, store=store)
    score = first(arch, epochs=1)
    again = nas.Evaluator(*small, store=store)
    assert again(arch, epochs=1) == score and again.loaded == 1 and again.log[0]["loaded"]
    again(arch, epochs=1, n_train=100)  # another fidelity is another evaluation
    other_seed = nas.Evaluator(*small, seed=1, store=store)
    other_seed(arch, epochs=1)
    assert again.loaded == 1 and other_seed.loaded == 0 and len(store.read_text().splitlines()) == 3
    with store.open("a") as f:
        f.write('{"key": "cut sh')  # an interrupted write is skipped, not fatal
    assert nas.Evaluator(*small, store=store)(arch, epochs=1) == score


def _write(path, data):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_chosen_hp_hands_on_the_winner_of_the_measured_comparison(tmp_path):
    from mlcourse import results

    tuned = {"arch": "cnn", "filters": [32, 64], "dense_units": 128}
    searched = nas.to_hp({"space": "macro", "blocks": [{"filters": 8, "kernel": 3, "type": "standard"}], "dense": 0})
    fallback = {"arch": "mlp"}
    assert results.chosen_hp(tmp_path, fallback, "fixed") == (fallback, "fixed")
    _write(tmp_path / "best_model" / "spec.json", {"hp": tuned})
    assert results.chosen_hp(tmp_path, fallback, "fixed")[0] == tuned
    # an old 03 that compared nothing does not override 02's tuned CNN
    _write(tmp_path / "nas_choice.json", {"hp": searched})
    hp, why = results.chosen_hp(tmp_path, fallback, "fixed")
    assert hp == tuned and "never compared" in why
    # 03 compared both the same way: the winner goes on, whichever it is
    for winner, scores in (("02_tuning", (0.80, 0.86)), ("03_nas", (0.88, 0.86))):
        cands = [{"name": "03_nas", "hp": searched, "score": scores[0]}, {"name": "02_tuning", "hp": tuned,
                                                                         "score": scores[1]}]
        _write(tmp_path / "nas_choice.json", {"hp": searched if winner == "03_nas" else tuned, "winner": winner,
                                              "comparison": {"candidates": cands}})
        hp, why = results.chosen_hp(tmp_path, fallback, "fixed")
        assert hp == (searched if winner == "03_nas" else tuned) and f"{winner} won" in why, why
    # 02 ran again after 03's comparison: that comparison is out of date, 02's new model goes on
    _write(tmp_path / "best_model" / "spec.json", {"hp": dict(tuned, dense_units=64)})
    hp, why = results.chosen_hp(tmp_path, fallback, "fixed")
    assert hp["dense_units"] == 64 and "run 03 again" in why


def test_hand_on_candidates_use_01s_model_when_there(tmp_path):
    from mlcourse import models

    hp = {"arch": "cnn", "filters": [8]}
    assert nas.hand_on_candidates(tmp_path, hp) == {"03_nas": hp, "fixed recipe": models.DEFAULTS}
    _write(tmp_path / "best_model" / "spec.json", {"hp": {"arch": "cnn", "filters": [32, 64]}})
    assert nas.hand_on_candidates(tmp_path, hp)["02_tuning"]["filters"] == [32, 64]


def test_warm_cache_runs_the_notebooks_searches_ahead(prepared_room, monkeypatch, tmp_path, capsys):
    """A prepared room (conftest's, by workshop.prepare: nas.warm_cache among the recipes) holds the searches under
    the notebook's names; run again on a copy of its work folder, nothing trains."""
    shutil.copytree(prepared_room / "work" / "smoke", tmp_path / "work" / "smoke")
    monkeypatch.setenv("MLCOURSE_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(prepared_room))  # the inheritance parents: loaded, not trained
    folder = tmp_path / "work" / "smoke"
    assert (folder / "nas_evaluations.jsonl").is_file() and (folder / "nas_keras_tuner" / "macro_random").is_dir()
    assert (folder / "nas_bayesian" / "seed0").is_dir()
    ds = data.load_fashion_mnist()  # the data workshop.prepare used
    capsys.readouterr()
    nas.warm_cache(ds, "smoke")
    said = capsys.readouterr().out
    assert " 0 evaluations trained" in said, said
