"""Making models small and fast, measured: quantization, pruning, clustering, low rank, compact and binary nets.

Every function takes a model built by :func:`mlcourse.models.build_model` in *either* Keras; those that
need tensorflow-model-optimization convert it to ``tf_keras`` for you (weights included).

* conversion and LiteRT live in :mod:`mlcourse.litert` (``to_tflite``, ``evaluate_tflite``, ``sizes``, ...),
  which every later week calls too;
* :func:`prune` (ConstantSparsity or PolynomialDecay, callback and ``strip_pruning`` included),
  :func:`quantization_aware`, :func:`cluster`, :func:`low_rank`, :func:`macs`, :class:`BinaryWeightDense`;
* :func:`prune_filters` / :func:`structured_prune`: structured (whole-filter) pruning, which shrinks compute;
* :func:`latency_table`: LiteRT variants timed interleaved (:func:`mlcourse.timing.interleaved`), one thread;
* :func:`with_outlier_unit`: a function-preserving copy with one very wide activation (PTQ's hard case);
* :func:`wide_mlp`, :func:`weight_bytes`: the memory-bound case where int8 pays at batch 1 on any CPU;
* :func:`keras_int8` (Keras 3's ``model.quantize("int8")``), :func:`litert_int8` (the LiteRT quantizer, optional);
* :func:`sensitivity_scan`, :func:`allocate_sparsity`, :func:`uniform_sparsity`, :func:`magnitude_prune`,
  :func:`prune_per_layer`: adaptive (per-layer) sparsity for a target number of non-zero weights;
* :func:`benchmark`: everything above side by side on one trained baseline, with the course's targets.

Notebook: ``solutions/05_compression.ipynb`` (this module is the tested version of its teaching cells).
Its parameter defaults live in :data:`SIZES`, read by the notebook and by :func:`warm_cache` alike.

    python -m mlcourse.compression [--size smoke|lesson|full]   # the benchmark table (the course runs it too)

Pitfalls this module guards against: converting a model that still carries pruning wrappers
(:func:`mlcourse.litert.to_tflite` refuses and says to strip), training a pruned model without its callback
(:func:`prune` adds it), calibrating int8 on too few samples (a warning), and comparing sizes without
compression (:func:`sizes` always reports both).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlcourse import data, models, results, session, settings, timing
from mlcourse.cache import cached_model, fingerprint, trained_model
from mlcourse.headlines import Figure, Headlines, Reference, row
from mlcourse.litert import PTQ_REFERENCE, evaluate_tflite, interpreter, sizes, to_tflite
from mlcourse.session import quiet_import, quiet_tensorflow, set_seed, silenced

__all__ = ["headlines", "FIGURES", "REFERENCES",
           "warm_cache", "split", "SIZES", "CONV_HP", "prune_filters", "structured_prune", "latency_table",
           "with_outlier_unit", "BinaryWeightDense", "float_mlp", "wide_mlp", "weight_bytes", "keras_int8",
           "litert_quantizer", "litert_int8", "prunable_layers", "magnitude_prune", "sensitivity_scan",
           "keras_accuracy", "nonzero_weights", "allocate_sparsity", "uniform_sparsity", "prune_per_layer",
           "sparsity", "prunable", "prune", "quantization_aware", "cluster", "low_rank", "macs",
           "build_binary_mlp", "binary_weight_bytes", "fit", "sparsity_sweep", "calibration_sweep",
           "low_rank_sweep", "baseline_model", "float_finetune", "CONTROL", "benchmark", "BASELINE_HP", "TARGETS",
           "check_targets"]


# ------------------------------------------------------------------------------------------------ pruning
def sparsity(model) -> float:
    """Share of exactly-zero weights among the kernels (the weights that pruning targets).

    Lesson: 05_compression § ✏️ Exercise 5.3: write the pruning loop.
    """
    kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
    total = sum(k.size for k in kernels)
    return float(sum((k == 0).sum() for k in kernels) / total) if total else 0.0


# ------------------------------------------------------------------------------------------ training
def fit(model, x, y, epochs: int = 1, batch_size: int = 128, callbacks=None, validation_split: float = 0.0):
    """``model.fit`` with the course's defaults: quiet, with :func:`mlcourse.models.epoch_bar` over the epochs.
    Returns the history dict (``{"loss": [...], "accuracy": [...]}``).

    Lesson: 05_compression § 5 · Quantization-aware training: fake quantization, and when it pays.
    """
    h = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, validation_split=validation_split,
                  callbacks=[*(callbacks or []), models.epoch_bar(model, epochs)])
    return dict(h.history)


def _tfk_twin(model):
    """A tf_keras copy of ``model`` (tfmot accepts only tf_keras), hp kept."""
    return models.convert(model, "tf_keras")


def _wrap_kernels(model, wrap):
    """Clone ``model`` with ``wrap(layer)`` around every Dense/Conv layer (SeparableConv2D is a Conv2D).

    The wrappers hold the original, trained layers, so the weights carry over; layers without weights
    (Rescaling, pooling, flatten) are shared as they are: tfmot's registries do not know Rescaling.
    """
    tf_keras = quiet_import("tf_keras")

    kernel_layers = (tf_keras.layers.Dense, tf_keras.layers.Conv2D)
    return tf_keras.models.clone_model(
        model, clone_function=lambda lay: wrap(lay) if isinstance(lay, kernel_layers) else lay)


def prunable(model, target_sparsity: float = 0.8, schedule: str = "polynomial", steps: int = 1000):
    """The model with every Conv/Dense layer wrapped for magnitude pruning (tf_keras, *not* stripped).

    For when you train yourself: ``fit`` it with ``tfmot.sparsity.keras.UpdatePruningStep()`` among the
    callbacks, then ``tfmot.sparsity.keras.strip_pruning`` it. :func:`prune` does all three.
    ``steps`` is the number of training steps over which the schedule runs.

    Lesson: 05_compression § ✏️ Exercise 5.3: write the pruning loop.
    """
    import tensorflow_model_optimization as tfmot

    if not 0 < target_sparsity < 1:
        raise ValueError(f"target_sparsity must be in (0, 1), got {target_sparsity}.")
    if schedule not in ("constant", "polynomial"):
        raise ValueError(f"schedule must be 'constant' or 'polynomial', got {schedule!r}.")
    frequency = max(1, steps // 20)
    if schedule == "constant":
        sched = tfmot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step=0, frequency=frequency)
    else:
        sched = tfmot.sparsity.keras.PolynomialDecay(0.0, target_sparsity, begin_step=0,
                                                     end_step=max(1, int(steps * 0.8)), frequency=frequency)
    wrapped = _wrap_kernels(_tfk_twin(model),
                            lambda lay: tfmot.sparsity.keras.prune_low_magnitude(lay, pruning_schedule=sched))
    return models.copy_hp(model, wrapped)


def prune(model, x, y, target_sparsity: float = 0.8, schedule: str = "polynomial", epochs: int = 2,
          batch_size: int = 128, learning_rate: float = 5e-4):
    """Magnitude pruning with fine-tuning; returns a *stripped* tf_keras model with ``target_sparsity``.

    ``schedule``: ``"constant"`` (ConstantSparsity: prune to the target at once, then keep it) or
    ``"polynomial"`` (PolynomialDecay: from 0 to the target over the fine-tuning steps, gentler).
    The ``UpdatePruningStep`` callback is added for you: without it tfmot's masks never update.
    Rescaling, pooling and flatten layers have no weights and are left alone.

    Lesson: 05_compression § Structured pruning: fewer filters, less compute.
    """
    import tensorflow_model_optimization as tfmot

    steps = int(np.ceil(len(x) / batch_size)) * epochs
    wrapped = prunable(model, target_sparsity, schedule, steps)
    hp = dict(models.get_hp(model), learning_rate=learning_rate)
    models.compile_model(models.copy_hp(model, wrapped), hp)
    fit(wrapped, x, y, epochs=epochs, batch_size=batch_size, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    models.compile_model(models.copy_hp(model, stripped), hp)
    return stripped


#: The benchmark row that fine-tunes the float model as QAT and clustering do (same epochs, same learning rate)
#: and converts it to int8 like them: what a fine-tuned row must beat, rather than the float32 baseline.
CONTROL = "control: float fine-tune + int8"


def float_finetune(model, x, y, epochs: int = 1, batch_size: int = 128, learning_rate: float = 1e-4):
    """The equal-epoch control of the fine-tuned variants: a tf_keras copy of ``model`` trained on for ``epochs``
    at ``learning_rate`` (QAT's defaults) with no compression at all."""
    twin = _tfk_twin(model)
    models.compile_model(models.copy_hp(model, twin), dict(models.get_hp(model), learning_rate=learning_rate))
    fit(twin, x, y, epochs=epochs, batch_size=batch_size)
    return twin


def quantization_aware(model, x, y, epochs: int = 1, batch_size: int = 128, learning_rate: float = 1e-4):
    """Quantization-aware training: fake-quantize Conv/Dense layers while fine-tuning (tf_keras model).

    Convert the result with ``to_tflite(qat_model, "dynamic")``: its quantization ranges are learned,
    so no calibration data is needed.

    Lesson: 05_compression § 5 · Quantization-aware training: fake quantization, and when it pays.
    """
    import tensorflow_model_optimization as tfmot

    base = _tfk_twin(model)
    annotated = _wrap_kernels(base, tfmot.quantization.keras.quantize_annotate_layer)
    qat = tfmot.quantization.keras.quantize_apply(annotated)
    models.compile_model(models.copy_hp(model, qat), dict(models.get_hp(model), learning_rate=learning_rate))
    fit(qat, x, y, epochs=epochs, batch_size=batch_size)
    return qat


def cluster(model, x, y, n_clusters: int = 16, epochs: int = 1, batch_size: int = 128,
            learning_rate: float = 1e-4):
    """Weight clustering: each kernel keeps only ``n_clusters`` distinct values (fine-tuned, stripped).

    Lesson: 05_compression § 8 · Low-rank factorization.
    """
    import tensorflow_model_optimization as tfmot

    if n_clusters < 2:
        raise ValueError(f"n_clusters must be at least 2, got {n_clusters}.")
    ck = tfmot.clustering.keras
    clustered = _wrap_kernels(_tfk_twin(model), lambda lay: ck.cluster_weights(
        lay, number_of_clusters=n_clusters, cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS))
    models.compile_model(models.copy_hp(model, clustered), dict(models.get_hp(model), learning_rate=learning_rate))
    fit(clustered, x, y, epochs=epochs, batch_size=batch_size)
    stripped = ck.strip_clustering(clustered)
    models.compile_model(models.copy_hp(model, stripped))
    return stripped


# ----------------------------------------------------------------------------------- structural changes
def low_rank(model, rank: int):
    """Replace every hidden Dense layer ``W (n x m)`` by two, ``U_r S_r (n x r)`` then ``V_r (r x m)``.

    The truncated SVD is the best rank-``r`` approximation of ``W``; parameters go from ``n*m`` to
    ``r*(n+m)``. Returns a new Keras 3 model (no fine-tuning: measure what the approximation costs).
    Layers with ``r*(n+m) >= n*m`` are kept as they are (with a warning). A ``rank`` above a layer's full
    rank ``min(n, m)`` is refused: it would leave the layer as it is and the result would not be rank ``r``.

    Lesson: 05_compression § 8 · Low-rank factorization.
    """
    keras = quiet_import("keras")

    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise TypeError(f"rank must be an integer, got {rank!r}.")
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}.")
    src = models.convert(model, "keras3")
    hidden = [lay for lay in src.layers[1:-1] if isinstance(lay, keras.layers.Dense)]
    if not hidden:
        raise ValueError(f"{src.name} has no hidden Dense layer to factorize (only the output layer): low_rank "
                         "needs a model with dense_units (a CNN) or hidden_units (an MLP).")
    full = {lay.name: min(lay.kernel.shape) for lay in hidden}
    too_high = {name: r for name, r in full.items() if rank > r}
    if too_high:
        raise ValueError(f"rank {rank} is above the full rank of {too_high} (min(n, m) of each kernel): a rank-"
                         f"{rank} factorization would not change those layers. Use a rank of at most "
                         f"{min(full.values())}.")
    kept = [lay.name for lay in hidden if rank * sum(lay.kernel.shape) >= int(np.prod(lay.kernel.shape))]
    if kept:
        warnings.warn(f"rank {rank}: factorizing {kept} would not save parameters (r*(n+m) >= n*m), so they are "
                      "kept as they are.", stacklevel=2)
    inputs = keras.Input(shape=src.input_shape[1:], name="image")
    x = inputs
    last = src.layers[-1]
    for layer in src.layers[1:]:
        if isinstance(layer, keras.layers.Dense) and layer is not last:
            w, b = layer.get_weights()
            n, m = w.shape
            if rank * (n + m) < n * m:
                u, s, vt = np.linalg.svd(w, full_matrices=False)
                a = keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_U")
                c = keras.layers.Dense(m, activation=layer.activation, name=f"{layer.name}_V")
                x = c(a(x))
                a.set_weights([u[:, :rank] * s[:rank]])
                c.set_weights([vt[:rank], b])
                continue
        x = layer(x)
    out = keras.Model(inputs, x, name=f"{src.name}_rank{rank}")
    out.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return out


