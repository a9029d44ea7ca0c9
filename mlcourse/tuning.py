"""Hyperparameter tuning with keras-tuner: one search space, three tuners, resumable, distributable.

keras-tuner only accepts Keras 3 models; :func:`build_hypermodel` builds them through
:func:`mlcourse.models.build_model`, so the best trial comes back as a plain hyperparameter dict
(:func:`best_hp`) that any later notebook (compression, distillation) rebuilds in the Keras it needs.

* :func:`make_tuner`: ``"random"``, ``"hyperband"`` or ``"bayesian"``. An existing project **resumes**
  (finished trials are not run again); ``fresh=True`` starts over and keeps the old one aside, renamed;
* :func:`search`: run a tuner, recording every trial's score, epochs and time, keyed by trial id (a trial
  redone after a crash gets its own time; :func:`trial_table`: best-so-far against trials and wall time);
* :func:`split_for_tuning`: tuning and validation images, both from the *training* set (the test set is
  kept for the final verdict); :func:`score_hp`: one point of the space scored exactly as a trial is (the
  fair baseline); :func:`hyperband_brackets`: the brackets keras-tuner's Hyperband runs, computed;
* :func:`automl_search`: a small AutoML run (preprocessing and model family searched together, scikit-learn);
* :func:`distributed_search`: keras-tuner's own chief/worker mode, with worker *processes* on this machine
  (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``), logs collected,
  processes always cleaned up.

One process at a time per project: :func:`make_tuner` (and :func:`distributed_search`, for its chief and
workers) hold ``<directory>/<project>.mlcourse.lock`` (``fcntl.flock``, the holder's pid inside) for as long as
the tuner lives; a second process on the same project waits ``wait`` seconds, then gets a
:class:`ProjectInUseError` naming the project, the holder's pid and what to do.

Taught in notebook ``01_tuning``, which writes the keras-tuner calls in plain sight; this module is their
tested version.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlcourse.runtime import free_port, keep_aside, quiet_import

__all__ = ["ProjectInUseError", "project_lock", "release_project", "SPACE", "hp_from_trial", "build_hypermodel",
           "make_tuner", "search", "trial_table", "best_hp", "distributed_search", "TUNERS", "split_for_tuning",
           "score_hp", "hyperband_brackets", "automl_search"]

TUNERS = ("random", "hyperband", "bayesian")
#: The search space: name -> (kind, values). Shared by all tuners so that comparisons are fair.
SPACE = {
    "filters0": ("choice", [16, 32, 64]),
    "filters1": ("choice", [32, 64, 128]),
    "dense_units": ("int", (64, 256, 64)),
    "dropout": ("float", (0.0, 0.5, 0.1)),
    "learning_rate": ("log", (1e-4, 1e-2)),
}


def hp_from_trial(hp) -> dict:
    """Map a keras-tuner ``HyperParameters`` (declaring :data:`SPACE` on first use) to a model hp dict."""
    values = {}
    for name, (kind, spec) in SPACE.items():
        if kind == "choice":
            values[name] = hp.Choice(name, spec)
        elif kind == "int":
            values[name] = hp.Int(name, spec[0], spec[1], step=spec[2])
        elif kind == "float":
            values[name] = hp.Float(name, spec[0], spec[1], step=spec[2])
        else:
            values[name] = hp.Float(name, spec[0], spec[1], sampling="log")
    return {"arch": "cnn", "filters": [values["filters0"], values["filters1"]],
            "dense_units": int(values["dense_units"]), "dropout": round(float(values["dropout"]), 2),
            "learning_rate": float(values["learning_rate"])}


def build_hypermodel(hp):
    """keras-tuner's build function: a compiled Keras 3 model for one point of :data:`SPACE`."""
    from mlcourse import models

    return models.build_model(hp_from_trial(hp), flavor="keras3")


