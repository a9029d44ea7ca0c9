"""Neural architecture search, small enough to run on a laptop, explicit enough to read.

**Search spaces** (an architecture is a plain dict, so it can be printed, saved and mutated):

* macro: the network layer by layer, ``{"space": "macro", "blocks": [{"filters", "kernel", "type"}, ...],
  "dense": units}`` with 1-3 conv blocks (standard or depthwise-separable);
* micro: one *cell* repeated, ``{"space": "micro", "ops": [op_a, op_b, op_c, op_d], "filters", "n_cells",
  "dense"}``: node1 = op_a(x) + op_b(x), out = op_c(node1) + op_d(x), ops from :data:`MICRO_OPS`, batch norm
  after every convolution of a cell, a max-pool after each cell, and **the same head** as a macro network
  (flatten, the optional dense layer, softmax), so the two spaces are compared on equal footing;
  :func:`param_count` counts either without building it, and :func:`sample` keeps under a parameter budget.

This module serves notebook ``03_nas``, which writes each strategy's loop in plain sight; the functions here are
the tested versions of those cells.

**Strategies** under one budget of evaluations: :func:`random_search`, :func:`regularized_evolution`
(Real et al. 2019: tournament selection, mutate, the oldest dies), :func:`bayesian_search` (keras-tuner's
Bayesian-optimisation oracle proposing architectures) and :func:`rl_search` (Zoph & Le 2017, small: a
:class:`Controller` with one softmax per decision of the macro space, trained by REINFORCE with a
moving-average baseline, :func:`reinforce_update`).

**Performance estimation**: :func:`evaluate` at any fidelity (epochs, training subset, image size);
:func:`rank_agreement` (Spearman correlation of cheap vs full scores); :func:`fit_learning_curve` /
:func:`extrapolate` (fit a learning curve to the first epochs and predict the last, saying when it falls back);
:func:`inherit_weights` (a child starts from its parent's layers of the same name and shape) and the
**function-preserving** mutations :func:`preserving_mutation` / :func:`morph` (Net2Net widening, a hidden layer
inserted that passes the logits through): the child computes exactly the parent's function before training.

**Hand-on**: :func:`to_hp` turns a macro architecture into the :func:`mlcourse.models.build_model` hp dict that
rebuilds exactly the network that was scored (:func:`build` itself goes through it at full image size);
:func:`from_hp` reads it back.

**Sizes**: :data:`SIZES` (smoke / lesson / full, read by the notebook and by :func:`warm_cache`); an
:class:`Evaluator` given a ``store`` file keeps every plain evaluation there, so a search run again (or run
ahead by :func:`warm_cache` into a prepared room's work folder) loads instead of training.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mlcourse import cache, models, session, settings
from mlcourse.data import stratified_subset
from mlcourse.headlines import Headlines
from mlcourse.headlines import row as _row
from mlcourse.session import keep_aside, quiet_import, silenced

__all__ = ["headlines",
           "SIZES", "sizes", "split", "warm_cache", "MICRO_OPS", "MICRO_CHOICES", "MACRO_CHOICES", "MACRO_DECISIONS",
           "RL_LR", "BASELINE_DECAY", "param_count", "sample", "mutate", "build", "stack", "evaluate", "Evaluator",
           "recalibrate_batch_norm",
           "random_search", "regularized_evolution", "macro_hyperparameters", "bayesian_search", "Controller",
           "reinforce_update", "rl_search", "rank_agreement", "fit_learning_curve", "extrapolate",
           "early_stopping_by_extrapolation", "inherit_weights", "preserving_mutation", "morph", "at_chance",
           "pareto_front", "to_hp", "from_hp", "macro_hypermodel", "keras_tuner_search", "micro_macro_runs",
           "estimation_candidates", "inheritance_parents", "hand_on_candidates"]

#: 03_nas's parameter defaults per size, one table read by the notebook's parameters cell and by :func:`warm_cache`.
#: N_TRAIN / N_VAL: images; BUDGET: evaluations per strategy and seed; EPOCHS: epochs of a search evaluation;
#: N_SEEDS: search seeds; MM_EPOCHS: epochs of the micro-vs-macro evaluations; PARAM_BUDGET: their parameter
#: ceiling; N_RANK / RANK_EPOCHS / FIT_EPOCHS: the estimation study; N_PARENTS: parents of the inheritance
#: study (two function-preserving children each); FINAL_EPOCHS / FINAL_SEEDS: the hand-on comparison.
SIZES = {
    "smoke": dict(N_TRAIN=600, N_VAL=300, BUDGET=3, EPOCHS=1, N_SEEDS=1, MM_EPOCHS=1, PARAM_BUDGET=60_000,
                  N_RANK=3, RANK_EPOCHS=4, FIT_EPOCHS=3, N_PARENTS=1, FINAL_EPOCHS=1, FINAL_SEEDS=1),
    "lesson": dict(N_TRAIN=1_500, N_VAL=1_000, BUDGET=3, EPOCHS=2, N_SEEDS=3, MM_EPOCHS=3, PARAM_BUDGET=60_000,
                   N_RANK=4, RANK_EPOCHS=5, FIT_EPOCHS=3, N_PARENTS=2, FINAL_EPOCHS=3, FINAL_SEEDS=2),
    "full": dict(N_TRAIN=5_000, N_VAL=2_000, BUDGET=10, EPOCHS=2, N_SEEDS=3, MM_EPOCHS=4, PARAM_BUDGET=60_000,
                 N_RANK=8, RANK_EPOCHS=8, FIT_EPOCHS=4, N_PARENTS=3, FINAL_EPOCHS=5, FINAL_SEEDS=3),
}
#: The RL controller's learning rate and baseline decay (the notebook's loop and :func:`rl_search` alike).
RL_LR, BASELINE_DECAY = 4.0, 0.8


def sizes(size: str | None = None, **given) -> dict:
    """03's defaults for ``size`` (:data:`SIZES`; None follows ``MLCOURSE_SIZE``), with every value in ``given``
    that is not None put over them.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
    """
    table = settings.pick_sizes(SIZES, settings.size(size), given)
    if not 3 <= table["FIT_EPOCHS"] < table["RANK_EPOCHS"]:
        raise ValueError("a learning-curve fit needs FIT_EPOCHS >= 3 and FIT_EPOCHS < RANK_EPOCHS; got "
                         f"{table['FIT_EPOCHS']} and {table['RANK_EPOCHS']}.")
    return table


def split(ds, n_train: int, n_val: int, seed: int = 0):
    """03's data: ``n_val`` validation images held out of the training set (stratified), and a stratified
    training subset of ``n_train`` from the rest: ``(x_train, y_train, x_val, y_val)``. The test set is not used.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
    """
    from sklearn.model_selection import train_test_split

    x_rest, x_val, y_rest, y_val = train_test_split(ds.x_train, ds.y_train, test_size=n_val, stratify=ds.y_train,
                                                    random_state=seed)
    x_tr, y_tr = stratified_subset(x_rest, y_rest, n_train, seed=seed)
    return x_tr, y_tr, x_val, y_val


MACRO_CHOICES = {"filters": [8, 16, 32, 64], "kernel": [3, 5], "type": ["standard", "separable"], "dense": [0, 32, 64]}
MICRO_OPS = ("conv3", "sep3", "sep5", "maxpool", "identity")
#: The micro space's other choices: the cell's width (doubled in each further cell), how many cells, the head.
MICRO_CHOICES = {"filters": [8, 16, 32], "n_cells": [1, 2], "dense": MACRO_CHOICES["dense"]}
#: The macro space as a sequence of decisions (what the RL controller and the Bayesian oracle choose):
#: the depth, then filters/kernel/type of each of up to 3 blocks, then the dense layer.
MACRO_DECISIONS = {"depth": [1, 2, 3],
                   **{f"{key}{i}": MACRO_CHOICES[key] for i in range(3) for key in ("filters", "kernel", "type")},
                   "dense": MACRO_CHOICES["dense"]}


def _draw(space: str, rng: np.random.Generator) -> dict:
    if space == "macro":
        blocks = [{"filters": int(rng.choice(MACRO_CHOICES["filters"])),
                   "kernel": int(rng.choice(MACRO_CHOICES["kernel"])),
                   "type": str(rng.choice(MACRO_CHOICES["type"]))} for _ in range(int(rng.integers(1, 4)))]
        return {"space": "macro", "blocks": blocks, "dense": int(rng.choice(MACRO_CHOICES["dense"]))}
    if space == "micro":
        return {"space": "micro", "ops": [str(o) for o in rng.choice(MICRO_OPS, 4)],
                "filters": int(rng.choice(MICRO_CHOICES["filters"])),
                "n_cells": int(rng.choice(MICRO_CHOICES["n_cells"])),
                "dense": int(rng.choice(MICRO_CHOICES["dense"]))}
    raise ValueError(f"Unknown space {space!r}: use 'macro' or 'micro'.")


def sample(space: str, rng: np.random.Generator, max_params: int | None = None) -> dict:
    """A random architecture of the ``"macro"`` or ``"micro"`` space; with ``max_params``, one of at most that
    many parameters (:func:`param_count`; drawn again until it fits, so both spaces meet one budget).

    Lesson: 03_nas § 1 · Two search spaces, encoded as dicts.
    """
    for _ in range(1000):
        arch = _draw(space, rng)
        if max_params is None or param_count(arch) <= max_params:
            return arch
    raise ValueError(f"no {space} architecture of at most {max_params:,} parameters in 1000 draws: raise max_params.")


def _pool(size: int) -> int:
    """The feature map's width after a block or cell: halved by max-pooling while it is at least 4 pixels."""
    return size // 2 if size >= 4 else size


