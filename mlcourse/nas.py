"""Neural architecture search, small enough to run on a laptop, explicit enough to read.

**Search spaces** (an architecture is a plain dict, so it can be printed, saved and mutated):

* macro: the network layer by layer, ``{"space": "macro", "blocks": [{"filters", "kernel", "type"}, ...],
  "dense": units}`` with 1-3 conv blocks (standard or depthwise-separable);
* micro: one *cell* repeated, ``{"space": "micro", "ops": [op_a, op_b, op_c, op_d], "filters", "n_cells"}``:
  node1 = op_a(x) + op_b(x), out = op_c(node1) + op_d(x), ops from :data:`MICRO_OPS`.

This module serves notebook ``02_nas``, which writes each strategy's loop in plain sight; the functions here are
the tested versions of those cells.

**Strategies** under one budget of evaluations: :func:`random_search`, :func:`regularized_evolution`
(Real et al. 2019: tournament selection, mutate, the oldest dies), :func:`bayesian_search` (keras-tuner's
Bayesian-optimisation oracle proposing architectures) and :func:`rl_search` (Zoph & Le 2017, small: a
:class:`Controller` with one softmax per decision of the macro space, trained by REINFORCE with a
moving-average baseline, :func:`reinforce_update`).

**Performance estimation**: :func:`evaluate` at any fidelity (epochs, training subset, image size);
:func:`rank_agreement` (Spearman correlation of cheap vs full scores); :func:`fit_learning_curve` /
:func:`extrapolate` (fit a learning curve to the first epochs and predict the last, saying when it falls back);
:func:`inherit_weights` (a child starts from its parent).

**Hand-on**: :func:`to_hp` turns a macro architecture into the :func:`mlcourse.models.build_model` hp dict that
rebuilds exactly the network that was scored (:func:`build` itself goes through it at full image size).
"""
from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pandas as pd

__all__ = ["MICRO_OPS", "MACRO_CHOICES", "MACRO_DECISIONS", "sample", "mutate", "build", "evaluate", "Evaluator",
           "random_search", "regularized_evolution", "macro_hyperparameters", "bayesian_search", "Controller",
           "reinforce_update", "rl_search", "rank_agreement", "fit_learning_curve", "extrapolate",
           "early_stopping_by_extrapolation", "inherit_weights", "pareto_front", "to_hp", "macro_hypermodel"]

MACRO_CHOICES = {"filters": [8, 16, 32, 64], "kernel": [3, 5], "type": ["standard", "separable"], "dense": [0, 32, 64]}
MICRO_OPS = ("conv3", "sep3", "sep5", "maxpool", "identity")
#: The macro space as a sequence of decisions (what the RL controller and the Bayesian oracle choose):
#: the depth, then filters/kernel/type of each of up to 3 blocks, then the dense layer.
MACRO_DECISIONS = {"depth": [1, 2, 3],
                   **{f"{key}{i}": MACRO_CHOICES[key] for i in range(3) for key in ("filters", "kernel", "type")},
                   "dense": MACRO_CHOICES["dense"]}


def sample(space: str, rng: np.random.Generator) -> dict:
    """A random architecture of the ``"macro"`` or ``"micro"`` space."""
    if space == "macro":
        blocks = [{"filters": int(rng.choice(MACRO_CHOICES["filters"])),
                   "kernel": int(rng.choice(MACRO_CHOICES["kernel"])),
                   "type": str(rng.choice(MACRO_CHOICES["type"]))} for _ in range(int(rng.integers(1, 4)))]
        return {"space": "macro", "blocks": blocks, "dense": int(rng.choice(MACRO_CHOICES["dense"]))}
    if space == "micro":
        return {"space": "micro", "ops": [str(o) for o in rng.choice(MICRO_OPS, 4)],
                "filters": int(rng.choice([8, 16, 32])), "n_cells": int(rng.integers(1, 3))}
    raise ValueError(f"Unknown space {space!r}: use 'macro' or 'micro'.")


def _other(options, current, rng):
    """A random option different from ``current`` (a mutation must change something)."""
    others = [o for o in options if o != current]
    return type(current)(others[int(rng.integers(len(others)))])