class _Clock:
    """Per-trial timings keyed by **trial id**: when each trial began and ended (hooks on the tuner) and how
    many epochs it trained (a Keras callback; keras-tuner deep-copies callbacks per trial, so the callback
    writes to the class-level ``current`` trial set by the hooks). A trial redone after a crash keeps its
    id and gets its own time; no trial can inherit another's."""

    current: str | None = None
    epochs: dict = {}

    def __init__(self):
        import keras

        class Cb(keras.callbacks.Callback):
            def on_epoch_end(cb_self, epoch, logs=None):
                if _Clock.current is not None:
                    _Clock.epochs[_Clock.current] = _Clock.epochs.get(_Clock.current, 0) + 1

        self.callback = Cb()
        self.began, self.ended = {}, {}
        _Clock.current, _Clock.epochs = None, {}

    @contextlib.contextmanager
    def hooked(self, tuner):
        """Wrap ``tuner.on_trial_begin/on_trial_end`` for the duration of one search."""
        begin, end = tuner.on_trial_begin, tuner.on_trial_end

        def on_trial_begin(trial):
            _Clock.current = trial.trial_id
            _Clock.epochs[trial.trial_id] = 0  # a redone trial starts counting afresh
            self.began[trial.trial_id] = time.perf_counter()
            return begin(trial)

        def on_trial_end(trial):
            self.ended[trial.trial_id] = time.perf_counter()
            _Clock.current = None
            return end(trial)

        tuner.on_trial_begin, tuner.on_trial_end = on_trial_begin, on_trial_end
        try:
            yield self
        finally:
            del tuner.on_trial_begin, tuner.on_trial_end  # back to the class's methods


def _project_dir(directory, project) -> Path:
    return Path(directory) / project


class ProjectInUseError(RuntimeError):
    """Another process is tuning this project now (see :func:`project_lock`)."""


_HELD: dict[str, object] = {}  # lock path -> open file holding the flock, in this process
_OWNER_ENV = "MLCOURSE_TUNING_LOCK_OWNER"  # set for distributed_search's own chief and workers


def _lock_path(directory, project) -> Path:
    return Path(directory) / f"{project}.mlcourse.lock"


def project_lock(directory, project: str, wait: float = 0.0):
    """Hold the lock of tuning project ``directory/project`` for this process (until it exits or
    :func:`release_project`); return the open lock file. Already held by this process: returned again.
    Held by another process: wait up to ``wait`` seconds, then :class:`ProjectInUseError`."""
    import fcntl

    path = _lock_path(directory, project)
    key = str(path.resolve())
    if key in _HELD and not _HELD[key].closed:
        return _HELD[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = os.environ.get(_OWNER_ENV)
    f = open(path, "a+")
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            f.seek(0)
            holder = f.read().strip().split()[:1]
            holder = holder[0] if holder else "unknown"
            if owner and holder == owner:  # our own distributed_search holds it for us: chief and workers share
                f.close()
                return None
            if time.monotonic() >= deadline:
                f.close()
                raise ProjectInUseError(
                    f"tuning project {project!r} in {Path(directory)} is in use by process {holder} (lock file "
                    f"{path}): two searches in one project overwrite each other's trials. Wait for it to finish "
                    f"(or stop that notebook's kernel; make_tuner(..., wait=SECONDS) waits for it), or use "
                    f"another project name."
                ) from None
            time.sleep(0.2)
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    f.flush()
    _HELD[key] = f
    return f


def release_project(directory, project: str) -> None:
    """Let other processes tune ``directory/project`` (this process's lock on it, if any, is released)."""
    f = _HELD.pop(str(_lock_path(directory, project).resolve()), None)
    if f is not None and not f.closed:
        f.close()


def make_tuner(kind: str, directory, project: str, max_trials: int = 10, max_epochs: int = 4, seed: int = 0,
               fresh: bool = False, verbose: bool = True, wait: float = 0.0):
    """A keras-tuner tuner on :data:`SPACE` maximising ``val_accuracy``.

    ``max_trials`` applies to random and bayesian; Hyperband's budget is ``max_epochs`` (factor 3).
    If ``directory/project`` exists, the tuner **resumes** it. ``fresh=True`` moves it to
    ``project-previous-<time>`` first (nothing you tuned is deleted) and starts over.

    This process holds the project's lock (:func:`project_lock`) from here on: another process that makes a
    tuner on the same project waits ``wait`` seconds, then gets :class:`ProjectInUseError`.
    """
    kt = quiet_import("keras_tuner")
    if kind not in TUNERS:
        raise ValueError(f"Unknown tuner {kind!r}: use one of {TUNERS}.")
    if max_trials < 1 or max_epochs < 1:
        raise ValueError("max_trials and max_epochs must be at least 1.")
    path = _project_dir(directory, project)
    project_lock(directory, project, wait=wait)  # before reading or moving anything of the project
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


def search(tuner, x, y, x_val, y_val, epochs: int = 4, batch_size: int = 128, verbose: int = 0,
           callbacks=None) -> pd.DataFrame:
    """Run ``tuner.search``; return every trial of the project, in order, with best-so-far.

    Timings are keyed by trial id. Trials run by this call get ``seconds`` (from this call's start to the
    trial's end: the wall-time axis), ``trial_seconds`` (the trial alone) and ``epochs``. Trials finished by
    an earlier run are ``resumed=True`` and have no timing; a trial that was running when an earlier
    process died is redone now and is timed like any other. ``callbacks`` (e.g. EarlyStopping) are passed
    to every trial's ``fit``. The project is held for this process first (:func:`project_lock`): a search
    on a project that another kernel is searching is refused (:class:`ProjectInUseError`), never interleaved.
    """
    from mlcourse.runtime import silenced

    project_lock(tuner.directory, tuner.project_name)
    clock = _Clock()
    start = time.perf_counter()
    with clock.hooked(tuner), (silenced() if not verbose else contextlib.nullcontext()):
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
                     callbacks=[clock.callback, *(callbacks or [])], verbose=verbose)
    trials = sorted(tuner.oracle.trials.values(),  # run order (ids are numbers, as strings)
                    key=lambda t: (len(t.trial_id), t.trial_id))
    table = trial_table(trials)
    ids = [t.trial_id for t in trials]
    table.insert(1, "trial_id", ids)
    done = [i in clock.ended for i in ids]
    table["resumed"] = [not d for d in done]
    table["seconds"] = [clock.ended[i] - start if d else np.nan for i, d in zip(ids, done)]
    table["trial_seconds"] = [clock.ended[i] - clock.began[i] if d else np.nan for i, d in zip(ids, done)]
    table["epochs"] = [_Clock.epochs.get(i, np.nan) if d else np.nan for i, d in zip(ids, done)]
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

    Float = Int = Choice