def macs(model) -> pd.DataFrame:
    """Multiply-accumulates per image for each Conv2D, SeparableConv2D and Dense layer, and their total.

    Lesson: 05_compression § Structured pruning: fewer filters, less compute; also used in 09_runtimes.
    """
    rows = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense"):
            continue
        out_shape = layer.output.shape if hasattr(layer, "output") else layer.output_shape
        in_shape = layer.input.shape
        if kind == "Dense":
            n = int(in_shape[-1]) * int(out_shape[-1])
        else:
            h, w, cout = (int(v) for v in out_shape[1:])
            cin = int(in_shape[-1])
            kh, kw = layer.kernel_size
            if kind == "Conv2D":
                n = h * w * kh * kw * cin * cout
            else:  # depthwise (kh*kw per input channel) + pointwise (1x1)
                n = h * w * kh * kw * cin + (h * w * cin * cout if kind == "SeparableConv2D" else 0)
        rows.append({"layer": layer.name, "type": kind, "macs": n})
    df = pd.DataFrame(rows)
    return pd.concat([df, pd.DataFrame([{"layer": "total", "type": "", "macs": int(df.macs.sum())}])],
                     ignore_index=True)


# ------------------------------------------------------------------------------------------- binarized
def _binary_dense_class():
    keras = quiet_import("keras")
    ops = quiet_import("keras").ops

    @keras.saving.register_keras_serializable(package="mlcourse")
    class BinaryWeightDense(keras.layers.Dense):
        """A *binary-weight* Dense layer: weights are binarized to ``±alpha`` in the forward pass, the
        activations stay float (BinaryConnect / BWN, not a fully binarized XNOR network).

        ``alpha`` is the mean absolute weight (one float for the whole layer; XNOR-Net uses one per output
        filter); the gradient flows to the real-valued weights as if the sign were the identity (the
        straight-through estimator, without clipping or gradient cancellation). Stored as bits, the weights
        take 1/32 of float32; the multiply-adds stay float, so there is no XNOR/popcount speed-up.
        """

        def call(self, inputs):
            w = self.kernel
            alpha = ops.mean(ops.abs(w))
            binary = ops.where(w >= 0, alpha, -alpha)
            w_ste = w + ops.stop_gradient(binary - w)  # forward: binary; backward: identity
            y = ops.matmul(inputs, w_ste)
            if self.use_bias:
                y = y + self.bias
            return self.activation(y) if self.activation is not None else y

    return BinaryWeightDense