def mutate(arch: dict, rng: np.random.Generator) -> dict:
    """A copy of ``arch`` with exactly one change: one choice set to another value, or (macro) a block added
    or removed. ``arch`` itself is left as it was."""
    if arch.get("space") not in ("macro", "micro"):
        raise ValueError(f"Cannot mutate {arch!r}: an architecture has space 'macro' or 'micro'.")
    a = copy.deepcopy(arch)
    if a["space"] == "micro":
        what = rng.integers(0, 3)
        if what == 0:
            i = int(rng.integers(0, 4))
            a["ops"][i] = _other(MICRO_OPS, a["ops"][i], rng)
        elif what == 1:
            a["filters"] = _other([8, 16, 32], a["filters"], rng)
        else:
            a["n_cells"] = 3 - a["n_cells"]
        return a
    n = len(a["blocks"])
    kinds = ["dense", "block"] + (["add"] if n < 3 else []) + (["remove"] if n > 1 else [])
    what = kinds[int(rng.integers(len(kinds)))]
    if what == "add":
        a["blocks"].append(sample("macro", rng)["blocks"][0])
    elif what == "remove":
        a["blocks"].pop(int(rng.integers(0, len(a["blocks"]))))
    elif what == "dense":
        a["dense"] = _other(MACRO_CHOICES["dense"], a["dense"], rng)
    else:
        b = a["blocks"][int(rng.integers(0, len(a["blocks"])))]
        key = ("filters", "kernel", "type")[int(rng.integers(3))]
        b[key] = _other(MACRO_CHOICES[key], b[key], rng)
    return a


def build(arch: dict, image_size: int = 28, learning_rate: float = 1e-3):
    """A compiled Keras 3 classifier for ``arch``; ``image_size=14`` averages 2x2 pixels first (cheaper).

    A macro architecture at full size is built by :func:`mlcourse.models.build_model` from :func:`to_hp`, so
    what is scored is exactly what is handed on; at lower fidelity the same layers (same names) follow a
    ``downsample`` layer, and a block only pools while the feature map is at least 4 pixels wide.
    """
    import keras
    from keras import layers as L

    from mlcourse import models

    if image_size not in (28, 14, 7):
        raise ValueError(f"image_size must be 28, 14 or 7, got {image_size}.")
    if arch.get("space") not in ("macro", "micro"):
        raise ValueError(f"Cannot build {arch!r}: an architecture has space 'macro' or 'micro'.")
    if arch["space"] == "macro" and image_size == 28:
        return models.build_model(dict(to_hp(arch), learning_rate=learning_rate), name="macro_candidate")
    inputs = keras.Input((28, 28), name="image")
    x = L.Reshape((28, 28, 1), name="add_channel")(L.Rescaling(1 / 255, name="rescale")(inputs))
    if image_size < 28:
        x = L.AveragePooling2D(28 // image_size, name="downsample")(x)
    if arch["space"] == "macro":
        for i, b in enumerate(arch["blocks"]):
            conv = L.SeparableConv2D if b["type"] == "separable" else L.Conv2D
            x = conv(b["filters"], b["kernel"], padding="same", activation="relu", name=f"conv{i}")(x)
            if x.shape[1] >= 4:
                x = L.MaxPooling2D(name=f"pool{i}")(x)
        x = L.Flatten(name="flatten")(x)
        if arch["dense"]:
            x = L.Dense(arch["dense"], activation="relu", name="dense0")(x)
    else:
        f = arch["filters"]
        x = L.Conv2D(f, 3, padding="same", activation="relu", name="stem")(x)
        for c in range(arch["n_cells"]):
            x = _cell(x, arch["ops"], f * 2 ** c, f"cell{c}")
            if x.shape[1] >= 4:
                x = L.MaxPooling2D(name=f"reduce{c}")(x)
        x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=f"{arch['space']}_candidate")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _op(name, filters, tag):
    from keras import layers as L

    if name == "conv3":
        return L.Conv2D(filters, 3, padding="same", activation="relu", name=tag)
    if name in ("sep3", "sep5"):
        return L.SeparableConv2D(filters, int(name[-1]), padding="same", activation="relu", name=tag)
    if name == "maxpool":
        return L.MaxPooling2D(3, strides=1, padding="same", name=tag)
    if name == "identity":
        return L.Identity(name=tag)
    raise ValueError(f"Unknown op {name!r}; known: {MICRO_OPS}.")


def _cell(x, ops, filters, tag):
    from keras import layers as L

    x = L.Conv2D(filters, 1, activation="relu", name=f"{tag}_in")(x)  # fix the width so additions match
    n1 = L.Add(name=f"{tag}_n1")([_op(ops[0], filters, f"{tag}_a")(x), _op(ops[1], filters, f"{tag}_b")(x)])
    return L.Add(name=f"{tag}_out")([_op(ops[2], filters, f"{tag}_c")(n1), _op(ops[3], filters, f"{tag}_d")(x)])