def split_for_tuning(x_train, y_train, n_tune: int, n_val: int, seed: int = 0):
    """Tuning and validation images, **both from the training set**; the test set stays untouched.

    Returns ``(x_tune, y_tune, x_val, y_val, x_rest, y_rest)``: ``n_val`` stratified validation images,
    ``n_tune`` stratified tuning images from the rest, and the whole rest (for retraining the winner).
    """
    from sklearn.model_selection import train_test_split

    from mlcourse import data

    if n_val < 10 or n_tune < 10:
        raise ValueError(f"n_tune and n_val must be at least 10 (got {n_tune}, {n_val}).")
    if n_val + n_tune > len(x_train):
        raise ValueError(f"n_tune + n_val = {n_tune + n_val} exceeds the {len(x_train)} training images: ask for "
                         "fewer.")
    x_rest, x_val, y_rest, y_val = train_test_split(x_train, y_train, test_size=n_val, stratify=y_train,
                                                    random_state=seed)
    x_tune, y_tune = data.stratified_subset(x_rest, y_rest, n_tune, seed=seed)
    return x_tune, y_tune, x_val, y_val, x_rest, y_rest


def score_hp(hp: dict, x, y, x_val, y_val, epochs: int, batch_size: int = 128, seed: int = 0) -> float:
    """Score one point of the space **as a trial is scored**: train ``epochs`` epochs on ``(x, y)`` and
    return the best ``val_accuracy`` over the epochs (keras-tuner's objective). Used for a fair baseline."""
    from mlcourse import models
    from mlcourse.runtime import set_seed

    set_seed(seed)
    model = models.build_model(hp, flavor="keras3")
    h = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size, verbose=0)
    return float(max(h.history["val_accuracy"]))


