"""Checkers of the exercises of notebook 04 compression (``solutions/04_compression.ipynb``).

Each runs in seconds on a fixed tiny model and says, when it fails, what is wrong and what to do.
"""
from __future__ import annotations

import functools

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_int8_converter", "check_int8_quantize", "check_pruning_loop", "check_low_rank"]

_TINY_HP = {"arch": "cnn", "filters": [4], "dense_units": 0, "dropout": 0.0}


@functools.lru_cache(maxsize=1)
def _tiny_data():
    from mlcourse import data

    d = data.load_fashion_mnist(source="embedded")
    return d.x_train[:600], d.y_train[:600], d.x_test[:300], d.y_test[:300]


@functools.lru_cache(maxsize=2)
def _tiny_model(flavor: str = "keras3"):
    """A fixed tiny CNN (4 filters), trained 2 epochs on 600 embedded images: the same for every learner."""
    from mlcourse import models
    from mlcourse.runtime import set_seed

    x, y, _, _ = _tiny_data()
    set_seed(0)
    m = models.build_model(_TINY_HP, flavor=flavor)
    m.fit(x, y, epochs=2, batch_size=64, verbose=0)
    return m


def check_int8_converter(fn) -> None:
    """Exercise 4.1: ``fn(model, representative_images) -> bytes``, a full-integer int8 LiteRT model with
    int8 input and output, every operator int8, as accurate as the float model (within 2 points)."""
    from mlcourse.compression import evaluate_tflite, interpreter

    x, _, xt, yt = _tiny_data()
    model = _tiny_model()
    blob = fn(model, x[:200])
    assert isinstance(blob, (bytes, bytearray)) and len(blob) > 0, (
        f"Return converter.convert() (the model's bytes), got {type(blob).__name__}.")
    it = interpreter(bytes(blob))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8, (
        f"The input is {np.dtype(inp['dtype']).name}: set converter.inference_input_type = tf.int8.")
    assert out["dtype"] == np.int8, (
        f"The output is {np.dtype(out['dtype']).name}: set converter.inference_output_type = tf.int8.")
    floats = sorted({d["name"] for d in it.get_tensor_details()
                     if d["dtype"] == np.float32 and d["name"] not in ("", None)})
    assert not floats, (
        f"Some tensors are still float32 ({floats[:3]}...): set converter.optimizations = "
        "[tf.lite.Optimize.DEFAULT], give a representative_dataset, and restrict "
        "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8].")
    scale, zero = inp["quantization"]
    assert scale > 0, "The input has no quantization parameters: did you give a representative_dataset?"
    float_acc = float((model.predict(xt, verbose=0).argmax(1) == yt).mean())
    int8_acc = evaluate_tflite(bytes(blob), xt, yt)
    assert int8_acc >= float_acc - 0.02, (
        f"int8 accuracy {int8_acc:.3f} vs float {float_acc:.3f}: more than 2 points lost. Calibrate on the "
        "representative images you were given, one image per yield, as float32 with a batch axis: "
        "yield [images[i:i+1].astype(np.float32)].")
    _passed("4.1", "int8 in and out, every tensor int8, accuracy within 2 points of float.")


def check_int8_quantize(fn) -> None:
    """Exercise 4.2: ``fn(w) -> (q, scale)``: symmetric per-tensor int8, ``w ≈ q * scale``."""
    rng = np.random.default_rng(1)
    for w in (rng.normal(size=1000).astype(np.float32), np.array([-0.5, 0.0, 0.25, 2.0], np.float32)):
        q, scale = fn(w)
        q = np.asarray(q)
        assert q.dtype == np.int8, f"q must be int8, got {q.dtype}."
        assert q.min() >= -127 and q.max() <= 127, "Symmetric int8 uses -127..127 (keep -128 unused)."
        assert np.isclose(scale, np.abs(w).max() / 127, rtol=1e-5), (
            f"scale is {scale}; the symmetric scale maps the largest |w| ({np.abs(w).max():.4f}) to 127.")
        err = np.abs(q.astype(np.float32) * scale - w).max()
        assert err <= scale / 2 + 1e-6, (
            f"Rounding error {err:.4g} exceeds half a step ({scale / 2:.4g}): round, do not truncate.")
    _passed("4.2", "int8 values in [-127, 127], the right scale, error within half a quantization step.")


def check_pruning_loop(fn) -> None:
    """Exercise 4.3: ``fn(model, x, y, target_sparsity, epochs) -> model``: tfmot magnitude pruning with a
    PolynomialDecay schedule, trained with UpdatePruningStep, stripped."""
    from mlcourse import models
    from mlcourse.compression import sparsity

    x, y, xt, yt = _tiny_data()
    base = models.convert(_tiny_model(), "tf_keras")  # a fresh copy: clone_model's wrappers share its layers
    out = fn(base, x[:512], y[:512], 0.75, 2)
    assert out is not None and hasattr(out, "layers"), "Return the pruned, stripped model."
    wrappers = [type(layer).__name__ for layer in out.layers if type(layer).__name__ == "PruneLowMagnitude"]
    assert not wrappers, (f"The model still has {len(wrappers)} PruneLowMagnitude wrappers: return "
                          "tfmot.sparsity.keras.strip_pruning(pruned).")
    got = sparsity(out)
    assert got >= 0.70, (
        f"Only {got:.0%} of the kernel weights are zero, the target was 75 %. Use PolynomialDecay(0.0, "
        "target_sparsity, begin_step=0, end_step=<steps per epoch x epochs>), and fit with "
        "callbacks=[tfmot.sparsity.keras.UpdatePruningStep()].")
    assert got <= 0.80, f"{got:.0%} of the kernel weights are zero: more than the 75 % asked for."
    acc = float((out.predict(xt, verbose=0).argmax(1) == yt).mean())
    assert acc > 0.3, f"The pruned model is {acc:.0%} accurate: did you compile it before fit (loss, optimizer)?"
    _passed("4.3", "75 % of the kernel weights pruned (within 5 points), wrappers stripped, the model still "
                   "classifies.")


def check_low_rank(fn) -> None:
    """Exercise 4.4: ``fn(W, r) -> (A, B)`` with ``A @ B`` the best rank-``r`` approximation of ``W``."""
    rng = np.random.default_rng(2)
    W = rng.normal(size=(60, 40))
    s = np.linalg.svd(W, compute_uv=False)
    for r in (1, 5, 20):
        A, B = fn(W, r)
        A, B = np.asarray(A), np.asarray(B)
        assert A.shape == (60, r) and B.shape == (r, 40), (
            f"rank {r}: A must be (60, {r}) and B ({r}, 40); got {A.shape} and {B.shape}.")
        err, best = np.linalg.norm(W - A @ B), np.sqrt((s[r:] ** 2).sum())
        assert err <= best * (1 + 1e-6), (
            f"rank {r}: ||W - AB|| = {err:.3f}, the optimum (Eckart-Young) is {best:.3f}. Keep the {r} largest "
            "singular values: A = U[:, :r] * S[:r], B = Vt[:r].")
    _passed("4.4", "A @ B reaches the Eckart-Young optimum at ranks 1, 5 and 20.")