class Evaluator:
    """Trains candidates on fixed data at a chosen fidelity; every call is logged in ``self.log``.

    ``evaluate(arch, epochs, n_train, image_size, parent=None)`` returns validation accuracy (the last epoch's);
    with ``parent`` (a trained model), layers of the same name and shape start from its weights. Each log entry
    holds the validation curve and the seconds of every epoch (``epoch_seconds``), so the cost of stopping
    after ``k`` epochs is a measured time, not arithmetic.
    """

    def __init__(self, x_train, y_train, x_val, y_val, seed: int = 0, batch_size: int = 128):
        self.x, self.y, self.xv, self.yv = x_train, y_train, x_val, y_val
        self.seed, self.batch_size, self.log, self.models = seed, batch_size, [], {}

    def __call__(self, arch, epochs: int = 2, n_train: int | None = None, image_size: int = 28, parent=None):
        import keras

        keras.utils.set_random_seed(self.seed)
        model = build(arch, image_size)
        inherited = inherit_weights(parent, model) if parent is not None else 0
        n = n_train or len(self.y)
        stamps = []
        clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
        t0 = time.perf_counter()
        h = model.fit(self.x[:n], self.y[:n], validation_data=(self.xv, self.yv), epochs=epochs,
                      batch_size=self.batch_size, verbose=0, callbacks=[clock])
        seconds = time.perf_counter() - t0
        epoch_seconds = list(np.diff([t0] + stamps))
        curve = [float(v) for v in h.history["val_accuracy"]]
        self.log.append({"arch": copy.deepcopy(arch), "epochs": epochs, "n_train": n, "image_size": image_size,
                         "score": curve[-1], "curve": curve, "seconds": seconds, "epoch_seconds": epoch_seconds,
                         "params": model.count_params(), "inherited_layers": inherited})
        self.models[len(self.log) - 1] = model
        return curve[-1]


def evaluate(arch, x_train, y_train, x_val, y_val, **fidelity) -> float:
    """One-off :class:`Evaluator` call (see there for the fidelity arguments)."""
    return Evaluator(x_train, y_train, x_val, y_val)(arch, **fidelity)