def param_count(arch: dict, image_size: int = 28) -> int:
    """The number of weights of :func:`build` ``(arch, image_size)``, counted without building it (a parameter
    budget is checked in microseconds); batch norm counts its 4 vectors, as Keras' ``count_params`` does.

    Lesson: 03_nas § 2.5 Micro vs macro, on equal footing.
    """
    size = image_size
    if arch["space"] == "macro":
        cin, n = 1, 0
        for b in arch["blocks"]:
            k, f = b["kernel"], b["filters"]
            n += (k * k * cin * f if b["type"] == "standard" else k * k * cin + cin * f) + f
            cin, size = f, _pool(size)
    else:
        f = arch["filters"]
        n, cin = 9 * f + f, f  # the stem
        for c in range(arch["n_cells"]):
            w = f * 2 ** c
            n += cin * w + 4 * w  # the 1x1 input convolution and its batch norm
            for op in arch["ops"]:
                n += {"conv3": 9 * w * w, "sep3": 9 * w + w * w, "sep5": 25 * w + w * w}.get(op, -4 * w) + 4 * w
            cin, size = w, _pool(size)
    flat, d = size * size * cin, arch["dense"]
    return int(n + (flat * d + d + d * 10 + 10 if d else flat * 10 + 10))


def _other(options, current, rng):
    """A random option different from ``current`` (a mutation must change something)."""
    others = [o for o in options if o != current]
    return type(current)(others[int(rng.integers(len(others)))])


