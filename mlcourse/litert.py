"""LiteRT (the TFLite runtime, ``ai_edge_litert``): convert a Keras model to a ``.tflite`` flatbuffer, run it,
and measure it. The one place the course does this; the compression (05), distillation (07), deployment (08) and
runtimes (09) weeks, the tuning week's latency table (02) and the checkers call it.

* :func:`to_tflite`: ``tf.lite.TFLiteConverter`` in the course's five modes (:data:`MODES`: float32,
  dynamic-range, float16, full-integer int8 per channel or per tensor), refusing what cannot convert well
  (pruning or clustering wrappers left in, too few or malformed calibration images);
* :func:`interpreter` / :func:`run_interpreter`: a LiteRT ``Interpreter`` created once and run in batches, with
  int8/uint8 inputs quantized and outputs dequantized for you; :func:`tflite_predict` does both in one call;
* :func:`evaluate_tflite` (accuracy), :func:`tflite_latency_ms` (median single-image latency, one thread),
  :func:`sizes` (bytes on disk and gzipped: pruning's zeros only show compressed).

Taught in ``solutions/05_compression.ipynb`` (section 2, the converter and LiteRT written out in plain sight);
this module is the tested version those cells hand on to the later weeks. Ground floor: it knows no week.
"""
from __future__ import annotations

import gzip
import os
import time
import warnings

import numpy as np

from mlcourse.headlines import Reference
from mlcourse.session import quiet_import, silenced

__all__ = ["PTQ_REFERENCE", "MODES", "MIN_CALIBRATION", "to_tflite", "interpreter", "run_interpreter", "tflite_predict",
           "evaluate_tflite", "tflite_latency_ms", "sizes"]

#: The public figure of post-training quantization that weeks 05 and 08 set their int8 files beside (size ratio).
PTQ_REFERENCE = Reference("84,452 B -> 23,840 B (3.5x), accuracy 0.9624 -> 0.9626 (TF dynamic-range PTQ tutorial, "
                          "MNIST)", 84_452 / 23_840, "x smaller")

#: The conversion modes of :func:`to_tflite`.
MODES = ("float32", "dynamic", "float16", "int8", "int8_per_tensor")
MIN_CALIBRATION = 100


# -------------------------------------------------------------------------------------------- conversion
def _has_wrappers(model) -> str | None:
    for layer in getattr(model, "layers", []):
        name = type(layer).__name__
        if name in ("PruneLowMagnitude", "ClusterWeights", "ClusterWeightsRNN", "ClusterWeightsMHA"):
            return name
    return None