def _progress(total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def random_search(space: str, budget: int, evaluate_fn, seed: int = 0) -> pd.DataFrame:
    """Evaluate ``budget`` random architectures; returns one row per evaluation (with best so far)."""
    rng = np.random.default_rng(seed)
    rows, bar = [], _progress(budget, "random search")
    for i in range(budget):
        arch = sample(space, rng)
        rows.append({"evaluation": i + 1, "arch": arch, "score": evaluate_fn(arch)})
        bar.update()
    bar.close()
    return _finish(rows)


def regularized_evolution(space: str, budget: int, evaluate_fn, population: int = 6, sample_size: int = 3,
                          seed: int = 0) -> pd.DataFrame:
    """Regularized (aging) evolution: a random population, then repeatedly mutate the best of a random
    sample and drop the *oldest* member (not the worst), which keeps the search from stalling."""
    if population < 2 or sample_size < 1 or budget < population:
        raise ValueError("need population >= 2, sample_size >= 1 and budget >= population.")
    rng = np.random.default_rng(seed)
    pop, rows, bar = [], [], _progress(budget, "evolution")
    for i in range(budget):
        if i < population:
            arch = sample(space, rng)
        else:
            contenders = [pop[j] for j in rng.choice(len(pop), size=min(sample_size, len(pop)), replace=False)]
            arch = mutate(max(contenders, key=lambda m: m[1])[0], rng)
        score = evaluate_fn(arch)
        pop.append((arch, score))
        if len(pop) > population:
            pop.pop(0)
        rows.append({"evaluation": i + 1, "arch": arch, "score": score})
        bar.update()
    bar.close()
    return _finish(rows)


def _macro_from_values(v: dict) -> dict:
    blocks = [{"filters": int(v[f"filters{i}"]), "kernel": int(v[f"kernel{i}"]), "type": str(v[f"type{i}"])}
              for i in range(int(v["depth"]))]
    return {"space": "macro", "blocks": blocks, "dense": int(v["dense"])}


def macro_hyperparameters():
    """The macro space as keras-tuner ``HyperParameters``: one ``hp.Choice`` per decision of :data:`MACRO_DECISIONS`."""
    import keras_tuner as kt

    hps = kt.HyperParameters()
    hps.Int("depth", 1, 3)
    for i in range(3):
        hps.Choice(f"filters{i}", MACRO_CHOICES["filters"])
        hps.Choice(f"kernel{i}", MACRO_CHOICES["kernel"])
        hps.Choice(f"type{i}", MACRO_CHOICES["type"])
    hps.Choice("dense", MACRO_CHOICES["dense"])
    return hps


def macro_hypermodel(hp):
    """The macro space as a keras-tuner **hypermodel** (exercise 2.4's reference): ``kt.RandomSearch(macro_hypermodel,
    ...)`` or ``kt.Hyperband`` then search architectures themselves, building and training each candidate.

    Block ``i``'s choices are declared inside ``hp.conditional_scope("depth", [i + 1, ..., 3])``: they are active
    only in networks deep enough to have that block, so a trial's values hold no meaningless ``filters2`` for a
    one-block network, and the tuner's oracle does not spend its statistics on them.
    """
    depth = hp.Int("depth", 1, 3)
    blocks = []
    for i in range(3):
        with hp.conditional_scope("depth", [d for d in (1, 2, 3) if d > i]):
            block = {key: hp.Choice(f"{key}{i}", MACRO_CHOICES[key]) for key in ("filters", "kernel", "type")}
        if i < depth:
            blocks.append(block)
    return build({"space": "macro", "blocks": blocks, "dense": hp.Choice("dense", MACRO_CHOICES["dense"])})


def bayesian_search(budget: int, evaluate_fn, directory, project: str = "nas_bayes", seed: int = 0) -> pd.DataFrame:
    """Bayesian optimisation over the macro space, proposed by keras-tuner's oracle (Gaussian process).

    The oracle's state goes to ``directory/project``; an existing one is renamed ``...-previous-<time>``.
    """
    import keras_tuner as kt

    from mlcourse.runtime import silenced

    oracle = kt.oracles.BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=budget,
                                                   hyperparameters=macro_hyperparameters(), num_initial_points=3,
                                                   seed=seed)
    from pathlib import Path

    from mlcourse.runtime import keep_aside

    if (Path(directory) / project).exists():  # a previous search is kept, renamed, never overwritten
        keep_aside(Path(directory) / project)
    oracle._set_project_dir(str(directory), project)
    rows, bar = [], _progress(budget, "bayesian")
    for i in range(budget):
        with silenced():
            trial = oracle.create_trial("nas")
        if trial.status != "RUNNING":
            break
        arch = _macro_from_values(trial.hyperparameters.values)
        score = evaluate_fn(arch)
        with silenced():
            oracle.update_trial(trial.trial_id, {"score": score})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        rows.append({"evaluation": i + 1, "arch": arch, "score": score})
        bar.update()
    bar.close()
    return _finish(rows)


def _softmax(z) -> np.ndarray:
    z = np.asarray(z, float)
    e = np.exp(z - z.max())
    return e / e.sum()


def reinforce_update(logits: dict, actions: dict, advantage: float, lr: float) -> dict:
    """One REINFORCE step for a controller with one softmax per decision; returns new logits (a new dict).

    For every decision that was taken (``actions[name]`` = index of the chosen option), the gradient of
    ``log softmax(logits[name])[a]`` is ``onehot(a) - softmax(logits[name])``; the step is
    ``lr * advantage * gradient`` (ascent: a better-than-baseline reward makes its choices more likely).
    Decisions not in ``actions`` (the blocks a shallow network does not have) are left unchanged.
    """
    new = {name: np.array(z, dtype=float, copy=True) for name, z in logits.items()}
    for name, a in actions.items():
        if name not in new:
            raise KeyError(f"action for unknown decision {name!r}; the controller has {sorted(new)}.")
        grad = -_softmax(new[name])
        grad[int(a)] += 1.0
        new[name] += lr * float(advantage) * grad
    return new