BinaryWeightDense = None  # set lazily (needs Keras): use build_binary_mlp or _binary_dense_class()


def build_binary_mlp(hidden_units=(512, 256), learning_rate: float = 1e-3, num_classes: int = 10):
    """An MLP whose hidden layers are :class:`BinaryWeightDense` (binary weights, float activations; input
    scaling and the output layer stay float, the usual practice). Keras 3, compiled.

    Lesson: 05_compression § 10 · Binary-weight networks.
    """
    keras = quiet_import("keras")

    global BinaryWeightDense
    BinaryWeightDense = BinaryWeightDense or _binary_dense_class()
    inputs = keras.Input((28, 28), name="image")
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    for i, units in enumerate(hidden_units):
        x = BinaryWeightDense(units, name=f"binary{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="binary_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def binary_weight_bytes(model) -> tuple[int, int]:
    """``(float32 bytes, 1-bit bytes)`` of the binarized layers' kernels: the theoretical 32x saving.

    Lesson: 05_compression § 10 · Binary-weight networks.
    """
    n = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if type(layer).__name__ == "BinaryWeightDense")
    return 4 * n, int(np.ceil(n / 8))


# ---------------------------------------------------------------------------------------------- sweeps
def sparsity_sweep(model, x, y, x_test, y_test, sparsities=(0.5, 0.75, 0.9, 0.95),
                   schedules=("constant", "polynomial"), epochs: int = 1) -> pd.DataFrame:
    """Prune ``model`` to each sparsity with each schedule; test accuracy and gzipped int8 size of each.

    Lesson: 05_compression § ✏️ Exercise 5.3: write the pruning loop.
    """
    from tqdm.auto import tqdm

    rows = []
    for sched in schedules:
        for s in tqdm(sparsities, desc=f"pruning ({sched})", leave=False):
            pruned = prune(model, x, y, target_sparsity=s, schedule=sched, epochs=epochs)
            blob = to_tflite(pruned, "int8", x[:500])
            rows.append({"schedule": sched, "target_sparsity": s, "measured_sparsity": sparsity(pruned),
                         "accuracy": evaluate_tflite(blob, x_test, y_test), "gzipped_int8": sizes(blob)[1]})
    return pd.DataFrame(rows)


def calibration_sweep(model, calibration_sets: dict, x_test, y_test) -> pd.DataFrame:
    """int8 accuracy when the converter calibrates activation ranges on each ``{name: images}`` set.

    Compare sizes (1, 10, 500 random training images) *and* representativeness (images of one class
    only, darker images than production sees): the ranges come from these images alone.

    Lesson: 05_compression § 4 · Calibration: how many images, and which.
    """
    rows = []
    for name, images in calibration_sets.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blob = to_tflite(model, "int8", images)
        rows.append({"calibration set": name, "images": len(images), "accuracy": evaluate_tflite(blob, x_test, y_test)})
    return pd.DataFrame(rows)


def low_rank_sweep(model, x_test, y_test, ranks=(2, 4, 8, 16, 32, 64, 128)) -> pd.DataFrame:
    """Accuracy and parameters after replacing hidden Dense layers by rank-``r`` factors (no fine-tuning).

    Lesson: 05_compression § 8 · Low-rank factorization.
    """
    rows = [{"rank": "full", "params": models.count_params(model),
             "accuracy": float(model.evaluate(x_test, y_test, verbose=0)[1])}]
    for r in ranks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a rank that saves nothing in some layer: its row shows the cost
            try:
                m = low_rank(model, r)
            except ValueError as err:
                if "above the full rank" not in str(err):
                    raise
                print(f"low_rank_sweep: rank {r} skipped: {str(err).split(':')[0]}.")
                continue
        rows.append({"rank": r, "params": m.count_params(),
                     "accuracy": float(m.evaluate(x_test, y_test, verbose=0)[1])})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ benchmark
#: The compression week's baseline. The 256-unit dense layer holds most weights, so a file's fixed overhead
#: (graph, metadata, per-channel scales) matters little and size ratios show what quantization does to weights.
BASELINE_HP = {"arch": "cnn", "filters": [32, 64], "dense_units": 256, "dropout": 0.3}

#: The course's targets for the full run (issue: int8 >= 3.9x smaller with <= 0.5 pp loss; pruned + int8
#: >= 12x smaller gzipped than the float32 baseline with <= 1 pp loss; int8 faster than float32).
TARGETS = {
    "int8 size ratio (float32 / int8, on disk)": (">=", 3.9),
    "int8 accuracy loss (pp)": ("<=", 0.5),
    "pruned+int8 size ratio (gzipped float32 / gzipped pruned+int8)": (">=", 12.0),
    "pruned+int8 accuracy loss (pp)": ("<=", 1.0),
    "int8 latency speed-up (float32 ms / int8 ms)": (">", 1.0),
}