def mutate(arch: dict, rng: np.random.Generator) -> dict:
    """A copy of ``arch`` with exactly one change: one choice set to another value, or (macro) a block added
    or removed. ``arch`` itself is left as it was.

    Lesson: 03_nas § 2.2 Regularized evolution (Real et al., 2019).
    """
    if arch.get("space") not in ("macro", "micro"):
        raise ValueError(f"Cannot mutate {arch!r}: an architecture has space 'macro' or 'micro'.")
    a = copy.deepcopy(arch)
    if a["space"] == "micro":
        what = ("ops", "filters", "n_cells", "dense")[int(rng.integers(0, 4))]
        if what == "ops":
            i = int(rng.integers(0, 4))
            a["ops"][i] = _other(MICRO_OPS, a["ops"][i], rng)
        else:
            a[what] = _other(MICRO_CHOICES[what], a[what], rng)
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
    ``downsample`` layer, and a block only pools while the feature map is at least 4 pixels wide. A micro
    network is a stem convolution, its cells (each followed by a max-pool), then the macro networks' head.

    Lesson: 03_nas § 1 · Two search spaces, encoded as dicts.
    """
    keras = quiet_import("keras")
    L = quiet_import("keras").layers

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
    else:
        f = arch["filters"]
        x = L.Conv2D(f, 3, padding="same", activation="relu", name="stem")(x)
        for c in range(arch["n_cells"]):
            x = _cell(x, arch["ops"], f * 2 ** c, f"cell{c}")
            if x.shape[1] >= 4:
                x = L.MaxPooling2D(name=f"reduce{c}")(x)
    x = L.Flatten(name="flatten")(x)
    if arch["dense"]:
        x = L.Dense(arch["dense"], activation="relu", name="dense0")(x)
    outputs = L.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=f"{arch['space']}_candidate")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def stack(arch: dict, n_cells: int) -> dict:
    """The micro architecture ``arch`` with its cell stacked ``n_cells`` times (the searched cell transferred to
    a deeper network, as NASNet searched on small images and stacked deeper for large ones).

    Lesson: 03_nas § 2.5 Micro vs macro, on equal footing.
    """
    if arch.get("space") != "micro" or not 1 <= n_cells <= 3:
        raise ValueError("stack needs a micro architecture and 1 <= n_cells <= 3 (28 pixels pool 3 times).")
    return dict(copy.deepcopy(arch), n_cells=int(n_cells))


def _op(name, filters, tag):
    L = quiet_import("keras").layers

    if name == "conv3":
        return L.Conv2D(filters, 3, padding="same", use_bias=False, name=tag)
    if name in ("sep3", "sep5"):
        return L.SeparableConv2D(filters, int(name[-1]), padding="same", use_bias=False, name=tag)
    if name == "maxpool":
        return L.MaxPooling2D(3, strides=1, padding="same", name=tag)
    if name == "identity":
        return L.Identity(name=tag)
    raise ValueError(f"Unknown op {name!r}; known: {MICRO_OPS}.")


def _bn_relu(x, op, tag):
    """``op(x)``, then batch norm and ReLU when ``op`` is a convolution (a cell's convolutions are normalised).

    Batch norm's moving averages use momentum 0.9, not Keras' 0.99: a search evaluation trains a few dozen steps,
    and with 0.99 the averages used at validation would still be 70 % their initial values after 36 steps
    (0.99 ** 36), scoring the statistics' warm-up instead of the cell. Even at 0.9 they trail weights that move
    fast, so :class:`Evaluator` recalibrates them before its final score (:func:`recalibrate_batch_norm`)."""
    L = quiet_import("keras").layers

    y = op(x)
    if "Conv" not in type(op).__name__:
        return y
    return L.Activation("relu", name=f"{tag}_relu")(L.BatchNormalization(momentum=0.9, name=f"{tag}_bn")(y))


def _cell(x, ops, filters, tag):
    L = quiet_import("keras").layers

    x = _bn_relu(x, L.Conv2D(filters, 1, use_bias=False, name=f"{tag}_in"), f"{tag}_in")  # one width for the adds
    a, b = (_bn_relu(x, _op(ops[i], filters, f"{tag}_{k}"), f"{tag}_{k}") for i, k in ((0, "a"), (1, "b")))
    n1 = L.Add(name=f"{tag}_n1")([a, b])
    c = _bn_relu(n1, _op(ops[2], filters, f"{tag}_c"), f"{tag}_c")
    d = _bn_relu(x, _op(ops[3], filters, f"{tag}_d"), f"{tag}_d")
    return L.Add(name=f"{tag}_out")([c, d])


def _batch_norms(model) -> list:
    keras = quiet_import("keras")
    return [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]


def recalibrate_batch_norm(model, x, n: int = 512) -> int:
    """Set every batch-norm layer's moving mean and variance to the statistics of ``x[:n]``, as the network now
    is: one forward pass in training mode with momentum 0 (the momenta are restored after). Returns how many
    layers were recalibrated; a network without batch norm is left as it is (0).

    In inference mode batch norm normalises with moving averages that trail the weights by many steps; a network
    trained a few dozen steps is then judged on that lag, not on what it computes (measured at 03's lesson
    fidelity, most cell networks scored at chance after one epoch that way). One-shot NAS recalibrates for the
    same reason before it ranks sub-networks. The core, for one layer ``bn`` (Keras 3)::

        bn.momentum = 0.0          # new average = batch statistic
        model(x, training=True)    # one pass updates moving_mean / moving_variance
        bn.momentum = 0.9          # back to what training used

    Lesson: 03_nas § 2.5 Micro vs macro, on equal footing.
    """
    layers = _batch_norms(model)
    if layers:
        momenta = [la.momentum for la in layers]
        for la in layers:
            la.momentum = 0.0
        try:
            model(np.asarray(x[:n], dtype="float32"), training=True)
        finally:
            for la, m in zip(layers, momenta):
                la.momentum = m
    return len(layers)


class Evaluator:
    """Trains candidates on fixed data at a chosen fidelity; every call is logged in ``self.log``.

    ``evaluate(arch, epochs, n_train, image_size, parent=None, start=None)`` returns validation accuracy after the
    last epoch. With ``parent`` (a trained model), layers of the same name and shape start from its weights; with
    ``start`` (a model of ``arch`` already initialised, e.g. by :func:`morph`), that model is trained. Each log
    entry holds the validation curve and the seconds of every epoch (``epoch_seconds``), so the cost of stopping
    after ``k`` epochs is a measured time, not arithmetic.

    A network with batch norm is scored after :func:`recalibrate_batch_norm` (its ``score``); ``score_plain`` and
    ``curve`` are on the moving averages as training left them (the two are equal for a network without batch
    norm). The recalibration costs one forward pass of 512 training images and one more validation pass.

    With ``store`` (a file), every plain evaluation (no parent, no start) is appended to it, keyed by the
    architecture, the fidelity, the seed and a fingerprint of the data: asked again, it is loaded (its entry
    says ``"loaded": True`` and keeps the seconds it took when trained), not trained. :func:`warm_cache` fills
    that file ahead of a workshop.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
    """

    def __init__(self, x_train, y_train, x_val, y_val, seed: int = 0, batch_size: int = 128, store=None):
        self.x, self.y, self.xv, self.yv = x_train, y_train, x_val, y_val
        self.seed, self.batch_size, self.log, self.models = seed, batch_size, [], {}
        self.store, self._stored, self._prints = (Path(store) if store else None), {}, {}
        if self.store and self.store.is_file():
            for line in self.store.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self._stored[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by an interrupted run: that evaluation is trained again

    @property
    def loaded(self) -> int:
        """How many of the logged evaluations came from the store (not trained in this run)."""
        return sum(bool(e.get("loaded")) for e in self.log)

    def _key(self, arch, epochs, n, image_size) -> str:
        if n not in self._prints:
            self._prints[n] = cache.fingerprint(self.x[:n], self.y[:n], self.xv, self.yv)
        what = {"arch": arch, "epochs": epochs, "n_train": n, "image_size": image_size, "seed": self.seed,
                "batch_size": self.batch_size, "data": self._prints[n], "batch_norm": "recalibrated"}
        return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def __call__(self, arch, epochs: int = 2, n_train: int | None = None, image_size: int = 28, parent=None,
                 start=None):
        keras = quiet_import("keras")

        n = n_train or len(self.y)
        key = self._key(arch, epochs, n, image_size) if self.store and parent is None and start is None else None
        if key in self._stored:
            self.log.append(dict(self._stored[key], arch=copy.deepcopy(arch), loaded=True))
            return self.log[-1]["score"]
        keras.utils.set_random_seed(self.seed)
        model = start if start is not None else build(arch, image_size)
        inherited = inherit_weights(parent, model) if parent is not None else 0
        stamps = []
        clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
        t0 = time.perf_counter()
        h = model.fit(self.x[:n], self.y[:n], validation_data=(self.xv, self.yv), epochs=epochs,
                      batch_size=self.batch_size, verbose=0, callbacks=[clock])
        curve = [float(v) for v in h.history["val_accuracy"]]
        score = curve[-1]
        if recalibrate_batch_norm(model, self.x[:n]):  # judged on what it computes, not on its averages' lag
            score = float(model.evaluate(self.xv, self.yv, batch_size=self.batch_size, verbose=0)[1])
        seconds = time.perf_counter() - t0
        entry = {"arch": copy.deepcopy(arch), "epochs": epochs, "n_train": n, "image_size": image_size,
                 "score": score, "score_plain": curve[-1], "curve": curve, "seconds": seconds,
                 "epoch_seconds": [float(v) for v in np.diff([t0] + stamps)], "params": model.count_params(),
                 "inherited_layers": inherited, "started": start is not None, "loaded": False}
        self.log.append(entry)
        self.models[len(self.log) - 1] = model
        if key is not None:
            self._stored[key] = dict(entry, key=key)
            self.store.parent.mkdir(parents=True, exist_ok=True)
            with self.store.open("a") as f:
                f.write(json.dumps(self._stored[key]) + "\n")
        return score


def evaluate(arch, x_train, y_train, x_val, y_val, **fidelity) -> float:
    """One-off :class:`Evaluator` call (see there for the fidelity arguments)."""
    return Evaluator(x_train, y_train, x_val, y_val)(arch, **fidelity)


def _progress(total, desc):
    """A per-candidate bar: tqdm shows the elapsed time and the expected time left ([elapsed<left])."""
    return tqdm(total=total, desc=desc, unit="candidate", leave=False)


def random_search(space: str, budget: int, evaluate_fn, seed: int = 0, max_params: int | None = None
                  ) -> pd.DataFrame:
    """Evaluate ``budget`` random architectures (each of at most ``max_params`` parameters, if given); returns one
    row per evaluation (with best so far).

    Lesson: 03_nas § 2.5 Micro vs macro, on equal footing.
    """
    rng = np.random.default_rng(seed)
    rows, bar = [], _progress(budget, f"random search ({space})")
    for i in range(budget):
        arch = sample(space, rng, max_params)
        rows.append({"evaluation": i + 1, "arch": arch, "score": evaluate_fn(arch)})
        bar.update()
    bar.close()
    return _finish(rows)


def regularized_evolution(space: str, budget: int, evaluate_fn, population: int = 6, sample_size: int = 3,
                          seed: int = 0) -> pd.DataFrame:
    """Regularized (aging) evolution: a random population, then repeatedly mutate the best of a random
    sample and drop the *oldest* member (not the worst), which keeps the search from stalling.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
    """
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
    """The macro space as a keras-tuner **hypermodel** (exercise 3.4's reference): ``kt.RandomSearch(macro_hypermodel,
    ...)`` or ``kt.Hyperband`` then search architectures themselves, building and training each candidate.

    Block ``i``'s choices are declared inside ``hp.conditional_scope("depth", [i + 1, ..., 3])``: they are active
    only in networks deep enough to have that block, so a trial's values hold no meaningless ``filters2`` for a
    one-block network, and the tuner's oracle does not spend its statistics on them.

    Lesson: 03_nas § ✏️ Exercise 3.4: the macro space as a keras-tuner hypermodel.
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
    """Bayesian optimisation over the macro space, proposed by keras-tuner's oracle (Gaussian process), seeded
    with ``seed + 1``: keras-tuner takes ``seed=0`` for "no seed" (``seed or random.randint(...)``).

    The oracle's state goes to ``directory/project``; an existing one is renamed ``...-previous-<time>``.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
    """
    import keras_tuner as kt

    oracle = kt.oracles.BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=budget,
                                                   hyperparameters=macro_hyperparameters(), num_initial_points=3,
                                                   seed=seed + 1)  # keras-tuner reads seed 0 as "no seed"
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

    Lesson: 03_nas § ✏️ Exercise 3.2: the REINFORCE update.
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

    Lesson: 03_nas § ✏️ Exercise 3.2: the REINFORCE update.
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


