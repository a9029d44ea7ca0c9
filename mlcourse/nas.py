"""Neural architecture search, small enough to run on a laptop, explicit enough to read.

**Search spaces** (an architecture is a plain dict, so it can be printed, saved and mutated):

* macro: the network layer by layer, ``{"space": "macro", "blocks": [{"filters", "kernel", "type"}, ...],
  "dense": units}`` with 1-3 conv blocks (standard or depthwise-separable);
* micro: one *cell* repeated, ``{"space": "micro", "ops": [op_a, op_b, op_c, op_d], "filters", "n_cells"}``:
  node1 = op_a(x) + op_b(x), out = op_c(node1) + op_d(x), ops from :data:`MICRO_OPS`.

**Strategies** under one budget of evaluations: :func:`random_search`, :func:`regularized_evolution`
(Real et al. 2019: tournament selection, mutate, the oldest dies), :func:`bayesian_search` (keras-tuner's
Bayesian-optimisation oracle proposing architectures).

**Performance estimation**: :func:`evaluate` at any fidelity (epochs, training subset, image size);
:func:`rank_agreement` (Spearman correlation of cheap vs full scores); :func:`extrapolate` (fit a learning
curve to the first epochs and predict the last); :func:`inherit_weights` (a child starts from its parent).
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd

__all__ = ["MICRO_OPS", "sample", "mutate", "build", "evaluate", "Evaluator", "random_search",
           "regularized_evolution", "bayesian_search", "rank_agreement", "extrapolate",
           "early_stopping_by_extrapolation", "inherit_weights",
           "pareto_front", "to_hp"]

MACRO_CHOICES = {"filters": [8, 16, 32, 64], "kernel": [3, 5], "type": ["standard", "separable"], "dense": [0, 32, 64]}
MICRO_OPS = ("conv3", "sep3", "sep5", "maxpool", "identity")


def sample(space: str, rng: np.random.Generator) -> dict:
    """A random architecture of the ``"macro"`` or ``"micro"`` space."""
    if space == "macro":
        blocks = [{"filters": int(rng.choice(MACRO_CHOICES["filters"])), "kernel": int(rng.choice(MACRO_CHOICES["kernel"])),
                   "type": str(rng.choice(MACRO_CHOICES["type"]))} for _ in range(int(rng.integers(1, 4)))]
        return {"space": "macro", "blocks": blocks, "dense": int(rng.choice(MACRO_CHOICES["dense"]))}
    if space == "micro":
        return {"space": "micro", "ops": [str(o) for o in rng.choice(MICRO_OPS, 4)],
                "filters": int(rng.choice([8, 16, 32])), "n_cells": int(rng.integers(1, 3))}
    raise ValueError(f"Unknown space {space!r}: use 'macro' or 'micro'.")


def mutate(arch: dict, rng: np.random.Generator) -> dict:
    """A copy of ``arch`` with one random change (one choice, or a block added or removed)."""
    a = copy.deepcopy(arch)
    if a["space"] == "micro":
        what = rng.integers(0, 3)
        if what == 0:
            a["ops"][int(rng.integers(0, 4))] = str(rng.choice(MICRO_OPS))
        elif what == 1:
            a["filters"] = int(rng.choice([8, 16, 32]))
        else:
            a["n_cells"] = 3 - a["n_cells"]
        return a
    what = rng.integers(0, 4)
    if what == 0 and len(a["blocks"]) < 3:
        a["blocks"].append(sample("macro", rng)["blocks"][0])
    elif what == 1 and len(a["blocks"]) > 1:
        a["blocks"].pop(int(rng.integers(0, len(a["blocks"]))))
    elif what == 2:
        a["dense"] = int(rng.choice(MACRO_CHOICES["dense"]))
    else:
        b = a["blocks"][int(rng.integers(0, len(a["blocks"])))]
        key = str(rng.choice(["filters", "kernel", "type"]))
        b[key] = type(b[key])(rng.choice(MACRO_CHOICES[key]))
    return a


def build(arch: dict, image_size: int = 28, learning_rate: float = 1e-3):
    """A compiled Keras 3 classifier for ``arch``; ``image_size=14`` averages 2x2 pixels first (cheaper)."""
    import keras
    from keras import layers as L

    if image_size not in (28, 14, 7):
        raise ValueError(f"image_size must be 28, 14 or 7, got {image_size}.")
    inputs = keras.Input((28, 28), name="image")
    x = L.Reshape((28, 28, 1))(L.Rescaling(1 / 255)(inputs))
    if image_size < 28:
        x = L.AveragePooling2D(28 // image_size, name="downsample")(x)
    if arch["space"] == "macro":
        for i, b in enumerate(arch["blocks"]):
            conv = L.SeparableConv2D if b["type"] == "separable" else L.Conv2D
            x = conv(b["filters"], b["kernel"], padding="same", activation="relu", name=f"block{i}")(x)
            if x.shape[1] >= 4:
                x = L.MaxPooling2D(name=f"pool{i}")(x)
        x = L.Flatten()(x)
        if arch["dense"]:
            x = L.Dense(arch["dense"], activation="relu", name="dense")(x)
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
    with ``parent`` (a trained model), layers of the same name and shape start from its weights.
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
        t0 = time.perf_counter()
        h = model.fit(self.x[:n], self.y[:n], validation_data=(self.xv, self.yv), epochs=epochs,
                      batch_size=self.batch_size, verbose=0)
        seconds = time.perf_counter() - t0
        curve = [float(v) for v in h.history["val_accuracy"]]
        self.log.append({"arch": copy.deepcopy(arch), "epochs": epochs, "n_train": n, "image_size": image_size,
                         "score": curve[-1], "curve": curve, "seconds": seconds, "params": model.count_params(),
                         "inherited_layers": inherited})
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
    blocks = [{"filters": int(v[f"filters{i}"]), "kernel": int(v[f"kernel{i}"]), "type": v[f"type{i}"]}
              for i in range(int(v["depth"]))]
    return {"space": "macro", "blocks": blocks, "dense": int(v["dense"])}


def bayesian_search(budget: int, evaluate_fn, directory, project: str = "nas_bayes", seed: int = 0) -> pd.DataFrame:
    """Bayesian optimisation over the macro space, proposed by keras-tuner's oracle (Gaussian process).

    The oracle's state goes to ``directory/project``; an existing one is renamed ``...-previous-<time>``.
    """
    import keras_tuner as kt

    from mlcourse.runtime import silenced

    hps = kt.HyperParameters()
    hps.Int("depth", 1, 3)
    for i in range(3):
        hps.Choice(f"filters{i}", MACRO_CHOICES["filters"])
        hps.Choice(f"kernel{i}", MACRO_CHOICES["kernel"])
        hps.Choice(f"type{i}", MACRO_CHOICES["type"])
    hps.Choice("dense", MACRO_CHOICES["dense"])
    oracle = kt.oracles.BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=budget,
                                                   hyperparameters=hps, num_initial_points=3, seed=seed)
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


def extrapolate(curve, target_epoch: int) -> float:
    """Predict the accuracy at ``target_epoch`` from the first epochs of a learning curve.

    Fits ``acc(t) = a - b * t**(-c)`` (a saturating power law) by least squares; with fewer than three
    points, or a failed fit, falls back to the last value observed. Clipped to [0, 1].
    """
    from scipy.optimize import curve_fit

    y = np.asarray(curve, float)
    t = np.arange(1, len(y) + 1, dtype=float)
    if len(y) < 3:
        return float(y[-1])
    try:
        (a, b, c), _ = curve_fit(lambda t, a, b, c: a - b * t ** (-c), t, y, p0=(y[-1] + 0.02, y[-1] - y[0] + 0.01, 1.0),
                                 bounds=([0, 0, 0.01], [1.2, 2, 5]), maxfev=5000)
        return float(np.clip(a - b * target_epoch ** (-c), 0, 1))
    except (RuntimeError, ValueError):
        return float(y[-1])


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
    """The closest :func:`mlcourse.models.build_model` hp dict for a macro architecture, to hand it on.

    The course's model family has one kernel size and conv type for all blocks; the first block's are used.
    Returns None for micro architectures (not expressible in that family).
    """
    if arch["space"] != "macro":
        return None
    b0 = arch["blocks"][0]
    return {"arch": "cnn", "filters": [b["filters"] for b in arch["blocks"]], "kernel_size": b0["kernel"],
            "conv": b0["type"], "dense_units": arch["dense"], "dropout": 0.0}