class Controller:
    """A tiny RL controller over the macro space: one softmax (a logit vector) per decision of
    :data:`MACRO_DECISIONS`, trained by :func:`reinforce_update` with a moving-average baseline.

    ``sample()`` returns ``(arch, actions)``; ``update(actions, reward)`` moves the baseline, takes one step and
    returns the advantage used. ``probabilities()`` shows the policy; ``most_likely()`` its favourite arch.
    """

    def __init__(self, seed: int = 0, lr: float = 0.5, baseline_decay: float = 0.8, decisions: dict | None = None):
        if lr <= 0 or not 0 <= baseline_decay < 1:
            raise ValueError("need lr > 0 and 0 <= baseline_decay < 1.")
        self.decisions = dict(decisions or MACRO_DECISIONS)
        self.logits = {name: np.zeros(len(opts)) for name, opts in self.decisions.items()}
        self.rng, self.lr, self.decay, self.baseline = np.random.default_rng(seed), lr, baseline_decay, None

    def _arch(self, choose) -> tuple[dict, dict]:
        actions = {"depth": choose("depth")}
        depth = self.decisions["depth"][actions["depth"]]
        for i in range(depth):
            for key in ("filters", "kernel", "type"):
                actions[f"{key}{i}"] = choose(f"{key}{i}")
        actions["dense"] = choose("dense")
        values = {name: self.decisions[name][a] for name, a in actions.items()}
        return _macro_from_values(values), actions

    def sample(self) -> tuple[dict, dict]:
        """Draw one architecture from the policy: ``(arch, {decision: chosen index})`` (only decisions used)."""
        return self._arch(lambda name: int(self.rng.choice(len(self.logits[name]), p=_softmax(self.logits[name]))))

    def most_likely(self) -> dict:
        """The architecture of the most probable choice at every decision."""
        return self._arch(lambda name: int(np.argmax(self.logits[name])))[0]

    def probabilities(self) -> dict:
        """``{decision: {option: probability}}`` of the current policy."""
        return {name: dict(zip(map(str, opts), _softmax(self.logits[name]).round(3).tolist()))
                for name, opts in self.decisions.items()}

    def update(self, actions: dict, reward: float) -> float:
        """Baseline first (its first value is the first reward), then one REINFORCE step; returns the advantage."""
        self.baseline = reward if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * reward
        advantage = float(reward - self.baseline)
        self.logits = reinforce_update(self.logits, actions, advantage, self.lr)
        return advantage


def rl_search(budget: int, evaluate_fn, seed: int = 0, lr: float = 0.5, baseline_decay: float = 0.8) -> pd.DataFrame:
    """RL search over the macro space: a :class:`Controller` samples, the reward is the score, REINFORCE learns.

    One row per evaluation, with the reward, the baseline after the update and the advantage; the trained
    controller is in ``df.attrs["controller"]``.
    """
    controller = Controller(seed=seed, lr=lr, baseline_decay=baseline_decay)
    rows, bar = [], _progress(budget, "RL controller")
    for i in range(budget):
        arch, actions = controller.sample()
        score = evaluate_fn(arch)
        advantage = controller.update(actions, score)
        rows.append({"evaluation": i + 1, "arch": arch, "score": score, "baseline": controller.baseline,
                     "advantage": advantage})
        bar.update()
    bar.close()
    df = _finish(rows)
    df.attrs["controller"] = controller
    return df


