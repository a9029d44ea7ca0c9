"""Hyperparameter tuning with keras-tuner: one search space, three tuners, resumable, distributable.

keras-tuner only accepts Keras 3 models; :func:`build_hypermodel` builds them through
:func:`mlcourse.models.build_model`, so the best trial comes back as a plain hyperparameter dict
(:func:`best_hp`) that any later notebook (compression, distillation) rebuilds in the Keras it needs.

* :func:`make_tuner`: ``"random"``, ``"hyperband"`` or ``"bayesian"``. An existing project **resumes**
  (finished trials are not run again); ``fresh=True`` starts over and keeps the old one aside, renamed;
* :func:`search`: run a tuner, recording every trial's score, epochs and finish time
  (:func:`trial_table`: best-so-far against trials and wall time);
* :func:`distributed_search`: keras-tuner's own chief/worker mode, with worker *processes* on this machine
  (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``), logs collected,
  processes always cleaned up.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlcourse.runtime import free_port, keep_aside

__all__ = ["SPACE", "hp_from_trial", "build_hypermodel", "make_tuner", "search", "trial_table", "best_hp",
           "distributed_search", "TUNERS"]

TUNERS = ("random", "hyperband", "bayesian")
#: The search space: name -> (kind, values). Shared by all tuners so that comparisons are fair.
SPACE = {
    "filters0": ("choice", [16, 32, 64]),
    "filters1": ("choice", [32, 64, 128]),
    "dense_units": ("choice", [64, 128, 256]),
    "dropout": ("float", (0.0, 0.5, 0.1)),
    "learning_rate": ("log", (1e-4, 1e-2)),
}


def _kt():
    from mlcourse.runtime import quiet_tensorflow

    quiet_tensorflow()
    import keras_tuner

    return keras_tuner


def hp_from_trial(hp) -> dict:
    """Map a keras-tuner ``HyperParameters`` (declaring :data:`SPACE` on first use) to a model hp dict."""
    values = {}
    for name, (kind, spec) in SPACE.items():
        if kind == "choice":
            values[name] = hp.Choice(name, spec)
        elif kind == "float":
            values[name] = hp.Float(name, spec[0], spec[1], step=spec[2])
        else:
            values[name] = hp.Float(name, spec[0], spec[1], sampling="log")
    return {"arch": "cnn", "filters": [values["filters0"], values["filters1"]],
            "dense_units": values["dense_units"], "dropout": round(float(values["dropout"]), 2),
            "learning_rate": float(values["learning_rate"])}


def build_hypermodel(hp):
    """keras-tuner's build function: a compiled Keras 3 model for one point of :data:`SPACE`."""
    from mlcourse import models

    return models.build_model(hp_from_trial(hp), flavor="keras3")


class _Clock:
    """Records when each trial's training ends (a Keras callback; keras-tuner copies callbacks per trial,
    so records go to a class-level list)."""

    records: list = []

    def __init__(self):
        import keras

        class Cb(keras.callbacks.Callback):
            def on_train_end(cb_self, logs=None):
                h = cb_self.model.history.history if cb_self.model.history else {}
                _Clock.records.append({"finished": time.perf_counter(),
                                       "epochs": len(h.get("val_accuracy", [])),
                                       "val_accuracy": max(h.get("val_accuracy", [np.nan]))})

        self.callback = Cb()


def _project_dir(directory, project) -> Path:
    return Path(directory) / project