def rl_search(budget: int, evaluate_fn, seed: int = 0, lr: float = RL_LR, baseline_decay: float = BASELINE_DECAY
              ) -> pd.DataFrame:
    """RL search over the macro space: a :class:`Controller` samples, the reward is the score, REINFORCE learns.

    One row per evaluation, with the reward, the baseline after the update and the advantage; the trained
    controller is in ``df.attrs["controller"]``.

    Lesson: 03_nas § 03 · Neural architecture search (NAS).
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
    """Spearman rank correlation between cheap estimates and full scores (1: same ranking).

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
    """
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

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
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

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
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

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
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


def _widen_map(old: int, new: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Net2Net's mapping: unit j of the wider layer copies unit g[j] of the old one (the first ``old`` copy
    themselves, the rest a random old unit); ``count[g[j]]`` is how many units now share that old unit."""
    g = np.concatenate([np.arange(old), rng.integers(0, old, new - old)])
    return g, np.bincount(g, minlength=old).astype("float32")


def preserving_mutation(arch: dict, rng: np.random.Generator) -> tuple[dict | None, str]:
    """A **function-preserving** mutation of a macro architecture: ``(child, what)`` where ``what`` says the edit;
    ``(None, reason)`` when none is possible. Edits: widen one block (more filters: Net2Net's copies) or the dense
    layer, or insert a dense layer where there is none. :func:`morph` gives the child the parent's function.

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
    """
    if arch.get("space") != "macro":
        raise ValueError("preserving_mutation works on macro architectures (the family of models.build_model).")
    options = [("widen", i, f) for i, b in enumerate(arch["blocks"]) for f in MACRO_CHOICES["filters"]
               if f > b["filters"]]
    options += [("dense", None, d) for d in MACRO_CHOICES["dense"] if d > arch["dense"] >= 1]
    options += [("insert", None, d) for d in MACRO_CHOICES["dense"] if d >= 20 and arch["dense"] == 0]
    if not options:
        return None, "every block and the dense layer are at their widest already"
    kind, i, value = options[int(rng.integers(len(options)))]
    child = copy.deepcopy(arch)
    if kind == "widen":
        child["blocks"][i]["filters"] = value
        return child, f"widen block {i}: {arch['blocks'][i]['filters']} -> {value} filters (Net2Net)"
    child["dense"] = value
    if kind == "dense":
        return child, f"widen the dense layer: {arch['dense']} -> {value} units (Net2Net)"
    return child, f"insert a dense layer of {value} units that passes the logits through"


