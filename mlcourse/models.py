"""The course's models: built from a plain dict of hyperparameters, in either Keras.

Why two Kerases? TensorFlow 2.21 ships Keras 3 as ``tf.keras``, and keras-tuner only accepts Keras 3
models; but tensorflow-model-optimization (pruning, quantization-aware training, clustering) and
multi-worker training only accept the older ``tf_keras``. You never need to care: build with a dict,
and any ``mlcourse`` function converts the model to the Keras it needs, weights included.

    >>> from mlcourse import models
    >>> hp = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.2}
    >>> m3 = models.build_model(hp)                       # Keras 3 (for keras-tuner, plain training)
    >>> mt = models.convert(m3, "tf_keras")               # the same network and weights, for tfmot
    >>> models.save(m3, "my_model")                       # spec.json + weights.npz, readable by both
    >>> models.load("my_model", flavor="tf_keras")

Hyperparameters (all optional; :data:`DEFAULTS` holds the defaults):

* ``arch``: ``"cnn"`` or ``"mlp"``;
* ``filters``: conv filters per block (cnn), e.g. ``[32, 64]``; ``kernel_size``; ``conv``: ``"standard"`` or
  ``"separable"`` (depthwise-separable, MobileNet-style); ``batch_norm``: bool;
* ``hidden_units``: dense layers (mlp), e.g. ``[256, 128]``; ``dense_units``: the dense layer after the convs
  (0 for none); ``dropout``; ``activation``;
* ``learning_rate``, ``optimizer`` (``"adam"``, ``"sgd"``, ``"rmsprop"``);
* ``input_shape`` (default ``[28, 28]``), ``num_classes`` (default 10).

Inputs are raw uint8-valued images; the model rescales them itself, so what you deploy takes what the
camera gives.

**What is free to speed up training here** (issue #23; ``python tools/bench_training.py``, which trains the
default CNN in each variant on the same seeds, interleaved, and prints a table). :func:`train` keeps its recipe
as the default (no XLA, NumPy arrays, batch 128) and offers the other two as options, because on the course's
2-core CPU (AMD EPYC, AVX-512 with VNNI and BF16; measured on 2026-12-02 while other jobs kept the load average
at 20-30, so every time is inflated and only the interleaved ratios mean something) none gave the same
accuracy in less time in both Kerases:

* ``jit_compile=True`` (XLA): later epochs 7.3x slower in Keras 3 and 1.8x in tf_keras, plus about two minutes
  of compilation in the first epoch; the whole fit 5x slower in both, slower in every round (1,000 images,
  2 epochs, 2 seeds). XLA's CPU convolutions do not use oneDNN. Keras 3's own ``jit_compile="auto"`` turns XLA
  off on a machine without a GPU for this reason; where a GPU trains, measure again.
* ``batch_size=512`` at the same epochs and learning rate: a quarter of the steps, and 6.3 points lower
  validation accuracy in Keras 3 (95 % t-interval over 3 seeds [-7.6, -4.9]), 6.1 in tf_keras ([-10.3, -1.9]),
  while not faster per epoch (5,000 images, 3 epochs): larger batches need a larger learning rate or more epochs.
* ``inputs="tf.data"`` (:func:`input_pipeline`, cached): in Keras 3 the whole fit took 0.71x the time (faster in
  3 of 3 rounds, the gain in the first epoch; later epochs too close to call) with accuracy within the seed noise
  (-0.27 points, [-2.1, +1.6]); in tf_keras the fit was too close to call (0.65x, 2 of 3 rounds) and accuracy
  2.3 points lower ([-4.2, -0.5]). A candidate for Keras 3's default once measured on a quiet machine; not made
  the default here, since the cache keys models by recipe and the evidence is from a loaded one.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from mlcourse.session import quiet_import, set_seed

__all__ = ["DEFAULTS", "FLAVORS", "INPUTS", "get_keras", "build_model", "compile_model", "get_hp", "copy_hp",
           "convert", "copy_weights", "epoch_bar", "input_pipeline", "train", "save", "load", "count_params"]

FLAVORS = ("keras3", "tf_keras")
#: How :func:`train` feeds ``fit``: NumPy arrays as given, or a cached ``tf.data`` pipeline (:func:`input_pipeline`).
INPUTS = ("arrays", "tf.data")
DEFAULTS = {
    "arch": "cnn",
    "filters": [32, 64],
    "kernel_size": 3,
    "conv": "standard",
    "batch_norm": False,
    "hidden_units": [128],
    "dense_units": 128,
    "dropout": 0.2,
    "activation": "relu",
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "input_shape": [28, 28],
    "num_classes": 10,
}
_HP_ATTR = "_mlcourse_hp"


def get_keras(flavor: str = "keras3"):
    """The Keras module of a flavor: ``"keras3"`` -> ``keras``, ``"tf_keras"`` -> ``tf_keras``."""
    if flavor not in FLAVORS:
        raise ValueError(f"Unknown Keras flavor {flavor!r}: use one of {FLAVORS}.")
    return quiet_import("keras" if flavor == "keras3" else "tf_keras")


def flavor_of(model) -> str:
    """Which Keras built ``model``: ``"keras3"`` or ``"tf_keras"`` (a subclass you wrote, such as a
    ``Distiller(keras.Model)``, is of its base class's Keras)."""
    for cls in type(model).__mro__:
        module = cls.__module__
        if module.startswith("tf_keras"):
            return "tf_keras"
        if module.startswith("keras"):
            return "keras3"
    raise TypeError(f"{type(model).__name__} is not a Keras model.")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _int_list(key: str, value, minimum: int = 1, allow_empty: bool = True) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) and v >= minimum for v in value) \
            or (not value and not allow_empty):
        raise ValueError(f"{key} must be a list of positive integers (one per layer), e.g. [32, 64]; "
                         f"got {value!r}" + (" (a string)" if isinstance(value, str) else "") + ".")
    return [int(v) for v in value]


