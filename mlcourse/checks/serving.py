"""Checkers of the exercises of notebook 08, deployment (its week module: :mod:`mlcourse.serving`)."""
from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path

import numpy as np

from mlcourse import models
from mlcourse.checks._common import _passed
from mlcourse.drift import prediction_drift
from mlcourse.litert import interpreter
from mlcourse.session import set_seed

__all__ = ["check_validate", "check_serve", "check_prediction_alarm", "check_read_verified"]


def check_validate(fn) -> None:
    """Exercise 8.1: ``fn(images) -> float32 (N, 28, 28)``; ValueError for bad shape, NaN/inf, range.

    Lesson: 08_deployment § ✏️ Exercise 8.1: validate a request.
    """
    good = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    out = np.asarray(fn(good))
    assert out.shape == (5, 28, 28) and out.dtype == np.float32, (
        f"A good batch of 5 uint8 images should come back as float32 (5, 28, 28); got {out.dtype} {out.shape}.")
    one = np.asarray(fn(good[0]))
    assert one.shape == (1, 28, 28), f"One 28 x 28 image should become a batch of one, (1, 28, 28); got {one.shape}."
    nan = good[:2].astype(np.float32)
    nan[0, 3, 3] = np.nan
    inf = good[:2].astype(np.float32)
    inf[1, 0, 0] = np.inf
    for bad, what in ((good[:, :20, :20], "cropped 20 x 20 images"), (good[..., None], "images with a channel axis"),
                      (nan, "a NaN pixel"), (inf, "an infinite pixel"), (good * 2.0, "pixels up to 510"),
                      (good - 300.0, "negative pixels")):
        try:
            fn(bad)
        except ValueError:
            continue
        raise AssertionError(f"A request with {what} was accepted: raise ValueError so the caller learns what is "
                             "wrong.")
    _passed("8.1", "good requests pass (a single image becomes a batch); six kinds of bad ones are rejected.")


@functools.lru_cache(maxsize=1)
def _tiny_model():
    """A fixed tiny Keras 3 classifier of 28 x 28 raw-pixel images (rescaling inside; seeded, untrained: the check is
    about the conversion and the server, not accuracy), and images for it."""

    set_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 300)
    x = np.clip(rng.normal(40, 30, (300, 28, 28)) + (y * 20)[:, None, None], 0, 255).astype(np.uint8)
    model = models.build_model({"arch": "mlp", "hidden_units": [16], "dropout": 0.0, "learning_rate": 0.01})
    return model, x, y


def check_serve(fn) -> None:
    """Exercise 8.2: ``fn(model, calibration) -> (tflite_bytes, predict)``: an int8 model and a function that
    validates a request and returns one label per image.

    Lesson: 08_deployment § ✏️ Exercise 8.2: the serving function (converter + interpreter + validated predict).
    """

    model, x, _ = _tiny_model()
    out = fn(model, x[:100])
    assert isinstance(out, tuple) and len(out) == 2, (
        "Return two things: (tflite_bytes, predict), the converted model and your serving function.")
    blob, predict = out
    assert isinstance(blob, (bytes, bytearray)), f"The first item should be the converter's bytes, got {type(blob)}."
    it = interpreter(bytes(blob))
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and outp["dtype"] == np.uint8, (
        f"The model's input/output are {inp['dtype'].__name__}/{outp['dtype'].__name__}: set "
        "converter.inference_input_type = converter.inference_output_type = tf.uint8 (with "
        "optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset and TFLITE_BUILTINS_INT8).")
    labels = np.asarray(predict(x[:200]))
    assert labels.shape == (200,), f"predict(200 images) should return 200 labels, shape (200,); got {labels.shape}."
    assert np.issubdtype(labels.dtype, np.integer), f"Return integer class labels (argmax), got dtype {labels.dtype}."
    keras_labels = np.asarray(model(x[:200], training=False)).argmax(axis=1)
    agree = float(np.mean(labels == keras_labels))
    assert agree >= 0.9, (
        f"Your int8 server agrees with the Keras model on {agree:.0%} of 200 images (expected >= 90%). Quantize "
        "the input with the interpreter's (scale, zero_point): q = round(x / scale + zero_point), clipped to "
        "0..255, as uint8; invoke; read the output tensor.")
    one = np.asarray(predict(x[0]))
    assert one.shape == (1,), f"One 28 x 28 image should give one label, shape (1,); got {one.shape}."
    nan = x[:2].astype(np.float32)
    nan[1, 5, 5] = np.nan
    for bad, what in ((x[:2, :20, :20], "cropped 20 x 20 images"), (nan, "a NaN pixel"),
                      (x[:2] * 2.0, "pixels up to 510")):
        try:
            predict(bad)
        except ValueError:
            continue
        raise AssertionError(f"Your server answered a request with {what}: validate it first (Exercise 8.1's "
                             "validate) so that it raises ValueError.")
    _passed("8.2", "uint8 in/out int8 model; the server agrees with Keras on at least 90% of 200 images, batches "
                   "a single image and rejects three kinds of bad request.")


