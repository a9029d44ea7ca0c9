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
    """A fixed tiny CNN (4 filters), trained 6 epochs on 600 embedded images: the same for every learner
    (about 0.64 test accuracy: enough for a broken pruning loop to show)."""
    from mlcourse import models
    from mlcourse.runtime import set_seed

    x, y, _, _ = _tiny_data()
    set_seed(0)
    m = models.build_model(_TINY_HP, flavor=flavor)
    m.fit(x, y, epochs=6, batch_size=64, verbose=0)
    return m


def check_int8_converter(fn) -> None:
    """Exercise 4.1: ``fn(model, representative_images) -> bytes``, a full-integer int8 LiteRT model with
    int8 input and output, every operator int8, as accurate as the float model (within 2 points)."""
    from mlcourse.compression import evaluate_tflite, interpreter

    x, _, xt, yt = _tiny_data()
    model = _tiny_model()
    try:
        blob = fn(model, x[:200])
    except NotImplementedError:  # the student copy's stub: let it through as it is
        raise
    except Exception as err:  # the converter's own errors are long: say which setting they point to
        hint = ("give converter.representative_dataset (a generator yielding [images[i:i+1].astype(np.float32)]):"
                " without it the converter can only quantize the weights (dynamic range), not the activations"
                if "representative" in str(err).lower() else "read the converter's message above")
        raise AssertionError(f"Your converter raised {type(err).__name__}: {str(err).strip()[:300]}; {hint}.") from err
    assert isinstance(blob, (bytes, bytearray)) and len(blob) > 0, (
        f"Return converter.convert() (the model's bytes), got {type(blob).__name__}.")
    it = interpreter(bytes(blob))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    # full int8 with float input/output keeps two float tensors (in and out); dynamic range keeps every activation
    no_calibration = sum(d["dtype"] == np.float32 for d in it.get_tensor_details()) > 2
    assert inp["dtype"] == np.int8, (
        f"The input is {np.dtype(inp['dtype']).name}: set converter.inference_input_type = tf.int8 (and "
        "inference_output_type)"
        + (", and give a representative_dataset: without one the converter only quantizes the weights (dynamic "
           "range), the activations stay float." if no_calibration else "."))
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
    top = scale * (127 - zero)  # the largest input value the int8 input can represent
    assert top >= 0.5 * float(x.max()), (
        f"The int8 input covers values up to {top:.3g} only, but the model takes raw pixels up to {x.max():.0f}: "
        "the representative_dataset must yield the images you were given, as the model receives them "
        "(images[i:i+1].astype(np.float32), not divided by 255, not random noise), or real pixels saturate.")
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
    for w in (rng.normal(size=1000).astype(np.float32), np.array([-0.5, 0.0, 0.25, 2.0], np.float32),
              np.array([-3.0, -1.0, 0.5, 2.0], np.float32)):  # the largest |w| is negative: max|w|, not max(w)
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
    PolynomialDecay schedule, trained with UpdatePruningStep, stripped.

    The schedule is read from the ``PruneLowMagnitude`` wrappers the learner's code builds (a spy on the
    wrapper's constructor, removed afterwards), so ConstantSparsity and hand-made NumPy masks are named as such.
    The accuracy bar, 0.45, sits below what correct loops reach on this data (0.53 at Adam 1e-4, 0.65 at the
    default 1e-3; the unpruned model 0.64) and above broken ones (a fresh, untrained model pruned: 0.38;
    Adam at 0.05: 0.09)."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    from mlcourse import models
    from mlcourse.compression import sparsity
    from mlcourse.runtime import set_seed

    x, y, xt, yt = _tiny_data()
    base = models.convert(_tiny_model(), "tf_keras")  # a fresh copy: clone_model's wrappers share its layers
    schedules = []
    cls = pruning_wrapper.PruneLowMagnitude
    original = cls.__init__

    def spy(self, layer, *args, **kwargs):  # records every schedule, however the learner imported tfmot
        schedules.append(kwargs.get("pruning_schedule", args[0] if args else None))
        original(self, layer, *args, **kwargs)

    cls.__init__ = spy
    set_seed(0)
    try:
        out = fn(base, x, y, 0.75, 4)
    except NotImplementedError:  # the student copy's stub: let it through as it is
        raise
    except Exception as err:
        hint = ("fit with callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]: it advances the schedule and "
                "updates the masks" if "UpdatePruningStep" in str(err) or "callback" in str(err).lower()
                else "read the message above")
        raise AssertionError(f"Your pruning loop raised {type(err).__name__}: {str(err).strip()[:300]}; "
                             f"{hint}.") from err
    finally:
        cls.__init__ = original
    assert out is not None and hasattr(out, "layers"), "Return the pruned, stripped model."
    assert schedules, (
        "No layer was wrapped with tfmot.sparsity.keras.prune_low_magnitude: zeroing weights by hand (NumPy "
        "masks) is not the exercise. Wrap the Conv2D and Dense layers with prune_low_magnitude(layer, "
        "pruning_schedule=...) in clone_model's clone_function, then fit and strip_pruning.")
    kinds = sorted({type(sch).__name__ for sch in schedules})
    assert kinds == ["PolynomialDecay"], (
        f"The pruning schedule is {', '.join(kinds)}: use tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0,"
        " final_sparsity=target_sparsity, begin_step=0, end_step=<the last training step>), which lets the "
        "network adapt as the sparsity grows.")
    cfg = schedules[0].get_config()["config"]
    assert np.isclose(cfg["final_sparsity"], 0.75), (
        f"PolynomialDecay's final_sparsity is {cfg['final_sparsity']}: pass final_sparsity=target_sparsity (0.75).")
    assert cfg["initial_sparsity"] == 0, (
        f"PolynomialDecay's initial_sparsity is {cfg['initial_sparsity']}: start from 0.0, so the sparsity grows "
        "from nothing to the target during fine-tuning.")
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
    base_acc = float((_tiny_model().predict(xt, verbose=0).argmax(1) == yt).mean())  # the untouched original
    assert acc >= 0.45, (
        f"The pruned model is {acc:.1%} accurate, the model you were given {base_acc:.1%} (a correct loop keeps "
        "about 0.53-0.65 here): prune the model passed in (its trained weights, not a new one), compile with "
        "the default Adam learning rate or lower, and fine-tune on x, y for the given epochs.")
    _passed("4.3", "prune_low_magnitude with PolynomialDecay(0 -> 75 %), 75 % of the kernel weights pruned (within 5 "
                   "points), wrappers stripped, accuracy above the 45 % bar.")


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