def _next_in(w: list, g, count, kind: str, channels: int) -> list:
    """The weights of the layer after a widened one: its inputs follow the copies, divided by their count."""
    if kind == "separable":  # depthwise filters are copied (one per channel), pointwise rows shared out
        return [w[0][:, :, g, :], w[1][:, :, g, :] / count[g][None, None, :, None], w[2]]
    if kind == "standard":
        return [w[0][:, :, g, :] / count[g][None, None, :, None], w[1]]
    units = w[0].shape[1]  # a Dense after Flatten: rows are (row, column, channel), channel fastest
    k = w[0].reshape(-1, channels, units)[:, g, :] / count[g][None, :, None]
    return [k.reshape(-1, units), w[1]]


def morph(parent, child_arch: dict, rng: np.random.Generator):
    """The compiled child network of ``child_arch`` (one :func:`preserving_mutation` away from the trained
    ``parent``, a :func:`build` / ``models.build_model`` network) with weights that compute the parent's function:

    * **widen** a block (Net2Net): new filters copy random old ones; the next layer's weights from each copied
      channel are divided by its number of copies (two copies: halved), so the sum it computes is unchanged;
    * **widen** the dense layer the same way (the output layer's rows divided);
    * **insert** a dense layer of ``d >= 20`` units: units 0-9 compute the parent's logits z, units 10-19 -z,
      and the output layer adds relu(z) - relu(-z) = z; the other units start random with zero outgoing weights.

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
    """

    parent_arch, child = from_hp(models.get_hp(parent)), build(child_arch)
    w = {layer.name: layer.get_weights() for layer in parent.layers if layer.weights}
    new = copy.deepcopy(w)
    pb, cb = parent_arch["blocks"], child_arch["blocks"]
    widened = [i for i, (a, b) in enumerate(zip(pb, cb)) if a["filters"] != b["filters"]]
    head = "dense0" if parent_arch["dense"] else "probs"
    if widened:
        i = widened[0]
        g, count = _widen_map(pb[i]["filters"], cb[i]["filters"], rng)
        new[f"conv{i}"] = [*w[f"conv{i}"][:-2], w[f"conv{i}"][-2][..., g], w[f"conv{i}"][-1][g]]
        nxt = f"conv{i + 1}" if i + 1 < len(pb) else head
        new[nxt] = _next_in(w[nxt], g, count, pb[i + 1]["type"] if i + 1 < len(pb) else "dense", pb[i]["filters"])
    elif parent_arch["dense"]:
        g, count = _widen_map(parent_arch["dense"], child_arch["dense"], rng)
        new["dense0"] = [w["dense0"][0][:, g], w["dense0"][1][g]]
        new["probs"] = [w["probs"][0][g, :] / count[g][:, None], w["probs"][1]]
    else:
        (k, b), d = w["probs"], child_arch["dense"]
        inner = rng.normal(0, 0.01, (k.shape[0], d)).astype("float32")
        inner[:, :10], inner[:, 10:20] = k, -k
        out = np.zeros((d, 10), "float32")
        out[:10], out[10:20] = np.eye(10), -np.eye(10)
        new["dense0"] = [inner, np.concatenate([b, -b, np.zeros(d - 20, "float32")])]
        new["probs"] = [out, np.zeros(10, "float32")]
    for name, weights in new.items():
        child.get_layer(name).set_weights(weights)
    return child