def check_prediction_alarm(fn) -> None:
    """Exercise 8.3: ``fn(reference_labels, window_labels, n_classes, threshold) -> (psi, alarm)``.

    Lesson: 08_deployment § ✏️ Exercise 8.3: the prediction-drift alarm.
    """

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 10, 1000)
    cases = {"the same distribution": rng.integers(0, 10, 1000),
             "a window of only 4 classes": rng.choice([5, 7, 8, 9], 1000),
             "a slightly tilted window": np.where(rng.random(1000) < 0.15, 3, rng.integers(0, 10, 1000)),
             "a window with a class never seen in the reference": np.r_[rng.integers(0, 9, 900), np.full(100, 9)]}
    ref_no9 = np.where(ref == 9, 0, ref)
    for what, cur in cases.items():
        r = ref_no9 if "never seen" in what else ref
        out = fn(r, cur, 10, 0.2)
        assert isinstance(out, tuple) and len(out) == 2, "Return (psi, alarm): a float and a bool."
        got_psi, alarm = out
        want = prediction_drift(r, cur, n_classes=10)
        assert np.isfinite(got_psi), (
            f"For {what} your PSI is {got_psi}: a class with share 0 gives log(0). Clip every share at 1e-4 first.")
        assert abs(float(got_psi) - want) <= 1e-6 + 1e-3 * want, (
            f"For {what} your PSI is {float(got_psi):.4f}, expected {want:.4f}. Shares per class: "
            "np.bincount(labels, minlength=n_classes) / len(labels), each clipped at 1e-4; "
            "PSI = sum((window - reference) * log(window / reference)).")
        assert bool(alarm) == (want > 0.2), (
            f"For {what} (PSI {want:.3f}, threshold 0.2) alarm should be {want > 0.2}, got {alarm}.")
    _passed("8.3", "the prediction PSI matches on four windows (one with a class the reference never predicted) "
                   "and the alarm fires exactly above the threshold.")


def _must_refuse(fn, path, digest, what: str) -> None:
    """``fn(path, digest)`` must raise ValueError (fail closed); anything else is explained."""
    try:
        out = fn(path, digest)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except AssertionError:
        raise AssertionError(f"For {what} your function used `assert`: Python run with -O (as some servers are) "
                             "strips asserts, and the model would be served. Raise ValueError instead.") from None
    except Exception as exc:  # noqa: BLE001 (a learner's crash, explained)
        raise AssertionError(f"For {what} your function raised {type(exc).__name__}: {exc}. Refuse it on purpose "
                             "with raise ValueError(...) and a reason.") from None
    raise AssertionError(f"For {what} your function returned {type(out).__name__} instead of refusing: a server "
                         "would now load it. Fail closed: raise ValueError.")


def check_read_verified(fn) -> None:
    """Exercise 8.4: ``fn(path, expected_sha256) -> bytes``: the file's bytes only when their SHA-256 is the one
    expected (64 hex digits, any case); ValueError for a changed file, a missing, empty or truncated digest.

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """
    rng = np.random.default_rng(7)
    content = rng.integers(0, 256, 5_000, dtype=np.uint8).tobytes()
    digest = hashlib.sha256(content).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp) / "model.tflite"
        good.write_bytes(content)
        try:
            out = fn(good, digest)
        except NotImplementedError:  # the student copy's stub: said as it is
            raise
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"A good file with its right SHA-256 was refused ({type(exc).__name__}: {exc}). Hash "
                                 "the file's bytes with hashlib.sha256(data).hexdigest() (not the path, not MD5) "
                                 "and compare the hex strings.") from None
        assert isinstance(out, (bytes, bytearray)) and bytes(out) == content, (
            f"Return the bytes you read and checked (the model to serve), got {type(out).__name__}. Returning the "
            "checked bytes, not reading the file again, means what is served is what was verified.")
        try:
            fn(good, f"  {digest.upper()}\n")
        except Exception as exc:  # noqa: BLE001
            raise AssertionError("The right digest written in upper case with spaces around it (as Windows' "
                                 f"Get-FileHash prints it) was refused ({exc}): .strip().lower() it first.") from None
        tampered = Path(tmp) / "tampered.tflite"
        tampered.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
        _must_refuse(fn, tampered, digest, "a file with one bit changed")
        _must_refuse(fn, good, "", "an empty expected digest")
        _must_refuse(fn, good, None, "no expected digest (None)")
        _must_refuse(fn, good, digest[:16], "a digest truncated to 16 hex digits")
        _must_refuse(fn, good, hashlib.md5(content).hexdigest(), "an MD5 digest given instead of a SHA-256")
    _passed("8.4", "the good file's bytes come back (the digest in any case); a one-bit change, an empty, missing, "
                   "truncated or MD5 digest are all refused with ValueError.")