def _validate(hp: dict) -> dict:
    """The full hyperparameter dict (defaults filled in, plain Python types), or a ValueError that says
    which value is wrong and what was expected. Types are strict: a string is never read as a number or a
    list, an int never as a bool."""
    if not isinstance(hp, dict):
        raise TypeError(f"hp must be a dict of hyperparameters, got {type(hp).__name__}.")
    unknown = set(hp) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown hyperparameters {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    full = {**DEFAULTS, **hp}
    if not isinstance(full["arch"], str) or full["arch"] not in ("cnn", "mlp"):
        raise ValueError(f"arch must be 'cnn' or 'mlp', got {full['arch']!r}.")
    full["filters"] = _int_list("filters", full["filters"], allow_empty=full["arch"] == "mlp")
    full["hidden_units"] = _int_list("hidden_units", full["hidden_units"])
    n_blocks = len(full["filters"])
    for key, ok, what in (("conv", lambda v: isinstance(v, str) and v in ("standard", "separable"),
                           "'standard' or 'separable'"),
                          ("kernel_size", lambda v: _is_int(v) and v in (1, 3, 5, 7), "1, 3, 5 or 7")):
        values = full[key] if isinstance(full[key], (list, tuple)) else [full[key]]
        if len(values) not in (1, n_blocks) or not all(ok(v) for v in values):
            raise ValueError(f"{key} must be one value or a list with one per conv block ({n_blocks}), each "
                             f"{what}; got {full[key]!r}.")
        full[key] = [int(v) if key == "kernel_size" else v for v in full[key]] \
            if isinstance(full[key], (list, tuple)) else (int(full[key]) if key == "kernel_size" else full[key])
    if not isinstance(full["batch_norm"], (bool, np.bool_)):
        raise ValueError(f"batch_norm must be True or False, got {full['batch_norm']!r}.")
    full["batch_norm"] = bool(full["batch_norm"])
    if not _is_int(full["dense_units"]) or full["dense_units"] < 0:
        raise ValueError(f"dense_units must be an integer >= 0 (0 for no dense layer), got {full['dense_units']!r}.")
    full["dense_units"] = int(full["dense_units"])
    if not _is_real(full["dropout"]) or not 0 <= full["dropout"] < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {full['dropout']!r}.")
    full["dropout"] = float(full["dropout"])
    if not isinstance(full["activation"], str) or not full["activation"]:
        raise ValueError(f"activation must be the name of a Keras activation (e.g. 'relu'), "
                         f"got {full['activation']!r}.")
    if not _is_real(full["learning_rate"]) or not np.isfinite(full["learning_rate"]) or full["learning_rate"] <= 0:
        raise ValueError(f"learning_rate must be a finite positive number (e.g. 1e-3), got {full['learning_rate']!r}.")
    full["learning_rate"] = float(full["learning_rate"])
    if full["optimizer"] not in ("adam", "sgd", "rmsprop"):
        raise ValueError(f"optimizer must be one of ['adam', 'rmsprop', 'sgd'], got {full['optimizer']!r}.")
    shape = full["input_shape"]
    if not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3) or not all(_is_int(v) and v > 0 for v in shape):
        raise ValueError(f"input_shape must be a list of 2 or 3 positive integers (height, width[, channels]), "
                         f"e.g. [28, 28]; got {shape!r}.")
    full["input_shape"] = [int(v) for v in shape]
    if not _is_int(full["num_classes"]) or full["num_classes"] < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {full['num_classes']!r}.")
    full["num_classes"] = int(full["num_classes"])
    return full