def at_chance(score, n_val: int, n_classes: int = 10) -> bool:
    """True when ``score`` (an accuracy on ``n_val`` balanced examples) is within 3 binomial standard deviations
    of guessing (1 / ``n_classes``): such a network learned nothing, and has no place on a Pareto front.

    Lesson: 03_nas § ✏️ Exercise 3.3: hand the architecture on, exactly.
    """
    p = 1 / n_classes
    return bool(score <= p + 3 * np.sqrt(p * (1 - p) / n_val))


def pareto_front(df: pd.DataFrame, score: str = "score", cost: str = "params", floor: float | None = None
                 ) -> pd.DataFrame:
    """The rows no other row beats on both higher ``score`` and lower ``cost``, sorted by cost; rows whose
    score is at most ``floor`` (e.g. chance level, :func:`at_chance`) are left out: they teach nothing.

    Lesson: 03_nas § ✏️ Exercise 3.3: hand the architecture on, exactly.
    """
    d = df if floor is None else df[df[score] > floor]
    d = d.sort_values([cost, score], ascending=[True, False])
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

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
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


def from_hp(hp: dict) -> dict:
    """The macro architecture of a ``models.build_model`` CNN hp dict without dropout or batch norm (the inverse
    of :func:`to_hp`): what :func:`morph` needs to know about a parent."""
    if hp.get("arch", "cnn") != "cnn" or hp.get("batch_norm") or hp.get("dropout"):
        raise ValueError(f"from_hp reads a plain CNN (no dropout, no batch norm), as to_hp writes; got {hp}.")
    n = len(hp["filters"])
    kernels = hp["kernel_size"] if isinstance(hp["kernel_size"], list) else [hp["kernel_size"]] * n
    convs = hp["conv"] if isinstance(hp["conv"], list) else [hp["conv"]] * n
    blocks = [{"filters": int(f), "kernel": int(k), "type": str(c)} for f, k, c in zip(hp["filters"], kernels, convs)]
    return {"space": "macro", "blocks": blocks, "dense": int(hp["dense_units"])}