def make_tuner(kind: str, directory, project: str, max_trials: int = 10, max_epochs: int = 4, seed: int = 0,
               fresh: bool = False, verbose: bool = True):
    """A keras-tuner tuner on :data:`SPACE` maximising ``val_accuracy``.

    ``max_trials`` applies to random and bayesian; Hyperband's budget is ``max_epochs`` (factor 3).
    If ``directory/project`` exists, the tuner **resumes** it. ``fresh=True`` moves it to
    ``project-previous-<time>`` first (nothing you tuned is deleted) and starts over.
    """
    kt = _kt()
    if kind not in TUNERS:
        raise ValueError(f"Unknown tuner {kind!r}: use one of {TUNERS}.")
    if max_trials < 1 or max_epochs < 1:
        raise ValueError("max_trials and max_epochs must be at least 1.")
    path = _project_dir(directory, project)
    if path.exists() and fresh:
        kept = keep_aside(path)
        if verbose:
            print(f"Starting fresh; the previous results are kept in {kept}")
    elif path.exists() and verbose:
        done = len(list(path.glob("trial_*/trial.json")))
        print(f"Resuming {path} ({done} trials on disk): finished trials are not run again. "
              "Pass fresh=True to start over.")
    common = dict(objective="val_accuracy", directory=str(directory), project_name=project, overwrite=False,
                  seed=seed)
    if kind == "hyperband":
        tuner = kt.Hyperband(build_hypermodel, max_epochs=max_epochs, factor=3, **common)
    elif kind == "random":
        tuner = kt.RandomSearch(build_hypermodel, max_trials=max_trials, **common)
    else:
        tuner = kt.BayesianOptimization(build_hypermodel, max_trials=max_trials, num_initial_points=3, **common)
    return tuner


def search(tuner, x, y, x_val, y_val, epochs: int = 4, batch_size: int = 128, verbose: int = 0) -> pd.DataFrame:
    """Run ``tuner.search``; return every trial of the project, in order, with best-so-far.

    Trials run now get ``seconds`` (since this call started) and ``epochs``; trials found on disk from an
    earlier run (resumed) are marked ``resumed=True`` and have no timing.
    """
    from mlcourse.runtime import silenced

    clock = _Clock()
    _Clock.records = []
    start = time.perf_counter()
    before = set(tuner.oracle.trials)
    with (silenced() if not verbose else contextlib.nullcontext()):
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
                     callbacks=[clock.callback], verbose=verbose)
    trials = sorted(tuner.oracle.trials.values(),  # run order (ids are numbers, as strings)
                    key=lambda t: (len(t.trial_id), t.trial_id))
    table = trial_table(trials)
    table["resumed"] = [t.trial_id in before for t in trials]
    new = ~table["resumed"]
    records = _Clock.records[: int(new.sum())]
    table["seconds"], table["epochs"] = np.nan, np.nan
    table.loc[new[new].index[: len(records)], "seconds"] = [r["finished"] - start for r in records]
    table.loc[new[new].index[: len(records)], "epochs"] = [r["epochs"] for r in records]
    return table


def trial_table(trials) -> pd.DataFrame:
    """One row per trial (in the order run): its hyperparameters, score and the best score so far."""
    rows = []
    for i, t in enumerate(trials, 1):
        score = t.score if t.score is not None else np.nan
        rows.append({"trial": i, "score": score, **{k: t.hyperparameters.values.get(k) for k in SPACE}})
    df = pd.DataFrame(rows, columns=["trial", "score", *SPACE])
    df["best_so_far"] = df["score"].cummax()
    return df


def best_hp(tuner) -> dict:
    """The best trial's hyperparameters as a model hp dict (for :func:`mlcourse.models.build_model`)."""
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise RuntimeError("The tuner has no finished trial yet: run search() first.")
    return hp_from_trial(_Fixed(best[0].values))


class _Fixed:
    """A stand-in for HyperParameters that returns stored values (used to rebuild the best trial)."""

    def __init__(self, values):
        self.values = values

    def Choice(self, name, *a, **k):
        return self.values[name]

    Float = Choice