def build_model(hp: dict | None = None, flavor: str = "keras3", compile: bool = True, name: str | None = None,
                jit_compile: bool | None = None):
    """Build (and by default compile) the network that ``hp`` describes, in Keras ``flavor``.

    ``jit_compile`` is passed to ``model.compile`` (see :func:`compile_model`; None keeps Keras' own default).

    ``kernel_size`` and ``conv`` are one value for every conv block or a list with one per block (what a
    NAS macro architecture needs). The full hyperparameter dict (defaults filled in) is kept on the model:
    :func:`get_hp` returns it, and :func:`convert` / :func:`save` use it. Types are strict (see
    :data:`DEFAULTS`): nonsense such as ``filters="3264"`` or ``batch_norm="false"`` is a ValueError.

    Lesson: 00_workflow § Trainable parameters vs hyperparameters; also used in 02_tuning, 03_nas, 05_compression,
    07_distillation_ensembles.
    """
    hp = _validate(hp or {})
    K = get_keras(flavor)
    L = K.layers
    shape = tuple(hp["input_shape"])
    inputs = K.Input(shape=shape, name="image")
    x = L.Rescaling(1.0 / 255, name="rescale")(inputs)
    if hp["arch"] == "cnn":
        if len(shape) == 2:
            x = L.Reshape(shape + (1,), name="add_channel")(x)
        n = len(hp["filters"])
        kinds = hp["conv"] if isinstance(hp["conv"], list) else [hp["conv"]] * n
        kernels = hp["kernel_size"] if isinstance(hp["kernel_size"], list) else [hp["kernel_size"]] * n
        kinds, kernels = kinds * (n if len(kinds) == 1 else 1), kernels * (n if len(kernels) == 1 else 1)
        for i, f in enumerate(hp["filters"]):
            conv = L.SeparableConv2D if kinds[i] == "separable" else L.Conv2D
            x = conv(f, kernels[i], padding="same", activation=None if hp["batch_norm"] else hp["activation"],
                     name=f"conv{i}")(x)
            if hp["batch_norm"]:
                x = L.BatchNormalization(name=f"bn{i}")(x)
                x = L.Activation(hp["activation"], name=f"act{i}")(x)
            x = L.MaxPooling2D(name=f"pool{i}")(x)
        x = L.Flatten(name="flatten")(x)
        dense = [hp["dense_units"]] if hp["dense_units"] else []
    else:
        x = L.Flatten(name="flatten")(x)
        dense = hp["hidden_units"]
    for i, units in enumerate(dense):
        if hp["dropout"]:
            x = L.Dropout(hp["dropout"], name=f"dropout{i}")(x)
        x = L.Dense(units, activation=hp["activation"], name=f"dense{i}")(x)
    if hp["dropout"]:
        x = L.Dropout(hp["dropout"], name="dropout_out")(x)
    outputs = L.Dense(hp["num_classes"], activation="softmax", name="probs")(x)
    model = K.Model(inputs, outputs, name=name or f"{hp['arch']}_{flavor}")
    object.__setattr__(model, _HP_ATTR, json.dumps(hp))  # a plain string: invisible to Keras' tracking
    if compile:
        compile_model(model, hp, jit_compile=jit_compile)
    return model