def keras_tuner_search(x, y, x_val, y_val, directory, budget: int, epochs: int, seed: int = 0):
    """keras-tuner's ``RandomSearch`` over :func:`macro_hypermodel`, one trial per call of ``search`` so a bar
    moves per candidate; ``overwrite=False``: trials already in ``directory/macro_random`` are resumed, not
    trained again. Returns the tuner (03's section 5 writes the same calls in plain sight)."""
    import keras_tuner as kt

    tuner = kt.RandomSearch(macro_hypermodel, objective="val_accuracy", max_trials=budget, seed=seed + 1,
                            directory=str(directory), project_name="macro_random", overwrite=False)
    for done in tqdm(range(1, budget + 1), desc="keras-tuner trials", unit="candidate", leave=False):
        tuner.oracle.max_trials = done
        with silenced():
            tuner.search(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=128, verbose=0)
    return tuner


def micro_macro_runs(evaluator: Evaluator, size: dict, seed: int = 0) -> dict:
    """03's section 2.5, the tested version: random search in both spaces under one parameter budget at
    ``MM_EPOCHS`` (same seeds, same head), then the transfer: the best searched cell and a random cell (same
    budget) stacked 3 deep. Returns ``{(space, s): table}`` and ``{("transfer", s): (searched, random)}``."""
    out, base = {}, evaluator.seed
    for s in tqdm(range(size["N_SEEDS"]), desc="micro vs macro (seeds)", leave=False):
        evaluator.seed = seed + s
        for space in ("micro", "macro"):
            out[space, s] = random_search(space, size["BUDGET"], lambda a: evaluator(a, epochs=size["MM_EPOCHS"]),
                                          seed=s, max_params=size["PARAM_BUDGET"])
        best = out["micro", s].sort_values("score", ascending=False).arch.iloc[0]
        control = sample("micro", np.random.default_rng(1000 + s), size["PARAM_BUDGET"])
        out["transfer", s] = tuple(evaluator(stack(a, 3), epochs=size["MM_EPOCHS"]) for a in (best, control))
    evaluator.seed = base
    return out


def estimation_candidates(size: dict, seed: int = 0) -> list[dict]:
    """The macro architectures of 03's estimation study (section 3): ``N_RANK`` draws of ``rng(seed + 1)``."""
    rng = np.random.default_rng(seed + 1)
    return [sample("macro", rng) for _ in range(size["N_RANK"])]