def check_targets(table: pd.DataFrame, latency: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compare a :func:`benchmark` table with :data:`TARGETS`; returns the measured value and pass/fail.

    Give ``latency`` (the benchmark's interleaved table, ``extras["latency"]``) and the speed target is met only
    when :func:`mlcourse.timing.compare` says int8 is faster (medians *and* rounds agree; its verdict is in the
    ``verdict`` column); without it, only the ratio of medians is shown and ``met`` is None (not judged).

    Lesson: 05_compression § Where int8 pays on any CPU: batch-1 layers whose weights do not fit in the cache.
    """

    t = table.set_index("variant")
    base = t.loc["float32 baseline"]
    i8, pq = t.loc["int8 (per-channel)"], t.loc["pruned + int8"]
    measured = {
        "int8 size ratio (float32 / int8, on disk)": base.bytes / i8.bytes,
        "int8 accuracy loss (pp)": 100 * (base.accuracy - i8.accuracy),
        "pruned+int8 size ratio (gzipped float32 / gzipped pruned+int8)": base.gzipped / pq.gzipped,
        "pruned+int8 accuracy loss (pp)": 100 * (base.accuracy - pq.accuracy),
        "int8 latency speed-up (float32 ms / int8 ms)": base.latency_ms / i8.latency_ms,
    }
    ops = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater}
    rows = [{"target": k, "goal": f"{op} {goal}", "measured": round(float(measured[k]), 3),
             "met": bool(ops[op](measured[k], goal)), "verdict": ""} for k, (op, goal) in TARGETS.items()]
    speed = rows[-1]
    if latency is None:
        speed.update(met=None, verdict="not judged: no interleaved latency table given")
    else:
        speed["verdict"] = timing.compare(latency, "int8 (per-channel)", "float32 baseline")
        speed["met"] = speed["verdict"].startswith("int8 (per-channel) is faster")
    return pd.DataFrame(rows)


def latency_table(blobs: dict, image, rounds: int = 9, number: int = 50, threads: int = 1) -> pd.DataFrame:
    """Single-image LiteRT latency of every ``{name: tflite bytes}``, timed interleaved on the same image.

    One interpreter per model, ``threads`` threads each (1 by default: the phone-like case, and fair on a
    shared machine); the image is quantized once per model to that model's input type. Returns
    :func:`mlcourse.timing.interleaved`'s table (``median_ms``, ``p95_ms``, ``min_ms``, ``spread``,
    ``rounds_ms``); :func:`mlcourse.timing.compare` gives a verdict from it.

    Lesson: 05_compression § The Keras 3 path: `model.quantize("int8")` and `model.export(format="litert")`.
    """

    if not blobs:
        raise ValueError("Give at least one model: {name: tflite bytes}.")
    calls = {}
    for name, blob in blobs.items():
        it = interpreter(blob, threads=threads)
        inp = it.get_input_details()[0]
        x = np.asarray(image, np.float32)[None]
        if inp["dtype"] in (np.uint8, np.int8):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        calls[name] = it.invoke
    return timing.interleaved(calls, rounds=rounds, number=number)


def baseline_model(x_train, y_train, hp=None, epochs: int = 4, seed: int = 0):
    """The trained baseline (default :data:`BASELINE_HP`), from the workshop cache when the same recipe was
    trained before (see :mod:`mlcourse.workshop`).

    Lesson: 05_compression § 1 · The model to compress, and where its parameters live.
    """

    return trained_model("compression-baseline", x_train, y_train, hp or BASELINE_HP, epochs, seed=seed)


def benchmark(x_train, y_train, x_test, y_test, hp=None, epochs: int = 4, finetune_epochs: int = 3,
              target_sparsity: float = 0.85, latency_runs: int = 200, seed: int = 0, ptq_only: bool = False,
              latency_rounds: int = 9):
    """Train one baseline (or load it from the workshop cache), compress it every way, and measure all
    variants side by side.

    Latency is timed interleaved over ``latency_rounds`` rounds of ``latency_runs // latency_rounds`` calls
    (:func:`latency_table`, one thread): ``latency_ms`` is the median, ``latency_spread`` (p95 - min) / median.
    ``ptq_only`` skips the fine-tuned variants (QAT, pruning, clustering) and their control, :data:`CONTROL`: the
    float model fine-tuned for QAT's epochs at QAT's learning rate (:func:`float_finetune`), then converted to
    int8 the same way, so a fine-tuned row is judged against the same extra training. Returns ``(table, baseline_model,
    extras)``, where ``extras`` holds the intermediate models, the ``"blobs"`` and the ``"latency"`` table.

    Lesson: 05_compression § 3 · Every variant side by side.
    """
    from tqdm.auto import tqdm

    base = baseline_model(x_train, y_train, hp, epochs=epochs, seed=seed)
    set_seed(seed)
    rep = x_train[:500]
    n = models.count_params(base)
    steps = tqdm(total=5 if ptq_only else 9, desc="compressing")
    blobs, params, extras = {}, {}, {"baseline": base}

    def add(name, blob, p=n):
        blobs[name], params[name] = blob, p
        steps.update()

    add("float32 baseline", to_tflite(base, "float32"))
    add("dynamic range", to_tflite(base, "dynamic"))
    add("float16", to_tflite(base, "float16"))
    add("int8 (per-channel)", to_tflite(base, "int8", rep))
    add("int8 (per-tensor)", to_tflite(base, "int8_per_tensor", rep))
    if not ptq_only:
        qat = quantization_aware(base, x_train, y_train, epochs=max(1, finetune_epochs // 2))
        add("quantization-aware + int8", to_tflite(qat, "int8", rep))
        pruned = prune(base, x_train, y_train, target_sparsity, "polynomial", epochs=finetune_epochs)
        extras["pruned"] = pruned
        add("pruned + int8", to_tflite(pruned, "int8", rep), int(round(n * (1 - sparsity(pruned)))))
        clustered = cluster(base, x_train, y_train, n_clusters=16, epochs=max(1, finetune_epochs // 2))
        extras["clustered"] = clustered
        add("clustered (16) + int8", to_tflite(clustered, "int8", rep))
        control = float_finetune(base, x_train, y_train, epochs=max(1, finetune_epochs // 2))
        extras["control"] = control
        add(CONTROL, to_tflite(control, "int8", rep))
    steps.close()
    lat = latency_table(blobs, x_test[0], rounds=latency_rounds, number=max(1, latency_runs // latency_rounds))
    rows = []
    for name, blob in blobs.items():
        raw, gz = sizes(blob)
        rows.append({"variant": name, "bytes": raw, "gzipped": gz, "accuracy": evaluate_tflite(blob, x_test, y_test),
                     "latency_ms": float(lat.loc[name, "median_ms"]), "latency_spread": float(lat.loc[name, "spread"]),
                     "params": params[name]})
    extras.update(blobs=blobs, latency=lat)
    return pd.DataFrame(rows), base, extras


# --------------------------------------------------------------------- where int8 pays: memory-bound layers
def wide_mlp(units: int = 2048, layers: int = 2, seed: int = 0):
    """An *untrained* Keras 3 MLP, 28x28 pixels in, ``layers`` Dense layers of ``units``, 10 classes out.

    For latency only (its weights are random, its accuracy meaningless): at batch 1 a Dense layer reads each of
    its weights once per call, so with ``units`` = 2048 the float32 weights (about 20 MB) do not fit in a laptop
    CPU's caches and every call streams them from memory; int8's weights are a quarter of that, so int8 pays
    here even on a CPU without int8 dot-product instructions (the small CNN's case is compute- and
    overhead-bound instead).

    Lesson: 05_compression § Where int8 pays on any CPU: batch-1 layers whose weights do not fit in the cache.
    """
    keras = quiet_import("keras")

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28), name="image")
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    for i in range(layers):
        x = keras.layers.Dense(units, activation="relu", name=f"wide{i}")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=f"wide_mlp_{units}")


def weight_bytes(model) -> int:
    """Bytes of every weight of a Keras model as it holds them in memory (int8 kernels count 1 byte each).

    Lesson: 05_compression § The Keras 3 path: `model.quantize("int8")` and `model.export(format="litert")`.
    """
    return int(sum(np.dtype(w.dtype).itemsize * int(np.prod(w.shape)) for w in model.weights))


# ------------------------------------------------------------------------------------------ the Keras 3 path
def keras_int8(model):
    """``model.quantize("int8")`` on a Keras 3 copy of ``model``: returns ``(quantized copy, names of the layers
    it quantized)``. Keras 3.15 quantizes Dense, EinsumDense and Embedding kernels (int8 weights, one float scale
    per output unit); convolutions and everything else stay float (it warns per layer; silenced here)."""
    src = models.convert(model, "keras3")
    q = models.build_model({k: v for k, v in models.get_hp(src).items() if k in models.DEFAULTS},
                           name=f"{src.name}_int8")
    q.set_weights(src.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Layer Conv2D does not have a `quantize` method implemented."
        q.quantize("int8")
    done = [layer.name for layer in q.layers if getattr(layer, "quantization_mode", None)]
    return models.copy_hp(src, q), done


def litert_quantizer():
    """The LiteRT quantizer's ``(quantizer, recipe)`` modules (``litert-quantizer`` 0.11, formerly
    ``ai-edge-quantizer`` 0.10), or ImportError saying how to install it: an optional extra of the course."""
    for package in ("litert_quantizer", "ai_edge_quantizer"):
        try:
            mod = __import__(package, fromlist=["quantizer", "recipe"])
            return mod.quantizer, mod.recipe
        except ImportError:
            continue
    raise ImportError("the LiteRT quantizer is not installed: pip install litert-quantizer==0.11.0 (it installs "
                      "beside the course's pins) to run this optional path.")


def litert_int8(float_tflite: bytes, images) -> bytes:
    """Full-int8 (int8 weights and activations, static ranges) of a float32 ``.tflite`` with the LiteRT
    quantizer's ``recipe.static_wi8_ai8()``, calibrated on ``images`` (one per step, as the model takes them).
    The converter's ``representative_dataset`` path does the same job inside ``TFLiteConverter``
    (:func:`to_tflite` with ``"int8"``). Raises ImportError when the quantizer is absent (:func:`litert_quantizer`)."""
    from ai_edge_litert.interpreter import Interpreter

    quantizer, recipe = litert_quantizer()
    rep = np.asarray(images, np.float32)
    sig = Interpreter(model_content=float_tflite).get_signature_list()
    key = next(iter(sig))
    name = sig[key]["inputs"][0]
    qt = quantizer.Quantizer(float_tflite, recipe.static_wi8_ai8())
    with warnings.catch_warnings(), silenced():
        warnings.simplefilter("ignore")  # "experimental_preserve_all_tensors ... debugging purposes only"
        calibration = qt.calibrate({key: [{name: rep[i:i + 1]} for i in range(len(rep))]})
        result = qt.quantize(calibration)
    return bytes(result.quantized_model)


# ------------------------------------------------------------------------------------- adaptive sparsity
def prunable_layers(model) -> dict:
    """``{layer name: number of kernel weights}`` of every Dense and Conv2D layer (what magnitude pruning prunes).

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    return {layer.name: int(np.prod(layer.kernel.shape)) for layer in model.layers
            if type(layer).__name__ in ("Dense", "Conv2D") and hasattr(layer, "kernel")}


