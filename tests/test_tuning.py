"""keras-tuner searches: every tuner on the shared space, resuming, distributed chief/worker tuning."""
import json

import numpy as np
import pytest

from mlcourse import data, models, tuning


@pytest.fixture(scope="module")
def small():
    ds = data.load_fashion_mnist(source="embedded")
    return ds.x_train[:400], ds.y_train[:400], ds.x_test[:200], ds.y_test[:200]


@pytest.mark.parametrize("kind", tuning.TUNERS)
def test_each_tuner_searches_the_shared_space(kind, small, tmp_path):
    t = tuning.make_tuner(kind, tmp_path, kind, max_trials=2, max_epochs=2)
    table = tuning.search(t, *small, epochs=1 if kind != "hyperband" else 2)
    assert len(table) >= 1 and table.score.between(0, 1).all() and not table.resumed.any()
    assert table.best_so_far.is_monotonic_increasing and (table.seconds > 0).all()
    assert (table.trial_seconds > 0).all() and table.seconds.is_monotonic_increasing
    if kind == "hyperband":  # as many trials as its brackets say
        assert len(table) == tuning.hyperband_brackets(2, 3).trials.sum()
    hp = tuning.best_hp(t)
    assert set(hp) == {"arch", "filters", "dense_units", "dropout", "learning_rate"}
    assert models.count_params(models.build_model(hp)) > 0


def test_resume_runs_only_missing_trials_and_fresh_keeps_old(small, tmp_path, capsys):
    tuning.search(tuning.make_tuner("random", tmp_path, "p", max_trials=2), *small, epochs=1)
    again = tuning.search(tuning.make_tuner("random", tmp_path, "p", max_trials=3), *small, epochs=1)
    assert "Resuming" in capsys.readouterr().out
    assert len(again) == 3 and again.resumed.tolist() == [True, True, False]
    tuning.make_tuner("random", tmp_path, "p", max_trials=1, fresh=True)
    kept = list(tmp_path.glob("p-previous-*"))
    assert len(kept) == 1 and len(list(kept[0].glob("trial_*/trial.json"))) == 3


class _Crash(BaseException):
    """Stands for the process dying mid-trial (not an Exception: keras-tuner must not catch it)."""


def test_times_after_a_resume_are_keyed_by_trial_id(small, tmp_path):
    """#17.8: the trial running when the process died is redone and timed; later trials keep their own times."""
    import keras

    class DieInSecondTrial(keras.callbacks.Callback):
        started = 0

        def on_train_begin(self, logs=None):
            DieInSecondTrial.started += 1
            if DieInSecondTrial.started == 2:
                raise _Crash()

    with pytest.raises(_Crash):
        tuning.search(tuning.make_tuner("random", tmp_path, "p", max_trials=3, verbose=False), *small, epochs=1,
                      callbacks=[DieInSecondTrial()])
    t = tuning.search(tuning.make_tuner("random", tmp_path, "p", max_trials=3, verbose=False), *small, epochs=1)
    assert t.trial_id.tolist() == ["0", "1", "2"] and t.resumed.tolist() == [True, False, False]
    assert np.isnan(t.seconds[0]) and (t.trial_seconds[1:] > 0).all() and (t.epochs[1:] == 1).all()
    assert t.trial_seconds[0] > 0 and t.epochs[0] == 1, "a resumed trial keeps the time and epochs measured when it ran"
    assert t.seconds[1] < t.seconds[2], "the redone trial ran first; the next one must not show its time"
    assert t.seconds[2] - t.seconds[1] == pytest.approx(t.trial_seconds[2], abs=0.5)


def test_split_for_tuning_never_touches_the_test_set():
    ds = data.load_fashion_mnist(source="embedded")
    xt, yt, xv, yv, xr, yr = tuning.split_for_tuning(ds.x_train, ds.y_train, 300, 200, seed=0)
    assert len(xt) == 300 and len(xv) == 200 and len(xr) == len(ds.x_train) - 200
    train = {x.tobytes() for x in ds.x_train}
    assert all(x.tobytes() in train for x in xv) and not {x.tobytes() for x in xv} & {x.tobytes() for x in xt}
    assert np.bincount(yv).min() >= 15, "validation should be stratified"
    with pytest.raises(ValueError, match="exceeds"):
        tuning.split_for_tuning(ds.x_train, ds.y_train, len(ds.x_train), 200)