def _warm_searches(evaluator: Evaluator, size: dict, folder: Path, seed: int) -> None:
    """The searches of 03's section 2, as the notebook runs them (same seeds, budget, epochs, folders)."""
    budget, epochs = size["BUDGET"], size["EPOCHS"]
    for s in tqdm(range(size["N_SEEDS"]), desc="03 searches (seeds)", leave=False):
        evaluator.seed = seed + s
        fn = lambda arch: evaluator(arch, epochs=epochs)  # noqa: E731
        random_search("macro", budget, fn, seed=s)
        regularized_evolution("macro", budget, fn, population=max(2, min(3, budget // 2)), sample_size=2, seed=s)
        bayesian_search(budget, fn, folder / "nas_bayesian", project=f"seed{s}", seed=s)
        rl_search(budget, fn, seed=s)


def hand_on_candidates(work_dir, nas_hp: dict) -> dict:
    """The two networks 03 compares before handing one on: ``{"03_nas": its winner, "02_tuning": 02's tuned CNN
    (best_model/spec.json)}``, or the fixed recipe ``models.DEFAULTS`` under ``"fixed recipe"`` when 02 has not
    been run in ``work_dir``.

    Lesson: 03_nas § Which model goes on: measured, at one fidelity.
    """

    spec = Path(work_dir) / "best_model" / "spec.json"
    try:
        tuned = json.loads(spec.read_text())["hp"]
        return {"03_nas": dict(nas_hp), "02_tuning": dict(tuned)}
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return {"03_nas": dict(nas_hp), "fixed recipe": dict(models.DEFAULTS)}


def warm_cache(ds, size: str, seed: int = 0) -> None:
    """Run 03's searches and sweeps ahead into the instructor's work folder (:func:`mlcourse.session.work_dir`
    ``(size)``), under the notebook's own names: every plain evaluation in ``nas_evaluations.jsonl`` (the
    notebook's :class:`Evaluator` store), keras-tuner's trials in ``nas_keras_tuner/macro_random`` (resumed),
    the inheritance parents in the model cache. A room that copies the folder finishes 03 in about a minute
    (only the function-preserving children train; the notebook says what it loaded)."""

    table, folder = sizes(size), session.work_dir(size)
    x_tr, y_tr, x_val, y_val = split(ds, table["N_TRAIN"], table["N_VAL"], seed=seed)
    evaluator = Evaluator(x_tr, y_tr, x_val, y_val, seed=seed, store=folder / "nas_evaluations.jsonl")
    _warm_searches(evaluator, table, folder, seed)
    micro_macro_runs(evaluator, table, seed)
    evaluator.seed = seed
    for arch in tqdm(estimation_candidates(table, seed), desc="03 estimation study", leave=False):
        for fidelity in ({}, {"n_train": len(x_tr) // 4}, {"image_size": 14}):
            evaluator(arch, epochs=table["RANK_EPOCHS"], **fidelity)
    for parent in inheritance_parents(table, seed):
        cache.trained_model("nas_parent", x_tr, y_tr, to_hp(parent), table["EPOCHS"], seed=seed, verbose=False)
    keras_tuner_search(x_tr, y_tr, x_val, y_val, folder / "nas_keras_tuner", table["BUDGET"], table["EPOCHS"], seed)
    print(f"03_nas: {len(evaluator.log) - evaluator.loaded} evaluations trained, {evaluator.loaded} already there; "
          f"{folder}")


def inheritance_parents(size: dict, seed: int = 0) -> list[dict]:
    """The parents of 03's inheritance study: ``N_PARENTS`` macro draws of ``rng(seed + 2)`` that can be widened
    (at most 32 filters per block).

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
    """
    rng = np.random.default_rng(seed + 2)
    parents = []
    while len(parents) < size["N_PARENTS"]:
        arch = sample("macro", rng, max_params=size["PARAM_BUDGET"])
        if max(b["filters"] for b in arch["blocks"]) <= 32:
            parents.append(arch)
    return parents

# ------------------------------------------------------------------------------------------------ headlines
def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``03_nas`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    strategies = h.rows("NAS strategies under one budget")
    if strategies:
        best = max(strategies, key=lambda r: r["best val accuracy"])
        h.add("NAS: best strategy under one budget",
              f"{best['strategy']}: {best['best val accuracy']:.4f} validation accuracy in {best['evaluations']} "
              f"evaluations (of {len(strategies)} strategies)")
    estimates = h.rows("performance estimation: rank agreement and time saved")
    cheap = _row(estimates, estimator="1 epoch")
    if cheap:
        h.add("NAS: 1-epoch performance estimate",
              f"rank agreement with full training (Spearman) {cheap['spearman vs full']:.2f}, "
              f"{cheap['time saved']:.0%} of the time saved")
    noise = h.value("NAS strategies: gap vs seed spread", dict)
    if noise and noise.get("gap") is not None:
        interval = noise.get("interval")
        where = (f"95 % t-interval [{interval[0]:+.4f}, {interval[1]:+.4f}] over n = {noise.get('n')} seeds"
                 if isinstance(interval, list) and len(interval) == 2 and None not in interval
                 else f"half-width {noise['seed spread']:.4f}")
        h.add("NAS strategies: leader vs runner-up, per-seed difference (best val accuracy)",
              f"{noise.get('leader', 'leader')} - {noise.get('runner-up', 'runner-up')}: {noise['gap']:+.4f}, "
              f"{where}: " + ("within the noise (the interval includes 0)" if noise.get("within noise")
                              else "more than the noise (the interval excludes 0)"))
    mm = h.value("NAS micro vs macro", dict)
    if mm and mm.get("pairs"):
        h.add("NAS: micro (cell) vs macro search space, random search",
              f"micro won {mm['micro wins']} of {mm['pairs']} same-seed searches, mean difference "
              f"{mm['mean difference']:+.4f}: the claim {'holds' if mm.get('holds') else 'does not hold'} here")
    lc = h.value("learning-curve extrapolation", dict)
    if lc and lc.get("mean abs error") is not None:
        est = _row(estimates, estimator="extrapolated")
        h.add("NAS: learning-curve extrapolation",
              f"from {lc['fit epochs']} to {lc['target epoch']} epochs: mean |error| {lc['mean abs error']:.4f}"
              + (f", Spearman vs full training {est['spearman vs full']:.2f}" if est else "")
              + f"; {lc['fitted']} curves fitted, {lc['fell back']} fell back to the last value")
    return h.out