def hyperband_brackets(max_epochs: int, factor: int = 3) -> pd.DataFrame:
    """The brackets keras-tuner's ``Hyperband(max_epochs, factor)`` runs in one iteration, in run order.

    One row per round: ``bracket``, ``round``, ``trials`` (models trained in that round) and ``epochs`` (the
    epoch each of them is trained up to). Bracket ``s`` starts ``ceil(ceil(1 + log_f(max_epochs)) / (s+1)
    * f**s)`` models at ``ceil(max_epochs / f**s)`` epochs and keeps the best ``1/f`` each round;
    the most aggressive bracket runs first. Same formulas as ``keras_tuner``'s ``HyperbandOracle``.
    """
    if int(max_epochs) != max_epochs or max_epochs < 1 or int(factor) != factor or factor < 2:
        raise ValueError(f"max_epochs must be an integer >= 1 and factor an integer >= 2 (got {max_epochs}, "
                         f"{factor}).")
    n_brackets, e = 0, float(max_epochs)
    while e >= 1:
        e, n_brackets = e / factor, n_brackets + 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    rows = []
    for b in range(n_brackets - 1, -1, -1):
        for r in range(b + 1):
            rows.append({"bracket": b, "round": r,
                         "trials": math.ceil(end_size / (b + 1) * factor ** (b - r)),
                         "epochs": math.ceil(max_epochs / factor ** (b - r))})
    return pd.DataFrame(rows)


def automl_search(x, y, n_iter: int = 10, cv: int = 3, seed: int = 0, n_jobs: int = 1):
    """A small AutoML run: preprocessing **and** model family searched together (scikit-learn).

    A ``Pipeline(scale -> reduce -> model)`` whose steps are themselves hyperparameters: scaling or not,
    PCA of several sizes or none, and logistic regression, a random forest, k-nearest neighbours or an RBF
    SVM, each with its own hyperparameters. ``RandomizedSearchCV`` draws ``n_iter`` pipelines (images are
    flattened). Returns the fitted search (``best_estimator_`` is refit on all of ``x``).
    """
    from scipy.stats import loguniform, randint
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1) / 255.0
    if n_iter < 1 or cv < 2:
        raise ValueError(f"n_iter must be >= 1 and cv >= 2 (got {n_iter}, {cv}).")
    pipe = Pipeline([("scale", StandardScaler()), ("reduce", PCA(random_state=seed)),
                     ("model", LogisticRegression())])
    prep = {"scale": [StandardScaler(), "passthrough"],
            "reduce": [PCA(n_components=k, random_state=seed) for k in (20, 50)] + ["passthrough"]}
    space = [
        {**prep, "model": [LogisticRegression(max_iter=200)], "model__C": loguniform(1e-3, 1e2)},
        {**prep, "model": [RandomForestClassifier(random_state=seed, n_jobs=n_jobs)],
         "model__n_estimators": randint(20, 150), "model__max_depth": [8, 16, None]},
        {**prep, "model": [KNeighborsClassifier()], "model__n_neighbors": randint(1, 15)},
        {**prep, "model": [SVC()], "model__C": loguniform(1e-1, 1e2), "model__gamma": ["scale"]},
    ]
    search = RandomizedSearchCV(pipe, space, n_iter=n_iter, cv=cv, random_state=seed, n_jobs=n_jobs,
                                error_score="raise")
    return search.fit(x, np.asarray(y))


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
    # validation comes out of the training set, as in the notebook: the test set is never used for tuning
    x, y, xv, yv, _, _ = split_for_tuning(ds.x_train, ds.y_train, cfg["n_train"], cfg["n_val"],
                                          seed=cfg.get("seed", 0))
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

    if n_workers < 1:
        raise ValueError("n_workers must be at least 1.")
    directory = Path(directory)
    held_before = str(_lock_path(directory, project).resolve()) in _HELD
    project_lock(directory, project)  # before touching its logs: a second search on it is refused here
    try:
        return _distributed(n_workers, directory, project, kind, max_trials, epochs, n_train, n_val, source, seed,
                            timeout, threads_per_worker)
    finally:
        if not held_before:
            release_project(directory, project)


def _distributed(n_workers, directory, project, kind, max_trials, epochs, n_train, n_val, source, seed, timeout,
                 threads_per_worker) -> dict:
    from mlcourse.runtime import ProcessGroup

    logs = directory / f"logs-{project}"
    logs.mkdir(parents=True, exist_ok=True)
    config = logs / "config.json"
    config.write_text(json.dumps({"kind": kind, "directory": str(directory), "project": project,
                                  "max_trials": max_trials, "epochs": epochs, "n_train": n_train,
                                  "n_val": n_val, "source": source, "seed": seed}))
    port = free_port()
    base_env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port, _OWNER_ENV: os.getpid()}
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