def compile_model(model, hp: dict | None = None, jit_compile: bool | None = None):
    """Compile ``model`` with the optimizer and learning rate of ``hp`` (default: its own).

    ``jit_compile=True`` asks ``model.compile`` to compile each training step with XLA, ``False`` forbids it;
    ``None`` (the default) leaves Keras' own default: off for tf_keras, and for Keras 3 ``"auto"``, which is
    off on a machine without a GPU.

    Lesson: 05_compression § 5 · Quantization-aware training: fake quantization, and when it pays.
    """
    if jit_compile is not None and not isinstance(jit_compile, (bool, np.bool_)):
        raise ValueError(f"jit_compile must be True, False or None (Keras' default), got {jit_compile!r}.")
    hp = _validate(hp if hp is not None else get_hp(model))
    K = get_keras(flavor_of(model))
    optimizers = {"adam": K.optimizers.Adam, "sgd": K.optimizers.SGD, "rmsprop": K.optimizers.RMSprop}
    if hp["optimizer"] not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {hp['optimizer']!r}.")
    extra = {} if jit_compile is None else {"jit_compile": bool(jit_compile)}
    model.compile(optimizer=optimizers[hp["optimizer"]](learning_rate=hp["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], **extra)
    return model


def get_hp(model) -> dict:
    """The hyperparameter dict a model was built from (raises if it was not built by :func:`build_model`).

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in
    05_compression.
    """
    raw = getattr(model, _HP_ATTR, None)
    if raw is None:
        raise ValueError(f"Model {model.name!r} was not built by mlcourse.models.build_model, so its "
                         "hyperparameters are unknown. Build it with build_model(hp) to convert or save it.")
    return json.loads(raw)


def copy_hp(src, dst):
    """Give ``dst`` the hyperparameter dict of ``src`` (for a model rebuilt by a library, e.g. tfmot's
    wrappers or ``strip_pruning``, that should still convert and save like ``src``). Returns ``dst``."""
    object.__setattr__(dst, _HP_ATTR, json.dumps(get_hp(src)))
    return dst


def copy_weights(src, dst):
    """Copy every weight of ``src`` into ``dst`` (same architecture, any Keras flavor). Returns ``dst``.

    Raises a ValueError naming the first layer whose shapes differ.
    """
    sw, dw = src.get_weights(), dst.get_weights()
    if len(sw) != len(dw):
        raise ValueError(f"Cannot copy weights: {src.name!r} has {len(sw)} weight arrays, {dst.name!r} has "
                         f"{len(dw)}. The two models must be built from the same hyperparameters.")
    names = [w.path if hasattr(w, "path") else w.name for w in dst.weights]
    for i, (a, b) in enumerate(zip(sw, dw)):
        if a.shape != b.shape:
            where = names[i] if i < len(names) else f"#{i}"
            raise ValueError(f"Cannot copy weights: weight {where} has shape {b.shape} in {dst.name!r} but "
                             f"{a.shape} in {src.name!r}. Build both from the same hyperparameters.")
    dst.set_weights(sw)
    return dst


def convert(model, flavor: str):
    """The same network, with the same weights, in Keras ``flavor`` (returns ``model`` if it already is).

    Lesson: 05_compression § 5 · Quantization-aware training: fake quantization, and when it pays; also used in
    06_distributed_training.
    """
    if flavor_of(model) == flavor:
        return model
    twin = build_model(get_hp(model), flavor=flavor, name=model.name.replace(flavor_of(model), flavor))
    return copy_weights(model, twin)


def epoch_bar(model, epochs: int, desc: str | None = None):
    """A Keras callback that shows a tqdm bar over the epochs of ``model.fit`` (with ``verbose=0``), in the
    flavor of ``model``: ``model.fit(x, y, epochs=8, verbose=0, callbacks=[epoch_bar(model, 8)])``.
    The training itself is untouched (unlike calling ``fit`` one epoch at a time).

    Lesson: 01_training § 0 · Data: one training set, one validation set; also used in 02_tuning,
    07_distillation_ensembles, 08_deployment, 10_capstone.
    """
    from tqdm.auto import tqdm

    class EpochBar(get_keras(flavor_of(model)).callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc=desc or f"training {model.name}", unit="epoch", leave=False)
            self.epochs_done, self.last = 0, {}

        def on_epoch_end(self, epoch, logs=None):
            self.epochs_done += 1
            self.last = {k: f"{v:.3f}" for k, v in (logs or {}).items() if "loss" in k or "acc" in k}
            self.bar.set_postfix(self.last)
            self.bar.update()

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochBar()


def input_pipeline(x, y, batch_size: int = 128, seed: int = 0):
    """A cached, shuffled, batched, prefetched ``tf.data`` pipeline over ``(x, y)``, for ``model.fit``::

        tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(x), seed=seed) \\
            .batch(batch_size).prefetch(tf.data.AUTOTUNE)

    It reshuffles every epoch, as ``fit`` does with arrays."""
    tf = quiet_import("tensorflow")

    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return (tf.data.Dataset.from_tensor_slices((x, y)).cache()
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(int(batch_size)).prefetch(tf.data.AUTOTUNE))


def train(hp: dict | None, x, y, epochs: int, batch_size: int = 128, seed: int = 0, name: str | None = None,
          flavor: str = "keras3", jit_compile: bool | None = None, inputs: str = "arrays", callbacks=()):
    """Seed, build (:func:`build_model`), and fit a model on ``(x, y)`` with a progress bar over the epochs.

    The whole recipe in plain Keras, so you can write it yourself::

        session.set_seed(seed)
        model = build_model(hp, name=name)
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[epoch_bar(model, epochs)])

    Options (the defaults are the recipe above): ``jit_compile`` for ``model.compile`` (see
    :func:`compile_model`); ``inputs="tf.data"`` feeds ``fit`` the :func:`input_pipeline` of ``(x, y)`` instead
    of the arrays; ``callbacks`` are added to the progress bar. ``tools/bench_training.py`` measures what each
    option buys on this machine (the module docstring says what it measured on the course's CPUs).

    :func:`mlcourse.cache.trained_model` is the same recipe, trained once and then loaded from the cache.
    """

    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}.")
    set_seed(seed)
    model = build_model(hp, flavor=flavor, name=name, jit_compile=jit_compile)
    fit_cb = [epoch_bar(model, epochs), *callbacks]
    if inputs == "tf.data":
        model.fit(input_pipeline(x, y, batch_size, seed), epochs=epochs, verbose=0, callbacks=fit_cb,
                  shuffle=False)  # the pipeline shuffles
    else:
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=fit_cb)
    return model


def count_params(model) -> int:
    """The number of weights (trainable and not) of a model.

    Lesson: 00_workflow § Trainable parameters vs hyperparameters; also used in 02_tuning, 03_nas, 05_compression,
    07_distillation_ensembles, 08_deployment, 09_runtimes.
    """
    return int(sum(int(np.prod(w.shape)) for w in model.get_weights()))


def save(model, directory, overwrite: bool = False) -> Path:
    """Save ``model`` as ``spec.json`` (its hp) + ``weights.npz``, readable from either Keras.

    Refuses to overwrite an existing save unless ``overwrite=True``: your trained models are not lost.

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds.
    """
    directory = Path(directory)
    if (directory / "spec.json").exists() and not overwrite:
        raise FileExistsError(f"{directory} already holds a saved model. Pass overwrite=True to replace it, "
                              "or choose another directory.")
    directory.mkdir(parents=True, exist_ok=True)
    weights = model.get_weights()
    np.savez(directory / "weights.npz", *weights)
    spec = {"hp": get_hp(model), "name": model.name, "n_weights": len(weights), "format": 1}
    (directory / "spec.json").write_text(json.dumps(spec, indent=2))
    return directory


def load(directory, flavor: str = "keras3", compile: bool = True):
    """Load a model saved by :func:`save`, in Keras ``flavor``."""
    directory = Path(directory)
    spec_file, weights_file = directory / "spec.json", directory / "weights.npz"
    if not spec_file.is_file() or not weights_file.is_file():
        raise FileNotFoundError(f"{directory} holds no saved model (spec.json and weights.npz): save one "
                                "with mlcourse.models.save(model, directory).")
    try:
        spec = json.loads(spec_file.read_text())
        with np.load(weights_file) as z:
            weights = [z[f"arr_{i}"] for i in range(spec["n_weights"])]
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"The saved model in {directory} is corrupt ({exc}); save it again.") from exc
    model = build_model(spec["hp"], flavor=flavor, compile=compile, name=spec["name"])
    dw = model.get_weights()
    if len(dw) != len(weights) or any(a.shape != b.shape for a, b in zip(dw, weights)):
        raise ValueError(f"The weights in {directory} do not fit the network its spec.json describes; "
                         "the save is corrupt or was edited. Save the model again.")
    model.set_weights(weights)
    return model
