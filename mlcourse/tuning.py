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
* :data:`SIZES` / :func:`sizes`: the notebook's parameter defaults at each run size (smoke, lesson, full), read
  by its parameters cell and by :func:`warm_cache` (which runs the notebook's keras-tuner projects ahead of a
  workshop, so that the notebook's own ``search`` resumes them);
* :func:`trial_progress`: a ``tqdm.auto`` bar advanced per finished trial (elapsed and expected time) around any
  ``tuner.search``; :func:`search` uses it; :func:`hyperband_table`: Hyperband's brackets as its own trials ran;
* :func:`shifted_grid` / :func:`grid_vs_random`: grid search against random search at one budget, over seeds
  and grid offsets (Bergstra & Bengio 2012: random wins when some axes matter little);
* :func:`automl_search`: a small AutoML run (preprocessing and model family searched together, scikit-learn);
* :func:`distributed_search`: keras-tuner's own chief/worker mode, with worker *processes* on this machine
  (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``), logs collected,
  processes always cleaned up.

One process at a time per project: :func:`make_tuner` (and :func:`distributed_search`, for its chief and
workers) hold ``<directory>/<project>.mlcourse.lock`` (``fcntl.flock``, the holder's pid inside) for as long as
the tuner lives; a second process on the same project waits ``wait`` seconds, then gets a
:class:`ProjectInUseError` naming the project, the holder's pid and what to do.

Taught in notebook ``02_tuning``, which writes the keras-tuner calls in plain sight; this module is their
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
from tqdm.auto import tqdm

from mlcourse import data, models, settings
from mlcourse.headlines import Figure, Headlines, Reference
from mlcourse.processes import ProcessGroup, free_port
from mlcourse.session import keep_aside, quiet_import, set_seed, silenced
from mlcourse.session import work_dir as _work_dir

__all__ = ["headlines", "FIGURES", "REFERENCES",
           "SIZES", "sizes", "warm_cache", "PROJECTS", "trial_progress", "expected_trials", "hyperband_table",
           "equal_epoch_trials", "shifted_grid", "grid_vs_random", "ProjectInUseError", "project_lock",
           "release_project", "SPACE", "hp_from_trial", "build_hypermodel", "make_tuner", "search", "trial_table",
           "best_hp", "distributed_search", "TUNERS", "split_for_tuning", "score_hp", "hyperband_brackets",
           "automl_search"]

TUNERS = ("random", "hyperband", "bayesian")

#: 02_tuning's parameter defaults at each run size, one table: the notebook's parameters cell and
#: :func:`warm_cache` both read it. ``HB_EPOCHS`` is Hyperband's ``max_epochs`` (factor 3): 9 gives three
#: brackets (from 9 models at 1 epoch to 3 models at 9); random search and Bayesian optimisation train each
#: trial ``HB_EPOCHS`` epochs and get as many trials as fit in the epochs Hyperband trained (equal epoch budget).
SIZES = {
    "smoke": {"N_TUNE": 600, "N_VAL": 300, "EPOCHS": 1, "HB_EPOCHS": 2, "DEMO_TRIALS": 2, "N_FINAL": 600,
              "FINAL_EPOCHS": 1, "FINAL_SEEDS": 1, "N_TEST": 1_000, "SK_N": 600, "GRID_SEEDS": 2,
              "AUTOML_ITER": 3, "AUTOML_CV": 2, "DIST_WORKERS": (2,), "DIST_TRIALS": 2, "DIST_EPOCHS": 1,
              "DIST_N": 600, "DIST_VAL": 300, "LATENCY_ROUNDS": 5,
              "LATENCY_NUMBER": 10},
    "lesson": {"N_TUNE": 700, "N_VAL": 700, "EPOCHS": 2, "HB_EPOCHS": 9, "DEMO_TRIALS": 3, "N_FINAL": 5_000,
               "FINAL_EPOCHS": 2, "FINAL_SEEDS": 3, "N_TEST": 10_000, "SK_N": 800, "GRID_SEEDS": 12,
               "AUTOML_ITER": 6, "AUTOML_CV": 3, "DIST_WORKERS": (1, 2), "DIST_TRIALS": 3, "DIST_EPOCHS": 1,
               "DIST_N": 2_000, "DIST_VAL": 1_000, "LATENCY_ROUNDS": 9,
               "LATENCY_NUMBER": 30},
    "full": {"N_TUNE": 20_000, "N_VAL": 5_000, "EPOCHS": 4, "HB_EPOCHS": 9, "DEMO_TRIALS": 5, "N_FINAL": 0,
             "FINAL_EPOCHS": 6, "FINAL_SEEDS": 3, "N_TEST": 0, "SK_N": 2_000, "GRID_SEEDS": 20,
             "AUTOML_ITER": 12, "AUTOML_CV": 3, "DIST_WORKERS": (1, 2), "DIST_TRIALS": 6, "DIST_EPOCHS": 2,
             "DIST_N": 10_000, "DIST_VAL": 2_000, "LATENCY_ROUNDS": 15,
             "LATENCY_NUMBER": 50},
}


def sizes(size: str | None = None, **given) -> dict:
    """02's defaults at ``size`` (``"smoke"``, ``"lesson"`` or ``"full"``; None follows ``MLCOURSE_SIZE``), from
    :data:`SIZES`, with every value in ``given`` that is not None put over them. ``N_FINAL`` and ``N_TEST`` of 0
    mean "all": every training image left after validation, the whole test set.

    Lesson: 02_tuning § 02 · Hyperparameter tuning with keras-tuner, and AutoML.
    """
    table = settings.pick_sizes(SIZES, settings.size(size), given)
    table["DIST_WORKERS"] = tuple(table["DIST_WORKERS"])
    return table


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
    """keras-tuner's build function: a compiled Keras 3 model for one point of :data:`SPACE`.

    Lesson: 02_tuning § 5 · Three tuners, one space, one epoch budget.
    """

    return models.build_model(hp_from_trial(hp), flavor="keras3")


class _Clock:
    """Per-trial timings keyed by **trial id**: when each trial began and ended (hooks on the tuner) and how
    many epochs it trained (a Keras callback; keras-tuner deep-copies callbacks per trial, so the callback
    writes to the class-level ``current`` trial set by the hooks). A trial redone after a crash keeps its
    id and gets its own time; no trial can inherit another's."""

    current: str | None = None
    epochs: dict = {}

    def __init__(self):
        keras = quiet_import("keras")

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

        def on_trial_begin(trial, begin):
            _Clock.current = trial.trial_id
            _Clock.epochs[trial.trial_id] = 0  # a redone trial starts counting afresh
            self.began[trial.trial_id] = time.perf_counter()
            return begin(trial)

        def on_trial_end(trial, end):
            self.ended[trial.trial_id] = time.perf_counter()
            _Clock.current = None
            _save_timing(tuner, trial.trial_id, self.ended[trial.trial_id] - self.began[trial.trial_id],
                         _Clock.epochs.get(trial.trial_id, 0))
            return end(trial)

        with _wrapped(tuner, "on_trial_begin", on_trial_begin), _wrapped(tuner, "on_trial_end", on_trial_end):
            yield self


@contextlib.contextmanager
def _wrapped(tuner, name: str, hook):
    """Call ``hook(trial, previous)`` instead of ``tuner.<name>(trial)`` inside the block; restore it after (the
    previous hook, whether the class's method or another wrapper's, so wrappers nest)."""
    had, previous = name in vars(tuner), getattr(tuner, name)
    setattr(tuner, name, lambda trial: hook(trial, previous))
    try:
        yield
    finally:
        if had:
            setattr(tuner, name, previous)
        else:
            delattr(tuner, name)


_TIMINGS = "mlcourse-timings.json"  # per project: {trial_id: {"trial_seconds", "epochs"}}, so a resume keeps them


def _timings(tuner) -> dict:
    path = _project_dir(tuner.directory, tuner.project_name) / _TIMINGS
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_timing(tuner, trial_id: str, seconds: float, epochs: int) -> None:
    path = _project_dir(tuner.directory, tuner.project_name) / _TIMINGS
    table = _timings(tuner)
    table[trial_id] = {"trial_seconds": round(seconds, 3), "epochs": int(epochs)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1))


def expected_trials(tuner) -> int | None:
    """How many trials ``tuner.search`` runs in all: ``max_trials`` for random search and Bayesian optimisation,
    the sum of the brackets' trials (:func:`hyperband_brackets`, times ``hyperband_iterations``) for Hyperband;
    None when the tuner sets no bound.

    Lesson: 02_tuning § 5 · Three tuners, one space, one epoch budget.
    """
    oracle = tuner.oracle
    if hasattr(oracle, "hyperband_iterations"):
        iterations = oracle.hyperband_iterations
        if not math.isfinite(iterations):
            return oracle.max_trials
        total = int(hyperband_brackets(oracle.max_epochs, oracle.factor).trials.sum()) * int(iterations)
        return min(total, oracle.max_trials) if oracle.max_trials else total
    return oracle.max_trials


def _finished(tuner) -> int:
    return sum(t.status in ("COMPLETED", "FAILED", "INVALID") for t in tuner.oracle.trials.values())


@contextlib.contextmanager
def trial_progress(tuner, desc: str | None = None):
    """A ``tqdm.auto`` bar over the trials of ``tuner.search`` inside the block, advanced as each trial ends
    (elapsed time, expected time left, the best score so far). Trials already on disk (a resumed project) are
    counted as done from the start; the bar's expected time is measured on the trials run now.

    ``with tuning.trial_progress(tuner): tuner.search(...)`` works on any keras-tuner tuner.

    Lesson: 02_tuning § 2 · keras-tuner by hand.
    """
    total = expected_trials(tuner)
    bar = tqdm(total=total, initial=min(_finished(tuner), total or 10**9), unit="trial",
               desc=desc or f"{tuner.project_name} trials")

    def on_trial_end(trial, end):
        result = end(trial)
        bar.update(1)
        best = [t.score for t in tuner.oracle.trials.values() if t.score is not None]
        if best:
            bar.set_postfix(best=f"{max(best):.4f}")
        return result

    try:
        with _wrapped(tuner, "on_trial_end", on_trial_end):
            yield bar
    finally:
        bar.close()


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
    Held by another process: wait up to ``wait`` seconds, then :class:`ProjectInUseError`.

    Lesson: 02_tuning § 2 · keras-tuner by hand.
    """
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

    keras-tuner gets ``seed + 1``: it takes ``seed=0`` for "no seed" and would draw a random one.

    This process holds the project's lock (:func:`project_lock`) from here on: another process that makes a
    tuner on the same project waits ``wait`` seconds, then gets :class:`ProjectInUseError`.

    Lesson: 02_tuning § 6 · Resuming: tuning results are never silently lost.
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
                  seed=seed + 1)  # keras-tuner reads seed 0 as "no seed" (seed or random.randint(1, 10000))
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

    A :func:`trial_progress` bar ticks once per trial. Timings are keyed by trial id. Trials run by this call get
    ``seconds`` (from this call's start to the trial's end: the wall-time axis), ``trial_seconds`` (the trial
    alone) and ``epochs``. Trials finished by an earlier run are ``resumed=True``, with no ``seconds``; their
    ``trial_seconds`` and ``epochs`` are those the earlier run measured (kept in the project's
    ``mlcourse-timings.json``; NaN for a project tuned without :func:`search`); a trial that was running when an earlier
    process died is redone now and is timed like any other. ``callbacks`` (e.g. EarlyStopping) are passed
    to every trial's ``fit``. The project is held for this process first (:func:`project_lock`): a search
    on a project that another kernel is searching is refused (:class:`ProjectInUseError`), never interleaved.

    Lesson: 02_tuning § 5 · Three tuners, one space, one epoch budget.
    """

    project_lock(tuner.directory, tuner.project_name)
    clock = _Clock()
    start = time.perf_counter()
    with trial_progress(tuner), clock.hooked(tuner), (silenced() if not verbose else contextlib.nullcontext()):
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
                     callbacks=[clock.callback, *(callbacks or [])], verbose=verbose)
    trials = sorted(tuner.oracle.trials.values(),  # run order (ids are numbers, as strings)
                    key=lambda t: (len(t.trial_id), t.trial_id))
    table = trial_table(trials)
    ids = [t.trial_id for t in trials]
    table.insert(1, "trial_id", ids)
    done = [i in clock.ended for i in ids]
    saved = _timings(tuner)  # what earlier runs of this project measured (a resumed trial keeps its time)
    table["resumed"] = [not d for d in done]
    table["seconds"] = [clock.ended[i] - start if d else np.nan for i, d in zip(ids, done)]
    table["trial_seconds"] = [clock.ended[i] - clock.began[i] if d else saved.get(i, {}).get("trial_seconds", np.nan)
                              for i, d in zip(ids, done)]
    table["epochs"] = [_Clock.epochs.get(i, np.nan) if d else saved.get(i, {}).get("epochs", np.nan)
                       for i, d in zip(ids, done)]
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
    """The best trial's hyperparameters as a model hp dict (for :func:`mlcourse.models.build_model`).

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds.
    """
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

    Lesson: 02_tuning § 02 · Hyperparameter tuning with keras-tuner, and AutoML.
    """
    from sklearn.model_selection import train_test_split

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
    return the best ``val_accuracy`` over the epochs (keras-tuner's objective). Used for a fair baseline.

    Lesson: 02_tuning § 1 · The baseline, scored as a trial.
    """

    set_seed(seed)
    model = models.build_model(hp, flavor="keras3")
    h = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size, verbose=0)
    return float(max(h.history["val_accuracy"]))