def _finish(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["best_so_far"] = df["score"].cummax()
    return df


def rank_agreement(cheap, full) -> float:
    """Spearman rank correlation between cheap estimates and full scores (1: same ranking)."""
    from scipy.stats import spearmanr

    cheap, full = np.asarray(cheap, float), np.asarray(full, float)
    if len(cheap) != len(full) or len(cheap) < 3:
        raise ValueError("need at least 3 paired scores of equal length.")
    return float(spearmanr(cheap, full).statistic)


def _power_law(t, a, b, c):
    return a - b * np.asarray(t, float) ** (-c)


def fit_learning_curve(curve) -> tuple[tuple | None, str]:
    """Fit ``acc(t) = a - b * t**(-c)`` (a saturating power law, epochs t = 1, 2, ...) to ``curve``.

    Returns ``((a, b, c), "fitted")``, or ``(None, reason)`` when there is nothing to fit (fewer than three
    points: three parameters need three points) or the least-squares fit fails.
    """
    from scipy.optimize import curve_fit

    y = np.asarray(curve, float)
    if len(y) < 3:
        return None, f"only {len(y)} point(s): a 3-parameter curve needs at least 3"
    t = np.arange(1, len(y) + 1, dtype=float)
    try:
        with warnings.catch_warnings():  # "covariance could not be estimated" with exactly 3 points: expected
            warnings.simplefilter("ignore")
            params, _ = curve_fit(_power_law, t, y, p0=(min(y[-1] + 0.02, 1.1), max(y[-1] - y[0], 0) + 0.01, 1.0),
                                  bounds=([0, 0, 0.01], [1.2, 2, 5]), maxfev=5000)
    except (RuntimeError, ValueError) as exc:
        return None, f"fit failed ({type(exc).__name__})"
    return tuple(float(p) for p in params), "fitted"


def extrapolate(curve, target_epoch: int, info: bool = False):
    """Predict the accuracy at ``target_epoch`` from the first epochs of a learning curve.

    Fits :func:`fit_learning_curve`; when it cannot (fewer than three points, or a failed fit) it falls back
    to the last value observed. Clipped to [0, 1]. With ``info=True`` returns ``(prediction, how)``, where
    ``how`` is ``"fitted"`` or the reason for the fallback, so a caller can say how often it fell back.
    """
    params, how = fit_learning_curve(curve)
    pred = float(np.clip(_power_law(target_epoch, *params), 0, 1)) if params else float(np.asarray(curve, float)[-1])
    return (pred, how) if info else pred


def early_stopping_by_extrapolation(curves, k: int, margin: float = 0.0) -> dict:
    """Replay candidates in order, stopping each after ``k`` epochs when :func:`extrapolate` predicts its
    final score below the best *finished* score so far minus ``margin``.

    ``curves`` are full learning curves (one per candidate, all the same length). Returns the epochs
    trained with and without stopping, how many candidates were stopped, and whether the truly best
    candidate was kept: everything needed to judge the rule, measured on real curves.
    """
    curves = [list(c) for c in curves]
    if not curves or len({len(c) for c in curves}) != 1 or not 1 <= k < len(curves[0]):
        raise ValueError("need curves of one common length n and 1 <= k < n.")
    n = len(curves[0])
    best, used, stopped, kept = -np.inf, 0, 0, []
    for i, c in enumerate(curves):
        if best > -np.inf and extrapolate(c[:k], n) < best - margin:
            used += k
            stopped += 1
            continue
        used += n
        kept.append(i)
        best = max(best, c[-1])
    true_best = int(np.argmax([c[-1] for c in curves]))
    return {"candidates": len(curves), "stopped": stopped, "epochs_with_stopping": used,
            "epochs_without": n * len(curves), "epochs_saved": 1 - used / (n * len(curves)),
            "best_kept": true_best in kept}


def inherit_weights(parent, child) -> int:
    """Copy every weight of ``parent`` into the ``child`` layer of the same name and shapes; returns how many
    layers were inherited (the rest keep their fresh initialisation)."""
    if parent is None:
        return 0
    n = 0
    for layer in child.layers:
        try:
            src = parent.get_layer(layer.name)
        except ValueError:
            continue
        sw, cw = src.get_weights(), layer.get_weights()
        if sw and len(sw) == len(cw) and all(a.shape == b.shape for a, b in zip(sw, cw)):
            layer.set_weights(sw)
            n += 1
    return n


def pareto_front(df: pd.DataFrame, score: str = "score", cost: str = "params") -> pd.DataFrame:
    """The rows no other row beats on both higher ``score`` and lower ``cost``, sorted by cost."""
    d = df.sort_values([cost, score], ascending=[True, False])
    keep, best = [], -np.inf
    for idx, row in d.iterrows():
        if row[score] > best:
            keep.append(idx)
            best = row[score]
    return df.loc[keep].sort_values(cost)


def to_hp(arch: dict) -> dict | None:
    """The :func:`mlcourse.models.build_model` hp dict that rebuilds a macro architecture exactly as scored.

    Per-block ``filters``, ``kernel_size`` and ``conv`` lists, the dense layer (0: none), no dropout (the
    search trained without it), ReLU, Adam at 1e-3: ``models.build_model(to_hp(arch))`` has the same layers
    and parameters as :func:`build` ``(arch)``. Returns None for micro architectures (cells are not in that
    model family).
    """
    if not isinstance(arch, dict) or arch.get("space") not in ("macro", "micro"):
        raise ValueError(f"to_hp needs an architecture dict with space 'macro' or 'micro', got {arch!r}.")
    if arch["space"] != "macro":
        return None
    blocks = arch["blocks"]
    return {"arch": "cnn", "filters": [int(b["filters"]) for b in blocks],
            "kernel_size": [int(b["kernel"]) for b in blocks], "conv": [str(b["type"]) for b in blocks],
            "dense_units": int(arch["dense"]), "dropout": 0.0, "batch_norm": False, "activation": "relu",
            "optimizer": "adam", "learning_rate": 1e-3}