def test_distributed_worker_validates_on_training_images(tmp_path, monkeypatch):
    """#12.3: a distributed-tuning worker takes its validation images from the training set, not the test set."""
    ds = data.load_fashion_mnist(source="embedded")
    seen = {}

    class FakeTuner:
        def search(self, x, y, validation_data, **kw):
            seen["x"], seen["val"] = x, validation_data[0]

    monkeypatch.setattr(tuning, "make_tuner", lambda *a, **k: FakeTuner())
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"kind": "random", "directory": str(tmp_path), "project": "p", "max_trials": 1,
                               "epochs": 1, "n_train": 300, "n_val": 100, "source": "embedded", "seed": 0}))
    tuning._worker_main(["--config", str(cfg)])
    test = {x.tobytes() for x in ds.x_test}
    train = {x.tobytes() for x in ds.x_train}
    assert len(seen["val"]) == 100 and not any(x.tobytes() in test for x in seen["val"])
    assert all(x.tobytes() in train for x in seen["val"])
    assert not {x.tobytes() for x in seen["val"]} & {x.tobytes() for x in seen["x"]}


def test_score_hp_scores_a_point_like_a_trial(small):
    hp = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.0, "learning_rate": 1e-3}
    assert 0 <= tuning.score_hp(hp, *small, epochs=1, seed=3) <= 1


def test_hyperband_brackets_match_keras_tuner():
    import keras_tuner as kt

    for max_epochs, factor in [(2, 3), (4, 3), (9, 3), (10, 2), (1, 3)]:
        o = kt.oracles.HyperbandOracle(objective=kt.Objective("val_accuracy", "max"), max_epochs=max_epochs,
                                       factor=factor)
        want = [(b, r, o._get_size(b, r), o._get_epochs(b, r))
                for b in range(o._get_num_brackets() - 1, -1, -1) for r in range(o._get_num_rounds(b))]
        got = tuning.hyperband_brackets(max_epochs, factor)
        assert [tuple(r) for r in got[["bracket", "round", "trials", "epochs"]].values.tolist()] == want
    with pytest.raises(ValueError, match="factor"):
        tuning.hyperband_brackets(9, 1)


def test_automl_search_tries_several_families():
    ds = data.load_fashion_mnist(source="embedded")
    s = tuning.automl_search(ds.x_train[:300], ds.y_train[:300], n_iter=4, cv=2, seed=0)
    families = {type(p["model"]).__name__ for p in s.cv_results_["params"]}
    assert len(families) >= 2 and 0 <= s.best_score_ <= 1
    assert s.best_estimator_.predict(ds.x_test[:5].reshape(5, -1) / 255.0).shape == (5,)
    with pytest.raises(ValueError, match="n_iter"):
        tuning.automl_search(ds.x_train[:50], ds.y_train[:50], n_iter=0)


def test_bad_tuner_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown tuner"):
        tuning.make_tuner("grid", tmp_path, "x")
    with pytest.raises(ValueError, match="at least 1"):
        tuning.make_tuner("random", tmp_path, "x", max_trials=0)


def test_distributed_search_with_worker_processes(tmp_path):
    r = tuning.distributed_search(2, tmp_path, "dist", max_trials=2, epochs=1, n_train=300, n_val=100,
                                  source="embedded", timeout=300)
    assert r["trials"] == 2 and 0 <= r["best_score"] <= 1
    logs = {p.name for p in (tmp_path / "logs-dist").glob("*.log")}
    assert logs == {"chief.log", "tuner0.log", "tuner1.log"}
    assert "tuner0 done" in (tmp_path / "logs-dist" / "tuner0.log").read_text()