def _zero_smallest(kernel: np.ndarray, share: float) -> np.ndarray:
    k = kernel.copy()
    n = int(round(share * k.size))
    if n > 0:
        k.flat[np.argsort(np.abs(k), axis=None)[:n]] = 0
    return k


def magnitude_prune(model, per_layer: dict):
    """A Keras 3 copy of ``model`` in which each layer named in ``per_layer`` ({name: sparsity}) has the given
    share of its kernel, the smallest |w|, set to zero: one-shot pruning, no fine-tuning (what a scan measures).

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    src = models.convert(model, "keras3")
    out = models.build_model({k: v for k, v in models.get_hp(src).items() if k in models.DEFAULTS},
                             name=f"{src.name}_pruned")
    out.set_weights(src.get_weights())
    unknown = set(per_layer) - set(prunable_layers(out))
    if unknown:
        raise ValueError(f"no prunable layer named {sorted(unknown)}; prunable: {list(prunable_layers(out))}.")
    for name, share in per_layer.items():
        if not 0 <= share < 1:
            raise ValueError(f"sparsity of {name} must be in [0, 1), got {share}.")
        layer = out.get_layer(name)
        w = layer.get_weights()
        layer.set_weights([_zero_smallest(w[0], share), *w[1:]])
    return models.copy_hp(src, out)


def keras_accuracy(model, x, y) -> float:
    """Test accuracy of a Keras classifier (either flavor) on ``(x, y)``, from ``predict`` (no compile needed).

    Lesson: 05_compression § The Keras 3 path: `model.quantize("int8")` and `model.export(format="litert")`.
    """
    return float((model.predict(x, batch_size=512, verbose=0).argmax(1) == np.asarray(y)).mean())


def sensitivity_scan(model, x_val, y_val, sparsities=(0.5, 0.8, 0.9, 0.95, 0.98)) -> pd.DataFrame:
    """Accuracy on the *validation* data ``(x_val, y_val)`` when **one** prunable layer at a time is pruned to
    each sparsity (one-shot magnitude pruning, the other layers untouched; ``model`` itself is left as it was).

    Returns one row per (layer, sparsity), plus each layer's sparsity-0 row (the unpruned accuracy): columns
    ``layer``, ``weights`` (its kernel size), ``sparsity``, ``accuracy``. :func:`allocate_sparsity` reads it.

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    from tqdm.auto import tqdm

    work = magnitude_prune(model, {})
    base = keras_accuracy(work, x_val, y_val)
    layers = prunable_layers(work)
    rows = [{"layer": n, "weights": w, "sparsity": 0.0, "accuracy": base} for n, w in layers.items()]
    with tqdm(total=len(layers) * len(sparsities), desc="sensitivity scan") as bar:
        for name, n in layers.items():
            layer = work.get_layer(name)
            original = layer.get_weights()
            for s in sparsities:
                layer.set_weights([_zero_smallest(original[0], s), *original[1:]])
                rows.append({"layer": name, "weights": n, "sparsity": float(s),
                             "accuracy": keras_accuracy(work, x_val, y_val)})
                bar.update()
            layer.set_weights(original)
    return pd.DataFrame(rows)


