"""Checkers of the exercises of notebook 05 compression (``solutions/05_compression.ipynb``).

Each runs in seconds on a fixed tiny model and says, when it fails, what is wrong and what to do.
"""
from __future__ import annotations

import functools

import numpy as np

from mlcourse import compression as C
from mlcourse import data, models
from mlcourse.checks._common import _passed
from mlcourse.compression import sparsity
from mlcourse.litert import evaluate_tflite, interpreter
from mlcourse.session import set_seed

__all__ = ["check_int8_converter", "check_int8_quantize", "check_pruning_loop", "check_low_rank",
           "check_adaptive_sparsity"]

_TINY_HP = {"arch": "cnn", "filters": [4], "dense_units": 0, "dropout": 0.0}


@functools.lru_cache(maxsize=1)
def _tiny_data():

    d = data.load_fashion_mnist(source="embedded")
    return d.x_train[:600], d.y_train[:600], d.x_test[:300], d.y_test[:300]


@functools.lru_cache(maxsize=2)
def _tiny_model(flavor: str = "keras3"):
    """A fixed tiny CNN (4 filters), trained 6 epochs on 600 embedded images: the same for every learner
    (about 0.64 test accuracy: enough for a broken pruning loop to show)."""

    x, y, _, _ = _tiny_data()
    set_seed(0)
    m = models.build_model(_TINY_HP, flavor=flavor)
    m.fit(x, y, epochs=6, batch_size=64, verbose=0)
    return m


def check_int8_converter(fn) -> None:
    """Exercise 5.1: ``fn(model, representative_images) -> bytes``, a full-integer int8 LiteRT model with
    int8 input and output, every operator int8, as accurate as the float model (within 2 points).

    Lesson: 05_compression § ✏️ Exercise 5.1: write the full-integer int8 converter.
    """

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
    _passed("5.1", "int8 in and out, every tensor int8, accuracy within 2 points of float.")


def check_int8_quantize(fn) -> None:
    """Exercise 5.2: ``fn(w) -> (q, scale)``: symmetric per-tensor int8, ``w ≈ q * scale``.

    Lesson: 05_compression § ✏️ Exercise 5.2: symmetric int8 quantization by hand.
    """
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
    _passed("5.2", "int8 values in [-127, 127], the right scale, error within half a quantization step.")


def check_pruning_loop(fn) -> None:
    """Exercise 5.3: ``fn(model, x, y, target_sparsity, epochs) -> model``: tfmot magnitude pruning with a
    PolynomialDecay schedule, trained with UpdatePruningStep, stripped.

    The schedule is read from the ``PruneLowMagnitude`` wrappers the learner's code builds (a spy on the
    wrapper's constructor, removed afterwards), so ConstantSparsity and hand-made NumPy masks are named as such.
    The accuracy bar, 0.45, sits below what correct loops reach on this data (0.53 at Adam 1e-4, 0.65 at the
    default 1e-3; the unpruned model 0.64) and above broken ones (a fresh, untrained model pruned: 0.38;
    Adam at 0.05: 0.09).

    Lesson: 05_compression § ✏️ Exercise 5.3: write the pruning loop.
    """
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

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
    _passed("5.3", "prune_low_magnitude with PolynomialDecay(0 -> 75 %), 75 % of the kernel weights pruned (within 5 "
                   "points), wrappers stripped, accuracy above the 45 % bar.")


def check_low_rank(fn) -> None:
    """Exercise 5.4: ``fn(W, r) -> (A, B)`` with ``A @ B`` the best rank-``r`` approximation of ``W``.

    Lesson: 05_compression § ✏️ Exercise 5.4: the best rank-r approximation.
    """
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
    _passed("5.4", "A @ B reaches the Eckart-Young optimum at ranks 1, 5 and 20.")


_SCAN_GRID = (0.5, 0.9, 0.99)


@functools.lru_cache(maxsize=1)
def _tiny_val():
    """Validation images the tiny model never trained on (rows 600-899 of the embedded training set)."""

    d = data.load_fashion_mnist(source="embedded")
    return d.x_train[600:900], d.y_train[600:900]


@functools.lru_cache(maxsize=1)
def _tiny_mlp():
    """A fixed tiny MLP (784 -> 64 -> 10), trained 6 epochs on 600 embedded images: a robust 50,176-weight hidden
    layer and a sensitive 640-weight output layer, so a per-layer choice beats uniform sparsity (0.71 vs 0.40
    validation accuracy with 12 % of the weights kept)."""

    x, y, _, _ = _tiny_data()
    set_seed(0)
    m = models.build_model({"arch": "mlp", "hidden_units": [64], "dropout": 0.0})
    m.fit(x, y, epochs=6, batch_size=64, verbose=0)
    return m


@functools.lru_cache(maxsize=1)
def _reference_scan():

    return C.sensitivity_scan(_tiny_mlp(), *_tiny_val(), _SCAN_GRID)


def _scan_rows(got, grid) -> dict:
    import pandas as pd

    assert isinstance(got, pd.DataFrame), (
        f"Return a pandas DataFrame (one row per layer and sparsity), got {type(got).__name__}.")
    missing = {"layer", "sparsity", "accuracy"} - set(got.columns)
    assert not missing, f"The scan's table needs the columns layer, sparsity, accuracy; {sorted(missing)} missing."
    return {(str(r.layer), round(float(r.sparsity), 4)): float(r.accuracy) for r in got.itertuples()
            if round(float(r.sparsity), 4) in {round(s, 4) for s in grid}}