def hyperband_brackets(max_epochs: int, factor: int = 3) -> pd.DataFrame:
    """The brackets keras-tuner's ``Hyperband(max_epochs, factor)`` runs in one iteration, in run order.

    One row per round: ``bracket``, ``round``, ``trials`` (models trained in that round), ``epochs`` (the
    epoch each of them is trained up to) and ``epochs_trained`` (the epochs that round costs: a continued trial
    resumes from its previous round's weights, so it trains only the difference). Bracket ``s`` starts
    ``ceil(ceil(1 + log_f(max_epochs)) / (s+1) * f**s)`` models at ``ceil(max_epochs / f**s)`` epochs and keeps
    the best ``1/f`` each round; the most aggressive bracket runs first.
    Same formulas as ``keras_tuner``'s ``HyperbandOracle``.

    Lesson: 02_tuning § 3 · Hyperband: brackets of successive halving.
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
        before = 0
        for r in range(b + 1):
            trials = math.ceil(end_size / (b + 1) * factor ** (b - r))
            epochs = math.ceil(max_epochs / factor ** (b - r))
            rows.append({"bracket": b, "round": r, "trials": trials, "epochs": epochs,
                         "epochs_trained": trials * (epochs - before)})
            before = epochs
    return pd.DataFrame(rows)


def equal_epoch_trials(max_epochs: int, factor: int = 3) -> int:
    """How many trials of ``max_epochs`` epochs each fit in the epochs ``Hyperband(max_epochs, factor)`` trains
    (its :func:`hyperband_brackets`' ``epochs_trained``, rounded, at least 1): random search's trials at an equal
    epoch budget.

    Lesson: 02_tuning § 3 · Hyperband: brackets of successive halving.
    """
    return max(1, round(int(hyperband_brackets(max_epochs, factor).epochs_trained.sum()) / max_epochs))


def hyperband_table(tuner) -> pd.DataFrame:
    """Hyperband's brackets **as its own trials ran**: one row per (bracket, round) with ``models`` (trials in that
    round), ``epochs_each`` (the epoch each was trained up to), ``epochs_trained`` (the epochs the round really
    trained: a continued trial starts from its previous round's weights, at ``tuner/initial_epoch``) and
    ``best_score``. Read from each trial's ``tuner/bracket``, ``tuner/round``, ``tuner/epochs`` and
    ``tuner/initial_epoch`` values; highest (most exploring) bracket first.

    Lesson: 02_tuning § Hyperband's trade-off, read from its own trials.
    """
    rows = []
    for t in tuner.oracle.trials.values():
        v = t.hyperparameters.values
        if "tuner/bracket" not in v:
            raise ValueError("hyperband_table reads a Hyperband tuner's trials; this one has no brackets.")
        rows.append({"bracket": int(v["tuner/bracket"]), "round": int(v["tuner/round"]),
                     "epochs_each": int(v["tuner/epochs"]),
                     "epochs_trained": int(v["tuner/epochs"]) - int(v.get("tuner/initial_epoch", 0)),
                     "score": t.score if t.score is not None else np.nan})
    df = pd.DataFrame(rows, columns=["bracket", "round", "epochs_each", "epochs_trained", "score"])
    return (df.groupby(["bracket", "round"], as_index=False)
            .agg(models=("score", "size"), epochs_each=("epochs_each", "max"),
                 epochs_trained=("epochs_trained", "sum"), best_score=("score", "max"))
            .sort_values(["bracket", "round"], ascending=[False, True]).reset_index(drop=True))


def shifted_grid(space: dict, per_axis: int, seed: int) -> list[dict]:
    """A grid of ``per_axis`` values per axis of ``space`` (``{name: (low, high)}``, each on a log scale), shifted
    by a random offset drawn from ``seed``: value ``k`` sits at fraction ``(k + u) / per_axis`` of the axis,
    ``u`` uniform in [0, 1). Averaging over seeds averages over where the grid happens to fall; ``u = 0.5`` is
    the centred grid. Returns the ``per_axis ** len(space)`` points (scikit-learn's ``ParameterGrid``).
    """
    from sklearn.model_selection import ParameterGrid

    if per_axis < 1 or not space:
        raise ValueError(f"per_axis must be >= 1 and space must name at least one axis (got {per_axis}, {space}).")
    rng = np.random.default_rng(seed)
    axes = {}
    for name, (low, high) in space.items():
        if not 0 < low < high:
            raise ValueError(f"{name}: a log-scale axis needs 0 < low < high (got {low}, {high}).")
        frac = (np.arange(per_axis) + rng.uniform()) / per_axis
        axes[name] = [float(low * (high / low) ** f) for f in frac]
    return list(ParameterGrid(axes))


def grid_vs_random(score, space: dict, seeds, per_axis: int = 3, desc: str = "grid vs random") -> pd.DataFrame:
    """Grid search against random search at one budget, once per seed: a :func:`shifted_grid` of
    ``per_axis ** d`` points and as many points drawn log-uniformly by ``ParameterSampler`` (same seed), each
    scored by ``score(point) -> float`` (a real training). Returns one row per point: ``seed``, ``method``
    (``"grid"`` / ``"random"``), the point's values and ``score``. A ``tqdm.auto`` bar ticks per seed.

    Lesson: 02_tuning § 8 · Grid search against random search.
    """
    from scipy.stats import loguniform
    from sklearn.model_selection import ParameterSampler

    rows = []
    for seed in tqdm(list(seeds), desc=desc, unit="seed"):
        grid = shifted_grid(space, per_axis, seed)
        drawn = ParameterSampler({k: loguniform(lo, hi) for k, (lo, hi) in space.items()}, n_iter=len(grid),
                                 random_state=seed)
        for method, points in (("grid", grid), ("random", drawn)):
            rows += [{"seed": seed, "method": method, **p, "score": float(score(p))} for p in points]
    return pd.DataFrame(rows)


def automl_search(x, y, n_iter: int = 10, cv: int = 3, seed: int = 0, n_jobs: int = 1):
    """A small AutoML run: preprocessing **and** model family searched together (scikit-learn).

    A ``Pipeline(scale -> reduce -> model)`` whose steps are themselves hyperparameters: scaling or not,
    PCA of several sizes or none, and logistic regression, a random forest, k-nearest neighbours or an RBF
    SVM, each with its own hyperparameters. ``RandomizedSearchCV`` draws ``n_iter`` pipelines (images are
    flattened). Returns the fitted search (``best_estimator_`` is refit on all of ``x``).

    Lesson: 02_tuning § 9 · AutoML: searching the whole workflow.
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


#: The keras-tuner projects 02_tuning searches in its work folder, in the order it runs them.
PROJECTS = ("first-search", "hyperband", "random", "bayesian")


def warm_cache(ds, size: str, seed: int = 0, work_dir=None) -> dict:
    """Run 02_tuning's keras-tuner projects ahead, at the notebook's ``size`` (:data:`SIZES`), into the work
    folder it uses (``session.work_dir(size)``, or ``work_dir``), under the same project names (:data:`PROJECTS`)
    and with the same split, space, budget and seed: the notebook's own ``tuner.search(...)`` then resumes each
    one with keras-tuner's resume (``overwrite=False``) and finishes at once. ``first-search`` is left one trial
    short, so the notebook still runs one trial live where watching a search is the lesson (it is run here with
    :func:`build_hypermodel`, the tested version of the notebook's ``build_cnn``: the same space, the same layers
    and weights). Projects already complete are not run again. Returns ``{project: trials on disk}``
    (``make workshop`` prepares a room).

    Lesson: 02_tuning § 02 · Hyperparameter tuning with keras-tuner, and AutoML.
    """

    S = sizes(size)
    folder = Path(work_dir) if work_dir is not None else _work_dir(size)
    x, y, xv, yv, _, _ = split_for_tuning(ds.x_train, ds.y_train, S["N_TUNE"], S["N_VAL"], seed=seed)
    trials = equal_epoch_trials(S["HB_EPOCHS"])
    plan = {"first-search": ("random", max(1, S["DEMO_TRIALS"] - 1), S["EPOCHS"]),
            "hyperband": ("hyperband", 1, S["HB_EPOCHS"]), "random": ("random", trials, S["HB_EPOCHS"]),
            "bayesian": ("bayesian", trials, S["HB_EPOCHS"])}
    done = {}
    for project in PROJECTS:
        kind, max_trials, epochs = plan[project]
        tuner = make_tuner(kind, folder, project, max_trials=max_trials, max_epochs=S["HB_EPOCHS"], seed=seed,
                           verbose=False)
        table = search(tuner, x, y, xv, yv, epochs=epochs)
        release_project(folder, project)  # the notebook's kernel takes it next
        done[project] = len(table)
    return done


# ----------------------------------------------------------------------------------------- distributed
def _worker_main(argv):
    """Entry point of one distributed-tuning process (chief or worker); see :func:`distributed_search`."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    cfg = json.loads(Path(args.config).read_text())

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
    :class:`mlcourse.processes.ProcessGroup`: they die with this process, are stopped on any error or timeout,
    and each one's output is kept in ``directory/logs-<project>/``. A ``tqdm.auto`` bar counts the finished
    trials (read from the project's trial files) while they run. Returns ``{"seconds", "trials",
    "best_score", "logs"}``.

    Lesson: 02_tuning § 10 · Distributed tuning: a chief and workers.
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
        with tqdm(total=max_trials, desc=f"{project}: trials ({n_workers} worker(s))", unit="trial") as bar:
            def tick():  # trials the workers have finished so far, read from the project's trial files
                bar.update(max(0, _completed_on_disk(directory / project) - bar.n))

            codes = group.wait(workers, timeout=max(1.0, timeout - (time.perf_counter() - start)), on_poll=tick)
            tick()
        bad = [t for t, c in codes.items() if c != 0]
        if bad:
            raise RuntimeError(f"tuning worker {bad[0]} failed (exit {codes[bad[0]]}):\n{group.log(bad[0])}")
        seconds = time.perf_counter() - start
    trials = [json.loads(t.read_text()) for t in (directory / project).glob("trial_*/trial.json")]
    scores = [t["score"] for t in trials if t.get("score") is not None]
    return {"seconds": seconds, "trials": len(scores), "best_score": max(scores) if scores else np.nan,
            "logs": str(logs)}


def _completed_on_disk(path: Path) -> int:
    done = 0
    for f in path.glob("trial_*/trial.json"):
        try:
            done += json.loads(f.read_text()).get("status") == "COMPLETED"
        except (OSError, ValueError):  # being written right now
            pass
    return done


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

# ------------------------------------------------------------------------------------------------ headlines
#: The public figures 02's headlines are judged against.
#: The report's figure of this week: each tuner's best validation accuracy against its training time.
FIGURES = (Figure("tuner comparison (same space, same epoch budget)", "tuners.png",
                  "Tuners: best validation accuracy against training time", "Tuners: same space, same epochs",
                  "scatter", x="training time (s)", y="best val accuracy", label="tuner",
                  xlabel="training time (s)", ylabel="best validation accuracy"),)

REFERENCES = {
    "Fashion-MNIST small CNN": Reference("0.888 test accuracy (a 2-conv CNN, 3 epochs, on 2 CPU cores)", 0.888,
                                         " pp", 100),
    "keras-tuner on Fashion-MNIST": Reference("0.87-0.88 test accuracy (best-known public keras-tuner lab, "
                                              "Hyperband, 30 trials)", 0.87, " pp", 100),  # the lower end
}


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``02_tuning`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    final = h.rows("baseline vs tuned winner (test set)")
    if final:
        base, tuned = final[0], final[-1]
        h.add("untuned baseline CNN, test accuracy", f"{base['test_accuracy']:.4f}",
              REFERENCES["Fashion-MNIST small CNN"], base["test_accuracy"])
        h.add("tuned model, test accuracy", f"{tuned['test_accuracy']:.4f} ({tuned['model']})",
              REFERENCES["keras-tuner on Fashion-MNIST"], tuned["test_accuracy"])
    bought = h.value("what tuning bought (test set)", str)
    if bought:
        h.add("what tuning bought (winner vs baseline, same schedule, over seeds)", bought)
    tuners = h.rows("tuner comparison (same space, same epoch budget)")
    if tuners:
        h.add("tuners at one epoch budget: best validation accuracy, models tried, epochs",
              "; ".join(f"{r['tuner']} {r['best val accuracy']:.4f} ({r.get('models tried', '?')} models, "
                        f"{r.get('epochs trained', '?')} epochs)" for r in tuners))
    grid = h.rows("grid vs random search (same budget, over seeds and grid offsets)")
    if grid:
        h.add("grid vs random search, same budget, over seeds and grid offsets",
              "; ".join(f"{r['condition']}: random ahead in {r['random ahead in']} of {r['seeds']} seeds, "
                        f"{r['mean (points)']:+.2f} points {r['95% interval']}" for r in grid))
    automl = h.value("AutoML vs hand-tuned CNN (test set)", dict)
    if automl and automl.get("automl_test_accuracy") is not None:
        best = automl.get("automl_best") or {}
        h.add("AutoML (scikit-learn pipelines) vs the tuned CNN, test accuracy",
              f"{automl['automl_test_accuracy']:.4f} ({best.get('model', '?')}, {automl.get('pipelines')} pipelines "
              f"in {automl.get('automl_seconds', float('nan')):.0f} s) vs {automl['tuned_cnn_test_accuracy']:.4f}")
    return h.out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        print("usage: python -m mlcourse.tuning worker --config CONFIG  (started by distributed_search)")