def to_tflite(model, mode: str = "float32", representative=None, io_type: str = "uint8") -> bytes:
    """Convert a Keras model (either flavor) to a TFLite/LiteRT flatbuffer.

    ``mode``: ``float32`` (no optimisation), ``dynamic`` (int8 weights, float activations), ``float16``
    (float16 weights), ``int8`` (everything int8, uint8 input/output, per-channel weights; needs
    ``representative`` images to calibrate activation ranges), ``int8_per_tensor`` (the same with one
    scale per tensor instead of per output channel). ``io_type`` (int8 modes only): the input/output type,
    ``"uint8"`` (raw camera pixels in, scale 1 zero point 0) or ``"int8"`` (what integer-only accelerators
    such as the Edge TPU expect).

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in
    05_compression, 07_distillation_ensembles, 08_deployment, 09_runtimes.
    """
    tf = quiet_import("tensorflow")
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}: use one of {MODES}.")
    wrapper = _has_wrappers(model)
    if wrapper:
        raise ValueError(f"The model still has {wrapper} wrappers: call "
                         f"tfmot.{'sparsity' if 'Prune' in wrapper else 'clustering'}.keras.strip_"
                         f"{'pruning' if 'Prune' in wrapper else 'clustering'}(model) first (mlcourse.compression."
                         "prune and cluster return stripped models), or the file keeps the masks and is larger.")
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode.startswith("int8"):
        if representative is None:
            raise ValueError(f"mode={mode!r} needs representative=images (a few hundred training images) "
                             "to calibrate the activation ranges.")
        rep = _calibration_images(model, representative)
        if len(rep) < MIN_CALIBRATION:
            warnings.warn(f"Calibrating int8 on {len(rep)} samples: ranges from so few are often too narrow "
                          f"and cost accuracy. Use at least {MIN_CALIBRATION}.", stacklevel=2)
        conv.representative_dataset = lambda: ([rep[i:i + 1]] for i in range(len(rep)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type not in ("uint8", "int8"):
            raise ValueError(f"io_type must be 'uint8' or 'int8', got {io_type!r}.")
        conv.inference_input_type = conv.inference_output_type = getattr(tf, io_type)
        if mode == "int8_per_tensor":
            conv._experimental_disable_per_channel = True  # the converter's (private) switch
    with warnings.catch_warnings(), silenced():
        warnings.simplefilter("ignore")
        return conv.convert()


def _calibration_images(model, representative) -> np.ndarray:
    """The representative images as float32, refused (ValueError naming the fix) when they cannot calibrate:
    empty, not finite, or not shaped like the model's input (one image per row, no batch axis of its own)."""
    try:
        rep = np.asarray(representative, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"representative must be an array of images (numbers), got {type(representative).__name__}:"
                         f" {err}") from None
    if rep.ndim == 0 or len(rep) == 0:
        raise ValueError("representative is empty: give a few hundred training images, e.g. x_train[:500], "
                         "to calibrate the int8 activation ranges.")
    if not np.isfinite(rep).all():
        bad = int((~np.isfinite(rep)).sum())
        raise ValueError(f"representative holds {bad} non-finite values (NaN or inf): int8 ranges calibrated on "
                         "them are meaningless. Pass the raw training images (e.g. x_train[:500]), not a "
                         "transformed copy that divided by zero.")
    want = tuple(getattr(model, "input_shape", (None,) + rep.shape[1:])[1:])
    if len(want) != rep.ndim - 1 or any(w is not None and w != g for w, g in zip(want, rep.shape[1:])):
        raise ValueError(f"representative has shape {rep.shape}, but the model takes images of shape {want}: pass "
                         f"an array of shape (n, {', '.join(str(w) for w in want)}), e.g. x_train[:500] "
                         "(no extra batch or channel axis).")
    return rep


def interpreter(tflite: bytes, threads: int = 1):
    """A LiteRT interpreter for the model bytes, tensors allocated (create it once; run it with
    :func:`run_interpreter`).

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in
    05_compression, 07_distillation_ensembles, 08_deployment, 09_runtimes.
    """
    from ai_edge_litert.interpreter import Interpreter

    with silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr, natively, on first use
        it = Interpreter(model_content=tflite, num_threads=threads)
        it.allocate_tensors()
    return it


def tflite_predict(tflite: bytes, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (float) from a TFLite model, quantizing inputs / dequantizing outputs as needed.

    Lesson: 05_compression § The Keras 3 path: `model.quantize("int8")` and `model.export(format="litert")`.
    """
    return run_interpreter(interpreter(tflite, threads=os.cpu_count() or 1), x, batch_size)


def run_interpreter(it, x, batch_size: int = 256) -> np.ndarray:
    """Run a LiteRT interpreter on ``x`` in batches (see :func:`tflite_predict`); reusable across calls.

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in
    07_distillation_ensembles, 09_runtimes.
    """
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError("got an empty batch (0 images) to predict: pass at least one image, e.g. x_test[:1].")
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    preds = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].astype(np.float32)
        scale, zero = inp["quantization"]
        if inp["dtype"] in (np.uint8, np.int8):
            info = np.iinfo(inp["dtype"])
            xb = np.clip(np.round(xb / scale + zero), info.min, info.max).astype(inp["dtype"])
        if list(it.get_input_details()[0]["shape"]) != list(xb.shape):
            it.resize_tensor_input(inp["index"], list(xb.shape))
            it.allocate_tensors()
        it.set_tensor(inp["index"], xb)
        it.invoke()
        yb = it.get_tensor(out["index"])
        oscale, ozero = out["quantization"]
        if out["dtype"] in (np.uint8, np.int8):
            yb = (yb.astype(np.float32) - ozero) * oscale
        preds.append(yb)
    return np.concatenate(preds)


def evaluate_tflite(tflite: bytes, x, y) -> float:
    """Accuracy of a TFLite classifier on ``(x, y)``.

    Lesson: 05_compression § The Keras 3 path: `model.quantize("int8")` and `model.export(format="litert")`; also
    used in 07_distillation_ensembles, 08_deployment, 10_capstone.
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"evaluate_tflite got {len(x)} images but {len(y)} labels: pass matching x and y "
                         "(e.g. x_test, y_test, both subset the same way).")
    return float((tflite_predict(tflite, x).argmax(1) == y).mean())


def tflite_latency_ms(tflite: bytes, image, runs: int = 200, warmup: int = 20) -> float:
    """Median single-image latency in milliseconds, one thread, after ``warmup`` runs."""
    it = interpreter(tflite, threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = np.asarray(image)[None].astype(inp["dtype"] if inp["dtype"] != np.float32 else np.float32)
    it.set_tensor(inp["index"], x)
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        it.invoke()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def sizes(blob: bytes) -> tuple[int, int]:
    """``(bytes, gzipped bytes)``: pruning's zeros only show after compression, so always report both.

    Lesson: 05_compression § ✏️ Exercise 5.3: write the pruning loop; also used in 07_distillation_ensembles.
    """
    return len(blob), len(gzip.compress(blob, compresslevel=9))