def _check_scan(scan_fn, pristine, xv, yv, xt, yt):

    model = C.magnitude_prune(pristine, {})  # the learner's own copy: a scan that forgets to restore spoils only it
    before = [w.copy() for w in model.get_weights()]
    got = _scan_rows(scan_fn(model, xv, yv, _SCAN_GRID), _SCAN_GRID)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), (
        "The model's weights changed during your scan: restore each layer's kernel after pruning it (or prune a "
        "copy), or every later row measures a model that earlier rows already pruned.")
    layers = list(C.prunable_layers(model))
    want = {(n, s) for n in layers for s in _SCAN_GRID}
    assert set(got) == {(n, round(s, 4)) for n, s in want}, (
        f"The scan must have one row per prunable layer ({layers}) and sparsity {_SCAN_GRID}; got rows for "
        f"{sorted(got)}.")
    ref = _reference_scan()
    ref_rows = _scan_rows(ref, _SCAN_GRID)
    off = {k: got[k] - ref_rows[k] for k in ref_rows if abs(got[k] - ref_rows[k]) > 0.01}
    if off:  # what went wrong: the two plausible mistakes, measured only when needed
        together = {s: C.keras_accuracy(C.magnitude_prune(pristine, {n: s for n in layers}), xv, yv)
                    for s in _SCAN_GRID}
        if all(abs(got[(n, s)] - together[s]) <= 0.01 for n, s in got):
            raise AssertionError(
                "Your scan prunes every layer at once: each row must prune ONE layer (the others untouched), or "
                "the scan cannot tell a sensitive layer from a robust one.")
        on_test = _scan_rows(C.sensitivity_scan(pristine, xt, yt, _SCAN_GRID), _SCAN_GRID)
        if all(abs(got[k] - on_test[k]) <= 0.01 for k in got):
            raise AssertionError(
                "Your accuracies are those of the test set: measure on x_val, y_val (the validation data you were "
                "given). Choosing sparsities on the test set makes the final test accuracy an optimistic guess.")
        (name, s), diff = next(iter(off.items()))
        raise AssertionError(
            f"Pruning {name} to {s:.0%}: your accuracy is {got[(name, s)]:.3f}, one-shot magnitude pruning of that "
            f"layer alone gives {ref_rows[(name, s)]:.3f} on the validation data. Zero the {s:.0%} of its kernel "
            "with the smallest |w| (not a random share, not the bias), evaluate, then restore the kernel.")
    return ref


def check_adaptive_sparsity(scan_fn, choose_fn) -> None:
    """Exercise 5.5: ``scan_fn(model, x_val, y_val, sparsities) -> DataFrame(layer, sparsity, accuracy)``, one
    layer pruned at a time (one-shot magnitude pruning), on the validation data; and ``choose_fn(scan, weights,
    target_nonzero) -> {layer: sparsity}`` that keeps at most ``target_nonzero`` kernel weights while losing
    little accuracy. Checked on a fixed tiny MLP (a 50,176-weight hidden layer, a 640-weight output layer),
    against the course's :func:`mlcourse.compression.sensitivity_scan` and :func:`allocate_sparsity`; uniform
    sparsity at the same total is the control a right answer must beat where the target is tight.

    Lesson: 05_compression § ✏️ Exercise 5.5: the sensitivity scan, and the sparsities it chooses.
    """

    model = _tiny_mlp()
    xv, yv = _tiny_val()
    _, _, xt, yt = _tiny_data()
    ref_scan = _check_scan(scan_fn, model, xv, yv, xt, yt)
    weights = C.prunable_layers(model)
    total = sum(weights.values())
    for share in (0.12, 0.6):  # keep 12 % of the weights (tight: the output layer at 90 %), then 60 % (loose)
        target = int(share * total)
        chosen = choose_fn(ref_scan.copy(), dict(weights), target)
        assert isinstance(chosen, dict) and set(chosen) == set(weights), (
            f"Return a dict {{layer: sparsity}} with every prunable layer ({list(weights)}), got {chosen!r}.")
        assert all(0 <= float(v) < 1 for v in chosen.values()), f"Sparsities must be in [0, 1), got {chosen}."
        nz = C.nonzero_weights(weights, {k: float(v) for k, v in chosen.items()})
        assert nz <= target, (
            f"Your sparsities keep {nz:,} non-zero weights, the target was at most {target:,}: the choice must "
            "meet the target (count each layer's weights x (1 - its sparsity)).")
        acc = C.keras_accuracy(C.magnitude_prune(model, chosen), xv, yv)
        ref = C.allocate_sparsity(ref_scan, target)
        ref_acc = C.keras_accuracy(C.magnitude_prune(model, ref), xv, yv)
        uni_acc = C.keras_accuracy(C.magnitude_prune(model, C.uniform_sparsity(weights, nz)), xv, yv)
        assert acc >= ref_acc - 0.02, (
            f"Keeping {target:,} of {total:,} weights, your choice {chosen} reaches {acc:.3f} on the validation data; "
            f"the course's allocation {ref} reaches {ref_acc:.3f} (uniform sparsity at your total: {uni_acc:.3f}). "
            "Give the sensitive layers (those whose accuracy falls fast in the scan) low sparsity and the robust, "
            "big ones high sparsity, then check the target.")
    _passed("5.5", "one layer pruned at a time on the validation data; sparsities meet both targets and keep the "
                   "accuracy of the course's allocation (within 2 points).")