def nonzero_weights(weights: dict, per_layer: dict) -> int:
    """Kernel weights left after pruning each layer of ``weights`` ({name: size}) to ``per_layer`` ({name: sparsity},
    0 for a layer not named).

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    return int(sum(round(n * (1 - per_layer.get(name, 0.0))) for name, n in weights.items()))


def allocate_sparsity(scan: pd.DataFrame, target_nonzero: int) -> dict:
    """Each layer's sparsity, chosen from a :func:`sensitivity_scan`, so that the kernels keep at most
    ``target_nonzero`` non-zero weights in total while losing as little accuracy as the scan predicts.

    Greedy, from no pruning: while the model is above the target, move the one layer whose next scanned sparsity
    costs the least predicted accuracy per weight removed (ties: the step that removes most weights) up to that
    sparsity; stop as soon as the target is met, so nothing is pruned that the target does not ask for. A layer's
    predicted loss at a sparsity is the worst loss the scan saw at or below it (the scan's noise does not make a
    higher sparsity look free). Robust, big layers end up sparse, sensitive ones (the first convolution, the output
    layer) dense. ValueError when even the highest scanned sparsities cannot reach the target.

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    weights = scan.groupby("layer", sort=False).weights.first().to_dict()
    base = scan[scan.sparsity == 0].groupby("layer").accuracy.first()
    loss = {name: (base[name] - g.groupby("sparsity").accuracy.mean().sort_index()).cummax()
            for name, g in scan.groupby("layer", sort=False)}
    choice = {name: 0.0 for name in weights}
    while nonzero_weights(weights, choice) > target_nonzero:
        steps = []
        for name, curve in loss.items():
            higher = curve[curve.index > choice[name]]
            if len(higher):
                nxt = float(higher.index[0])
                removed = weights[name] * (nxt - choice[name])
                steps.append(((higher.iloc[0] - curve[choice[name]]) / removed, -removed, name, nxt))
        if not steps:
            raise ValueError(f"target_nonzero={target_nonzero:,} is below what the scan's highest sparsities reach "
                             f"({nonzero_weights(weights, choice):,} non-zero weights): scan higher sparsities.")
        _, _, name, nxt = min(steps)
        choice[name] = nxt
    return choice