# ----------------------------------------------------------------------------------------- distributed
def _worker_main(argv):
    """Entry point of one distributed-tuning process (chief or worker); see :func:`distributed_search`."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    cfg = json.loads(Path(args.config).read_text())
    from mlcourse import data

    ds = data.load_fashion_mnist(source=cfg["source"])
    x, y = data.stratified_subset(ds.x_train, ds.y_train, cfg["n_train"], seed=0)
    xv, yv = ds.x_test[: cfg["n_val"]], ds.y_test[: cfg["n_val"]]
    tuner = make_tuner(cfg["kind"], cfg["directory"], cfg["project"], max_trials=cfg["max_trials"],
                       max_epochs=cfg["epochs"], seed=cfg["seed"], verbose=False)
    tuner.search(x, y, validation_data=(xv, yv), epochs=cfg["epochs"], batch_size=128, verbose=0)
    print(f"{os.environ.get('KERASTUNER_TUNER_ID')} done", flush=True)


def distributed_search(n_workers: int, directory, project: str, kind: str = "random", max_trials: int = 6,
                       epochs: int = 2, n_train: int = 5000, n_val: int = 1000, source: str = "auto",
                       seed: int = 0, timeout: float = 1800, threads_per_worker: int | None = None) -> dict:
    """Tune with keras-tuner's chief/worker mode: one chief process (the oracle) and ``n_workers`` workers.

    Every process gets ``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``, ...), ``KERASTUNER_ORACLE_IP`` and a
    free ``KERASTUNER_ORACLE_PORT`` (the oracle listens on loopback only). The processes are started by
    :class:`mlcourse.runtime.ProcessGroup`: they die with this process, are stopped on any error or timeout,
    and each one's output is kept in ``directory/logs-<project>/``. Returns ``{"seconds", "trials",
    "best_score", "logs"}``.
    """
    from mlcourse.runtime import ProcessGroup

    if n_workers < 1:
        raise ValueError("n_workers must be at least 1.")
    directory = Path(directory)
    logs = directory / f"logs-{project}"
    logs.mkdir(parents=True, exist_ok=True)
    config = logs / "config.json"
    config.write_text(json.dumps({"kind": kind, "directory": str(directory), "project": project,
                                  "max_trials": max_trials, "epochs": epochs, "n_train": n_train,
                                  "n_val": n_val, "source": source, "seed": seed}))
    port = free_port()
    base_env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    if threads_per_worker:
        base_env.update(TF_NUM_INTRAOP_THREADS=threads_per_worker, TF_NUM_INTEROP_THREADS=1,
                        OMP_NUM_THREADS=threads_per_worker)
    cmd = [sys.executable, "-m", "mlcourse.tuning", "worker", "--config", str(config)]
    workers = [f"tuner{i}" for i in range(n_workers)]
    for tid in ["chief"] + workers:  # each run starts its logs afresh
        (logs / f"{tid}.log").unlink(missing_ok=True)
    start = time.perf_counter()
    with ProcessGroup(logs, grace=3.0) as group:
        chief = group.start("chief", cmd, env={**base_env, "KERASTUNER_TUNER_ID": "chief"})
        _wait_for_port(port, chief, logs / "chief.log")
        for tid in workers:
            group.start(tid, cmd, env={**base_env, "KERASTUNER_TUNER_ID": tid})
        codes = group.wait(workers, timeout=max(1.0, timeout - (time.perf_counter() - start)))
        bad = [t for t, c in codes.items() if c != 0]
        if bad:
            raise RuntimeError(f"tuning worker {bad[0]} failed (exit {codes[bad[0]]}):\n{group.log(bad[0])}")
        seconds = time.perf_counter() - start
    trials = [json.loads(t.read_text()) for t in (directory / project).glob("trial_*/trial.json")]
    scores = [t["score"] for t in trials if t.get("score") is not None]
    return {"seconds": seconds, "trials": len(scores), "best_score": max(scores) if scores else np.nan,
            "logs": str(logs)}


def _wait_for_port(port: int, proc, log: Path, timeout: float = 120) -> None:
    """Wait until the chief ``proc`` accepts connections on ``127.0.0.1:port``; a clear error if it exits first
    or does not open the port within ``timeout`` seconds."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the tuning chief exited early (code {proc.returncode}); see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the tuning chief did not open port {port} within {timeout} s; see {log}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        print("usage: python -m mlcourse.tuning worker --config CONFIG  (started by distributed_search)")
