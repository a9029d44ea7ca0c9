"""keras-tuner searches: every tuner on the shared space, resuming, distributed chief/worker tuning."""
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