def uniform_sparsity(weights: dict, nonzero: int) -> dict:
    """The same sparsity for every layer, keeping ``nonzero`` kernel weights in total: the control of
    :func:`allocate_sparsity`.

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    share = 1 - nonzero / sum(weights.values())
    return {name: share for name in weights}


def prune_per_layer(model, x, y, per_layer: dict, epochs: int = 1, batch_size: int = 128,
                    learning_rate: float = 5e-4, seed: int = 0):
    """tfmot magnitude pruning (legacy track: tf_keras) with each layer's own ``ConstantSparsity`` target from
    ``per_layer`` ({name: sparsity}; layers not named, or at 0, are left unwrapped), fine-tuned for ``epochs``
    with ``UpdatePruningStep``, stripped. Returns the tf_keras model.

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """
    import tensorflow_model_optimization as tfmot
    tf_keras = quiet_import("tf_keras")

    set_seed(seed)
    steps = int(np.ceil(len(x) / batch_size)) * epochs
    sk = tfmot.sparsity.keras

    def wrap(layer):
        share = per_layer.get(layer.name, 0.0)
        if share <= 0 or not isinstance(layer, (tf_keras.layers.Dense, tf_keras.layers.Conv2D)):
            return layer
        return sk.prune_low_magnitude(layer, pruning_schedule=sk.ConstantSparsity(
            share, begin_step=0, frequency=max(1, steps // 10)))

    wrapped = tf_keras.models.clone_model(_tfk_twin(model), clone_function=wrap)
    hp = dict(models.get_hp(model), learning_rate=learning_rate)
    models.compile_model(models.copy_hp(model, wrapped), hp)
    fit(wrapped, x, y, epochs=epochs, batch_size=batch_size, callbacks=[sk.UpdatePruningStep()])
    stripped = sk.strip_pruning(wrapped)
    models.compile_model(models.copy_hp(model, stripped), hp)
    return stripped


# ------------------------------------------------------------------------------- structured pruning
def prune_filters(model, keep: float):
    """Structured pruning: keep the ``keep`` share of each conv layer's filters with the largest L1 norm.

    Unlike magnitude pruning (zeros inside the same tensors), the result is a *smaller dense network*: the
    conv layers have fewer output channels, the next layer fewer inputs, so every runtime does less work.
    ``model`` must come from :func:`mlcourse.models.build_model` with standard (not separable) convolutions.
    Returns a new Keras 3 model, weights copied (fine-tune it: :func:`structured_prune` does).

    Lesson: 05_compression § Structured pruning: fewer filters, less compute.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1] (the share of filters kept), got {keep}.")
    src = models.convert(model, "keras3")
    hp = models.get_hp(src)
    if hp["arch"] != "cnn" or "separable" in (hp["conv"] if isinstance(hp["conv"], list) else [hp["conv"]]):
        raise ValueError("prune_filters needs a CNN with standard convolutions (hp arch='cnn', conv='standard').")
    kept, new_filters = [], []
    for i, f in enumerate(hp["filters"]):
        kernel = src.get_layer(f"conv{i}").get_weights()[0]
        n_keep = max(1, int(round(keep * f)))
        norms = np.abs(kernel).sum(axis=(0, 1, 2))
        kept.append(np.sort(np.argsort(norms)[::-1][:n_keep]))
        new_filters.append(n_keep)
    small_hp = {k: v for k, v in hp.items() if k in models.DEFAULTS}
    small_hp["filters"] = new_filters
    small = models.build_model(small_hp, name=f"{src.name}_filters{int(round(100 * keep))}")
    prev = None
    for i, idx in enumerate(kept):
        k, b = src.get_layer(f"conv{i}").get_weights()
        if prev is not None:
            k = k[:, :, prev, :]
        small.get_layer(f"conv{i}").set_weights([k[..., idx], b[idx]])
        if hp["batch_norm"]:
            small.get_layer(f"bn{i}").set_weights([w[idx] for w in src.get_layer(f"bn{i}").get_weights()])
        prev = idx
    flat_in = src.get_layer("flatten").output.shape[1:]
    first_dense = "dense0" if hp["dense_units"] else "probs"
    h_w = int(np.prod(src.get_layer(f"pool{len(kept) - 1}").output.shape[1:3]))
    k, b = src.get_layer(first_dense).get_weights()
    k = k.reshape(h_w, int(flat_in[0]) // h_w, -1)[:, prev, :].reshape(-1, k.shape[-1])
    small.get_layer(first_dense).set_weights([k, b])
    for layer in small.layers:
        if layer.weights and not layer.name.startswith(("conv", "bn")) and layer.name != first_dense:
            layer.set_weights(src.get_layer(layer.name).get_weights())
    return small


def structured_prune(model, x, y, keep: float = 0.5, epochs: int = 1, seed: int = 0, learning_rate: float = 1e-3):
    """:func:`prune_filters`, then fine-tuned for ``epochs`` on ``(x, y)``; from the workshop cache when the
    same base model, data and recipe were pruned before.

    Lesson: 05_compression § Structured pruning: fewer filters, less compute.
    """

    def train():
        set_seed(seed)
        small = prune_filters(model, keep)
        models.compile_model(small, dict(models.get_hp(small), learning_rate=learning_rate))
        fit(small, x, y, epochs=epochs)
        return small

    return cached_model("compression-filters", train, x, y, base=fingerprint(*model.get_weights()), keep=keep,
                        epochs=epochs, seed=seed, learning_rate=learning_rate)


# ------------------------------------------------------------------------------------ QAT's hard case
def with_outlier_unit(model, layer: str = "conv1", unit: int = 0, factor: float = 100.0):
    """A copy of ``model`` computing the same function, with one very wide activation channel.

    Channel ``unit`` of layer ``layer`` (a ReLU Conv2D or Dense followed by another layer of the same kind)
    gets its weights and bias multiplied by ``factor`` and its outgoing weights in the next layer divided
    by it: ReLU and max-pooling are positively homogeneous, so the float outputs do not change, but the
    layer's activation range grows ``factor``-fold. Full-int8 quantizes each activation tensor with *one*
    scale, so the other channels then share a few int8 levels: the case where post-training quantization
    loses accuracy (real networks grow such outlier channels by themselves).

    Lesson: 05_compression § 5 · Quantization-aware training: fake quantization, and when it pays.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}.")
    src = models.convert(model, "keras3")
    out = models.build_model({k: v for k, v in models.get_hp(src).items() if k in models.DEFAULTS},
                             name=f"{src.name}_outlier")
    out.set_weights(src.get_weights())
    if models.get_hp(src).get("batch_norm"):
        raise ValueError("with_outlier_unit needs a model without batch_norm (the next layer must follow directly).")
    weighted = [lay for lay in out.layers if type(lay).__name__ in ("Dense", "Conv2D")]
    names = [lay.name for lay in weighted]
    ok = [n for i, n in enumerate(names[:-1]) if type(weighted[i]).__name__ == type(weighted[i + 1]).__name__]
    if layer not in ok:
        raise ValueError(f"layer must be a Conv2D or Dense layer followed by one of its kind: one of {ok}, "
                         f"got {layer!r}.")
    here, nxt = weighted[names.index(layer)], weighted[names.index(layer) + 1]
    k, b = here.get_weights()
    if not 0 <= unit < k.shape[-1]:
        raise ValueError(f"unit must be in [0, {k.shape[-1]}), got {unit}.")
    k[..., unit] *= factor
    b[unit] *= factor
    here.set_weights([k, b])
    k2, b2 = nxt.get_weights()
    k2[..., unit, :] /= factor  # the input-channel axis is the second to last for Conv2D and Dense alike
    nxt.set_weights([k2, b2])
    return out


def float_mlp(x, y, hidden_units=(512, 256), epochs: int = 1, seed: int = 0):
    """A float MLP (the binary-weight MLP's reference and QAT's hard case), from the workshop cache.

    Lesson: 05_compression § 10 · Binary-weight networks.
    """

    hp = {"arch": "mlp", "hidden_units": list(hidden_units), "dropout": 0.0}
    return trained_model("compression-mlp", x, y, hp, epochs, seed=seed)


#: 05's parameter defaults, one table (``settings.pick_sizes`` reads it in the notebook's parameters cell, and
#: :func:`warm_cache` for ``make workshop``). smoke: seconds, for the tests; lesson: the whole notebook in about
#: 5-10 minutes on 2 cores, verdicts as in the full run; full: the reference run.
SIZES = {
    "smoke": {"N_TRAIN": 2_000, "N_TEST": 500, "N_VAL": 500, "EPOCHS": 1, "FINETUNE_EPOCHS": 1,
              "LATENCY_ROUNDS": 5, "LATENCY_RUNS": 50, "KEEP": 0.5, "OUTLIER_FACTOR": 300.0,
              "SWEEP_SPARSITIES": (0.9,), "SWEEP_SCHEDULES": ("polynomial",), "RANKS": (4, 16, 64),
              "WIDE_UNITS": 1024, "SCAN_SPARSITIES": (0.5, 0.9, 0.98), "ADAPTIVE_TARGETS": (0.5, 0.95),
              "ADAPTIVE_SEEDS": 1, "ADAPTIVE_FINETUNE_N": 500},
    "lesson": {"N_TRAIN": 6_000, "N_TEST": 2_000, "N_VAL": 1_000, "EPOCHS": 2, "FINETUNE_EPOCHS": 2,
               "LATENCY_ROUNDS": 7, "LATENCY_RUNS": 140, "KEEP": 0.5, "OUTLIER_FACTOR": 300.0,
               "SWEEP_SPARSITIES": (0.75, 0.95), "SWEEP_SCHEDULES": ("constant", "polynomial"),
               "RANKS": (2, 8, 32, 128), "WIDE_UNITS": 2048,
               "SCAN_SPARSITIES": (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99), "ADAPTIVE_TARGETS": (0.5, 0.95),
               "ADAPTIVE_SEEDS": 2, "ADAPTIVE_FINETUNE_N": 2_000},
    "full": {"N_TRAIN": 55_000, "N_TEST": 10_000, "N_VAL": 5_000, "EPOCHS": 4, "FINETUNE_EPOCHS": 4,
             "LATENCY_ROUNDS": 15, "LATENCY_RUNS": 600, "KEEP": 0.5, "OUTLIER_FACTOR": 300.0,
             "SWEEP_SPARSITIES": (0.5, 0.75, 0.85, 0.9, 0.95), "SWEEP_SCHEDULES": ("constant", "polynomial"),
             "RANKS": (2, 4, 8, 16, 32, 64, 128), "WIDE_UNITS": 4096,
             "SCAN_SPARSITIES": (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99), "ADAPTIVE_TARGETS": (0.5, 0.95),
             "ADAPTIVE_SEEDS": 3, "ADAPTIVE_FINETUNE_N": 20_000},
}

#: A second, conv-heavy model (no dense hidden layer): most of its parameters and compute are convolutions.
CONV_HP = {"arch": "cnn", "filters": [32, 64, 128], "dense_units": 0, "dropout": 0.0}


def split(ds, n_train: int, n_val: int, n_test: int, seed: int = 0):
    """05's data: ``(x_train, y_train, x_val, y_val, x_test, y_test)``. ``n_train + n_val`` training images drawn
    stratified, the first ``n_train`` to train on and the rest held out (the sensitivity scan's validation data,
    never seen in training), and ``n_test`` test images. The notebook and :func:`warm_cache` both use it, so a
    prepared room's cached models were trained on exactly the notebook's images.

    Lesson: 05_compression § 05 · Compression: quantization, pruning, clustering, low rank, compact and binary
    networks.
    """

    x_pool, y_pool = data.stratified_subset(ds.x_train, ds.y_train, n_train + n_val, seed=seed)
    x_test, y_test = data.stratified_subset(ds.x_test, ds.y_test, n_test, seed=seed)
    return x_pool[:n_train], y_pool[:n_train], x_pool[n_train:], y_pool[n_train:], x_test, y_test


def warm_cache(ds, size: str, seed: int = 0) -> None:
    """Train and cache 05_compression's slow models at the notebook's sizes for ``size`` (``"smoke"``,
    ``"lesson"`` or ``"full"``; ``make workshop``): the baseline (and the model weeks 02/03 chose, if any), its
    separable twin, the conv-heavy model, its filter-pruned version and the float MLP."""

    if isinstance(size, bool):
        raise TypeError("warm_cache takes a size ('smoke', 'lesson' or 'full'), not True/False.")
    d = settings.pick_sizes(SIZES, size)
    x, y = split(ds, d["N_TRAIN"], d["N_VAL"], d["N_TEST"], seed=seed)[:2]
    chosen, _ = results.chosen_hp(session.work_dir(size), BASELINE_HP, "BASELINE_HP")
    for hp in ([BASELINE_HP] if chosen == BASELINE_HP else [BASELINE_HP, chosen]):
        baseline_model(x, y, hp, epochs=d["EPOCHS"], seed=seed)
    baseline_model(x, y, dict(BASELINE_HP, conv="separable"), epochs=d["EPOCHS"], seed=seed)
    conv = baseline_model(x, y, CONV_HP, epochs=d["EPOCHS"], seed=seed)
    structured_prune(conv, x, y, keep=d["KEEP"], epochs=d["FINETUNE_EPOCHS"], seed=seed)
    float_mlp(x, y, epochs=d["EPOCHS"], seed=seed)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m mlcourse.compression", description="Compression benchmark")
    p.add_argument("--size", choices=settings.SIZES, default=None,
                   help="smoke | lesson | full (default: MLCOURSE_SIZE, else lesson)")
    p.add_argument("--smoke", action="store_true", help="the same as --size smoke")
    args = p.parse_args(argv)
    quiet_tensorflow()
    ds = data.load_fashion_mnist()
    d = settings.pick_sizes(SIZES, settings.size("smoke" if args.smoke else args.size))
    xtr, ytr = data.stratified_subset(ds.x_train, ds.y_train, d["N_TRAIN"])
    xte, yte = data.stratified_subset(ds.x_test, ds.y_test, d["N_TEST"])
    table, _, extras = benchmark(xtr, ytr, xte, yte, epochs=d["EPOCHS"], finetune_epochs=d["FINETUNE_EPOCHS"],
                            latency_runs=d["LATENCY_RUNS"], latency_rounds=d["LATENCY_ROUNDS"])
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    print()
    print(check_targets(table, extras["latency"]).to_string(index=False))
    return 0

# ------------------------------------------------------------------------------------------------ headlines
#: The public figures 05's headlines are judged against.
#: The report's figure of this week: every variant's gzipped size against its test accuracy.
FIGURES = (Figure("compression table", "compression.png", "Compression: size against accuracy", "Compression",
                  "scatter", x="gzipped", y="accuracy", label="variant", x_scale=1 / 1024, y_scale=100, log_x=True,
                  xlabel="gzipped size (KiB, log)", ylabel="test accuracy (%)"),)

REFERENCES = {
    "post-training quantization": PTQ_REFERENCE,
    "pruning + quantization": Reference("78,104 B -> 8,268 B gzipped, about 9.5x (public run of the pruning + "
                                        "quantization lab)", 78_104 / 8_268, "x smaller"),
    "depthwise-separable convolutions": Reference("8-9x less computation (MobileNet)", 8.0, "x"),
}


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``05_compression`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    table = h.rows("compression table")
    base = row(table, variant="float32")
    if base:
        int8 = row(table, variant="int8 (per-channel)")
        if int8:
            h.add("int8 post-training quantization: size, accuracy change",
                  f"{base['bytes']:,} B -> {int8['bytes']:,} B ({base['bytes'] / int8['bytes']:.2f}x), "
                  f"{100 * (int8['accuracy'] - base['accuracy']):+.2f} pp",
                  REFERENCES["post-training quantization"], base["bytes"] / int8["bytes"])
        pruned = next((r for r in table if "pruned" in r["variant"] and "int8" in r["variant"]), None)
        if pruned:
            h.add("pruned + int8, gzipped",
                  f"{base['gzipped']:,} B -> {pruned['gzipped']:,} B ({base['gzipped'] / pruned['gzipped']:.1f}x), "
                  f"{100 * (pruned['accuracy'] - base['accuracy']):+.2f} pp",
                  REFERENCES["pruning + quantization"], base["gzipped"] / pruned["gzipped"])
    macs = h.value("conv MACs ratio standard/separable", (int, float))
    if macs is not None:
        h.add("separable vs standard convolutions, conv MACs", f"{macs:.1f}x fewer",
              REFERENCES["depthwise-separable convolutions"], macs)
    qat = h.value("QAT on a wide-range model", dict)
    if qat and qat.get("QAT (1 epoch) + int8") is not None:
        control = next((v for k, v in qat.items() if k.startswith("control")), None)
        h.add("QAT on a model with a wide activation range, test accuracy",
              f"float {qat.get('float model (outlier)', float('nan')):.4f}, post-training int8 "
              f"{qat.get('post-training int8', float('nan')):.4f}, QAT + int8 {qat['QAT (1 epoch) + int8']:.4f}"
              + (f", control (float fine-tune + int8) {control:.4f}" if control is not None else ""))
    pr = h.rows("structured vs unstructured pruning")
    dense, mag, filt = row(pr, variant="dense"), row(pr, variant="magnitude"), row(pr, variant="filter")
    if dense and mag and filt:
        h.add("structured (filter) vs unstructured (magnitude) pruning, int8 latency",
              f"dense {dense['latency_ms']:.3f} ms, magnitude-pruned {mag['latency_ms']:.3f} ms, filter-pruned "
              f"{filt['latency_ms']:.3f} ms ({dense['MACs'] / filt['MACs']:.1f}x fewer MACs; accuracy "
              f"{filt['accuracy (int8)']:.4f} vs {dense['accuracy (int8)']:.4f})")
    h.add_rows("Keras 3 model.quantize('int8'): weights in memory, test accuracy", "Keras 3 model.quantize int8",
               lambda r: f"{r['index']} {r['weights in memory (bytes)']:,.0f} bytes, accuracy {r['test accuracy']:.4f}")
    h.add_rows("int8 paths: the converter's and the LiteRT quantizer's, same model",
               "int8 paths: converter vs LiteRT quantizer",
               lambda r: f"{r['path']} {r['bytes'] / 1e3:,.0f} kB, accuracy {r['accuracy']:.4f}, "
               f"{r['latency_ms']:.3f} ms")
    h.add_dict("int8 where it pays: a memory-bound wide MLP at batch 1 (LiteRT)", "int8 latency, memory-bound wide MLP",
               lambda r: f"{r['Dense units']:.0f} units: float32 {r['float32 MB']:.1f} MB in {r['float32 ms']:.3f} ms, "
               f"int8 {r['int8 MB']:.1f} MB in {r['int8 ms']:.3f} ms")
    h.add_rows("adaptive (per-layer, from a sensitivity scan) vs uniform sparsity, fine-tuned",
               "adaptive vs uniform sparsity", lambda r: f"{r['target (share removed)']:.0%} removed, "
               f"{r['allocation']}: {r['fine-tuned test accuracy (mean over seeds)']:.4f}")
    return h.out


if __name__ == "__main__":
    raise SystemExit(main())