def test_a_second_process_on_the_same_project_is_refused_then_waits(tmp_path):
    """Two real processes on one project: the second is refused with the holder's pid, or waits for it. The
    holder holds until told to stop (stdin), so a slow, loaded machine cannot let the lock go early."""
    import subprocess
    import sys
    import threading
    import time

    from mlcourse.processes import child_env
    from mlcourse.session import ROOT

    holder = ("import sys\nfrom mlcourse import tuning\n"
              "t = tuning.make_tuner('random', sys.argv[1], 'shared', max_trials=1, verbose=False)\n"
              "print('holding', flush=True)\nsys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path)], env=child_env(), cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        with pytest.raises(tuning.ProjectInUseError) as err:
            tuning.make_tuner("random", tmp_path, "shared", max_trials=1, verbose=False)
        msg = str(err.value)
        assert "'shared'" in msg and f"process {proc.pid}" in msg and "another project name" in msg
        assert not (tmp_path / "shared" / "trial_0").exists()  # nothing of the holder's touched
        other = tuning.make_tuner("random", tmp_path, "other", max_trials=1, verbose=False)  # another name: fine
        assert other is not None

        def release():
            time.sleep(1.0)
            proc.stdin.write("done\n")
            proc.stdin.flush()

        threading.Thread(target=release, daemon=True).start()
        assert tuning.make_tuner("random", tmp_path, "shared", max_trials=1, verbose=False, wait=120) is not None
        assert proc.wait(timeout=30) == 0  # it waited for the holder to end, then took the project
    finally:
        proc.kill()
        proc.wait(10)
        tuning.release_project(tmp_path, "shared")
        tuning.release_project(tmp_path, "other")


def test_search_on_a_tuner_built_with_keras_tuner_directly_takes_the_lock(tmp_path):
    """02's teaching cells build kt.RandomSearch themselves: tuning.search still refuses a project another
    process holds."""
    import subprocess
    import sys

    import keras_tuner as kt

    from mlcourse.processes import child_env
    from mlcourse.session import ROOT

    holder = ("import sys\nfrom mlcourse import tuning\ntuning.project_lock(sys.argv[1], 'by-hand')\n"
              "print('holding', flush=True)\nsys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path)], env=child_env(), cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        tuner = kt.RandomSearch(tuning.build_hypermodel, objective="val_accuracy", max_trials=1,
                                directory=str(tmp_path), project_name="by-hand")
        x, y = np.zeros((8, 28, 28), np.uint8), np.arange(8) % 10
        with pytest.raises(tuning.ProjectInUseError, match="'by-hand'"):
            tuning.search(tuner, x, y, x, y, epochs=1)
        assert not list((tmp_path / "by-hand").glob("trial_*"))
    finally:
        proc.kill()
        proc.wait(10)


def test_sizes_name_the_same_parameters_and_take_overrides():
    for size in ("smoke", "lesson", "full"):
        table = tuning.sizes(size)
        assert set(table) == set(tuning.SIZES["full"]) and isinstance(table["DIST_WORKERS"], tuple)
    assert tuning.sizes("lesson", N_TUNE=123, EPOCHS=None)["N_TUNE"] == 123
    assert tuning.sizes("lesson", EPOCHS=None)["EPOCHS"] == tuning.SIZES["lesson"]["EPOCHS"]
    with pytest.raises(ValueError, match="unknown"):
        tuning.sizes("lesson", N_TUNES=5)
    lesson, full = tuning.sizes("lesson"), tuning.sizes("full")
    assert tuning.hyperband_brackets(lesson["HB_EPOCHS"]).bracket.nunique() >= 3, "Hyperband needs several brackets"
    assert lesson["N_TUNE"] <= full["N_TUNE"] and lesson["GRID_SEEDS"] >= 10


def test_equal_epoch_budget_and_epochs_trained():
    b = tuning.hyperband_brackets(9, 3)
    assert b.epochs_trained.tolist() == [9, 6, 6, 15, 12, 27]  # continued trials train only the extra epochs
    assert tuning.equal_epoch_trials(9) == 8 and tuning.equal_epoch_trials(2) == 2


def test_trial_progress_ticks_once_per_trial_and_counts_what_is_on_disk(small, tmp_path, monkeypatch):
    import functools
    import io

    import tqdm as _tqdm

    # a bar disabled by TQDM_DISABLE counts nothing: count on a real one, written to a string
    monkeypatch.setattr(tuning, "tqdm", functools.partial(_tqdm.tqdm, disable=False, file=io.StringIO()))
    t = tuning.make_tuner("random", tmp_path, "p", max_trials=2, verbose=False)
    assert tuning.expected_trials(t) == 2
    with tuning.trial_progress(t) as bar:
        t.search(*small[:2], validation_data=small[2:], epochs=1, verbose=0)
    assert (bar.n, bar.total) == (2, 2)
    assert "on_trial_end" not in vars(t), "the hook must be removed after the search"
    again = tuning.make_tuner("random", tmp_path, "p", max_trials=3, verbose=False)
    with tuning.trial_progress(again) as bar:
        assert bar.n == 2  # resumed: the two finished trials count as done
        again.search(*small[:2], validation_data=small[2:], epochs=1, verbose=0)
    assert (bar.n, bar.total) == (3, 3)
    hb = tuning.make_tuner("hyperband", tmp_path, "hb", max_epochs=9, verbose=False)
    assert tuning.expected_trials(hb) == tuning.hyperband_brackets(9, 3).trials.sum() == 23


def test_hyperband_table_reads_the_brackets_the_tuner_ran(small, tmp_path):
    t = tuning.make_tuner("hyperband", tmp_path, "hb", max_epochs=3, verbose=False)
    table = tuning.search(t, *small, epochs=3)
    got = tuning.hyperband_table(t)
    want = tuning.hyperband_brackets(3, 3)
    assert got[["bracket", "round", "models", "epochs_each"]].values.tolist() == \
        want[["bracket", "round", "trials", "epochs"]].values.tolist()
    assert got.epochs_trained.tolist() == want.epochs_trained.tolist()  # round 1 continues round 0's weights
    assert int(table.epochs.sum()) == int(want.epochs_trained.sum()), "the clock counts the epochs really trained"
    assert got.best_score.between(0, 1).all()
    with pytest.raises(ValueError, match="Hyperband"):
        r = tuning.make_tuner("random", tmp_path, "r", max_trials=1, verbose=False)
        tuning.search(r, *small, epochs=1)
        tuning.hyperband_table(r)


def test_shifted_grid_covers_each_axis_with_per_axis_values():
    g = tuning.shifted_grid({"gamma": (1e-3, 10.0), "C": (10.0, 1000.0)}, 3, seed=0)
    assert len(g) == 9 and {len({p["gamma"] for p in g}), len({p["C"] for p in g})} == {3}
    assert all(1e-3 <= p["gamma"] <= 10 and 10 <= p["C"] <= 1000 for p in g)
    other = tuning.shifted_grid({"gamma": (1e-3, 10.0), "C": (10.0, 1000.0)}, 3, seed=1)
    assert {p["gamma"] for p in g} != {p["gamma"] for p in other}, "each seed shifts the grid"
    gam = sorted({p["gamma"] for p in g})
    assert np.allclose(np.diff(np.log10(gam)), 4 / 3), "evenly spaced on the log scale"
    with pytest.raises(ValueError, match="low < high"):
        tuning.shifted_grid({"C": (0.0, 1.0)}, 3, seed=0)


def test_grid_vs_random_random_wins_when_one_axis_matters_and_not_on_one_axis():
    """Bergstra & Bengio's mechanism on a score that only gamma moves: random search's 9 distinct gamma values beat
    the 3 x 3 grid's 3 in most seeds; a 9-value grid on gamma alone is at least as good as 9 random values."""
    def score(p):  # a sharp peak along gamma; C does nothing
        return float(np.exp(-4 * (np.log10(p["gamma"]) + 1.3) ** 2))

    seeds = range(20)
    two = tuning.grid_vs_random(score, {"gamma": (1e-3, 10.0), "C": (10.0, 1000.0)}, seeds)
    assert len(two) == 20 * 18 and set(two.method) == {"grid", "random"}
    best = two.groupby(["seed", "method"]).score.max().unstack()
    assert (best.random > best.grid).sum() >= 14
    one = tuning.grid_vs_random(score, {"gamma": (1e-3, 10.0)}, seeds, per_axis=9)
    best = one.groupby(["seed", "method"]).score.max().unstack()
    assert (best.grid >= best.random).sum() >= 12 and best.grid.mean() >= best.random.mean()


def test_warm_cache_prepares_projects_the_notebook_resumes(prepared_room, tmp_path):
    """#23: the room's searches, run ahead (conftest's prepared room: tuning.warm_cache is one of
    workshop.prepare's recipes), copied as a room seeds a learner's folder; warm_cache again runs nothing; the
    notebook's own tuners (same names, same arguments) resume them, the three tuners run nothing, the first search
    runs its last trial live."""
    import shutil

    import keras_tuner as kt

    shutil.copytree(prepared_room / "work" / "smoke", tmp_path, dirs_exist_ok=True)
    ds = data.load_fashion_mnist()  # the data workshop.prepare used
    done = tuning.warm_cache(ds, "smoke", seed=0, work_dir=tmp_path)
    S = tuning.sizes("smoke")
    assert done["first-search"] == S["DEMO_TRIALS"] - 1 and done["random"] == tuning.equal_epoch_trials(S["HB_EPOCHS"])
    x, y, xv, yv, _, _ = tuning.split_for_tuning(ds.x_train, ds.y_train, S["N_TUNE"], S["N_VAL"], seed=0)
    common = dict(objective="val_accuracy", seed=1, directory=tmp_path, overwrite=False)  # the notebook: SEED + 1
    trials = tuning.equal_epoch_trials(S["HB_EPOCHS"])
    notebook = {"hyperband": kt.Hyperband(tuning.build_hypermodel, max_epochs=S["HB_EPOCHS"], factor=3,
                                          project_name="hyperband", **common),
                "random": kt.RandomSearch(tuning.build_hypermodel, max_trials=trials, project_name="random", **common),
                "bayesian": kt.BayesianOptimization(tuning.build_hypermodel, max_trials=trials, num_initial_points=3,
                                                    project_name="bayesian", **common)}
    for kind, tuner in notebook.items():
        table = tuning.search(tuner, x, y, xv, yv, epochs=S["HB_EPOCHS"])
        assert table.resumed.all() and len(table) == done[kind], kind
        assert (table.trial_seconds > 0).all(), "resumed trials keep the room's timings"
    first = kt.RandomSearch(tuning.build_hypermodel, max_trials=S["DEMO_TRIALS"], project_name="first-search", **common)
    table = tuning.search(first, x, y, xv, yv, epochs=S["EPOCHS"])
    assert table.resumed.tolist() == [True] * (S["DEMO_TRIALS"] - 1) + [False]
    again = tuning.warm_cache(ds, "smoke", seed=0, work_dir=tmp_path)  # complete projects are not run again
    assert again["first-search"] == S["DEMO_TRIALS"] and again["hyperband"] == done["hyperband"]
