"""The checkers of notebook 08 (deployment): each passes a right answer and rejects typical wrong ones, explaining."""
import numpy as np
import pytest

from mlcourse import checks


def _validate(images):
    x = np.asarray(images, dtype="float32")
    if x.shape == (28, 28):
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28), got {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise ValueError("pixels must be finite and in 0..255")
    return x


def test_validate_checker(capsys):
    checks.check_validate(_validate)
    assert "✅ Exercise 8.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="float32"):  # forgot to convert
        checks.check_validate(lambda x: _validate(x).astype("float64") if np.ndim(x) == 3 else _validate(x))
    with pytest.raises(AssertionError, match="batch of one"):  # a single image not batched
        checks.check_validate(lambda x: np.asarray(x, "float32") if np.shape(x) == (28, 28) else _validate(x))
    with pytest.raises(AssertionError, match="NaN pixel"):  # only the range is checked; NaN compares False
        checks.check_validate(lambda x: _check_range_only(x))
    with pytest.raises(AssertionError, match="pixels up to 510"):  # NaN checked, range forgotten
        checks.check_validate(_check_finite_only)


def _check_finite_only(images):
    x = np.asarray(images, dtype="float32")
    x = x[None] if x.shape == (28, 28) else x
    if x.ndim != 3 or x.shape[1:] != (28, 28) or not np.isfinite(x).all():
        raise ValueError("shape or NaN")
    return x


def _check_range_only(images):
    x = np.asarray(images, dtype="float32")
    x = x[None] if x.shape == (28, 28) else x
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError("shape")
    if (x < 0).any() or (x > 255).any():
        raise ValueError("range")
    return x


def _serve(model, calibration):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rep = np.asarray(calibration, np.float32)
    conv.representative_dataset = lambda: ([rep[i:i + 1]] for i in range(len(rep)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    blob = conv.convert()
    it = Interpreter(model_content=blob)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def predict(images, quantize=True):
        x = _validate(images)
        scale, zero = inp["quantization"]
        q = np.clip(np.round(x / scale + zero), 0, 255).astype(np.uint8) if quantize else x.astype(np.uint8)
        labels = []
        for img in q:
            it.set_tensor(inp["index"], img[None])
            it.invoke()
            labels.append(int(it.get_tensor(out["index"])[0].argmax()))
        return np.array(labels)

    return blob, predict


def test_serve_checker(capsys):
    checks.check_serve(_serve)
    assert "✅ Exercise 8.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="two things"):
        checks.check_serve(lambda m, c: _serve(m, c)[1])
    with pytest.raises(AssertionError, match="bad|answered a request"):  # no validation
        checks.check_serve(lambda m, c: (lambda b, p: (b, lambda x: p(np.nan_to_num(np.clip(
            np.asarray(x, np.float32)[..., :28, :28] if np.ndim(x) == 3 else x, 0, 255)))))(*_serve(m, c)))


def _alarm(ref, cur, n_classes, threshold):
    e = np.clip(np.bincount(ref, minlength=n_classes) / len(ref), 1e-4, None)
    c = np.clip(np.bincount(cur, minlength=n_classes) / len(cur), 1e-4, None)
    psi = float(np.sum((c - e) * np.log(c / e)))
    return psi, psi > threshold


def test_prediction_alarm_checker(capsys):
    checks.check_prediction_alarm(_alarm)
    assert "✅ Exercise 8.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="log\\(0\\)|1e-4"):  # no clipping
        checks.check_prediction_alarm(lambda r, c, k, t: (lambda e, a: (lambda v: (v, v > t))(
            float(np.sum((a - e) * np.log(a / e)))))(
            np.bincount(r, minlength=k) / len(r), np.bincount(c, minlength=k) / len(c)))
    with pytest.raises(AssertionError, match="alarm should be"):  # alarm inverted
        checks.check_prediction_alarm(lambda r, c, k, t: (_alarm(r, c, k, t)[0], not _alarm(r, c, k, t)[1]))


def test_prediction_alarm_checker_rejects_more_mistakes():
    def kl(r, c, k, t):  # one-sided KL divergence instead of PSI
        e = np.clip(np.bincount(r, minlength=k) / len(r), 1e-4, None)
        a = np.clip(np.bincount(c, minlength=k) / len(c), 1e-4, None)
        v = float(np.sum(a * np.log(a / e)))
        return v, v > t

    with pytest.raises(AssertionError, match="expected .*PSI ="):
        checks.check_prediction_alarm(kl)
    with pytest.raises(AssertionError, match="Return \\(psi, alarm\\)"):  # only the number returned
        checks.check_prediction_alarm(lambda r, c, k, t: _alarm(r, c, k, t)[0])
    with pytest.raises(AssertionError, match="expected .*minlength"):  # counts, not shares
        checks.check_prediction_alarm(lambda r, c, k, t: (lambda e, a: (lambda v: (v, v > t))(
            float(np.sum((a - e) * np.log(a / e)))))(
            np.clip(np.bincount(r, minlength=k), 1, None) * 1.0, np.clip(np.bincount(c, minlength=k), 1, None) * 1.0))


# --- Exercise 8.4: read a model file only when its SHA-256 is the expected one ---

def _read_verified(path, expected_sha256):
    import hashlib
    import hmac
    from pathlib import Path

    if not isinstance(expected_sha256, str):
        raise ValueError("no expected SHA-256 given")
    want = expected_sha256.strip().lower()
    data = Path(path).read_bytes()
    if len(want) != 64 or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), want):
        raise ValueError("SHA-256 mismatch: not served")
    return data


def test_read_verified_checker_passes_a_right_answer_and_the_course_version(capsys):
    from mlcourse import serving

    checks.check_read_verified(_read_verified)
    checks.check_read_verified(serving.verified_bytes)
    assert capsys.readouterr().out.count("✅ Exercise 8.4 passed") == 2


def _sha(path):
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_read_verified_checker_rejects_plausible_wrong_answers():
    import hashlib
    from pathlib import Path

    wrong = {
        "one bit changed your function returned": lambda p, e: Path(p).read_bytes(),  # no check at all
        "one bit changed.*returned": lambda p, e: (_sha(p), Path(p).read_bytes())[1],  # hashes, never compares
        "empty expected digest": lambda p, e: Path(p).read_bytes() if not e or _sha(p) == e.strip().lower()
        else (_ for _ in ()).throw(ValueError("mismatch")),  # fails open when no digest is given
        "truncated": lambda p, e: Path(p).read_bytes() if e and _sha(p).startswith(e.strip().lower())
        else (_ for _ in ()).throw(ValueError("mismatch")),  # prefix match
        "assert": lambda p, e: (_ for _ in ()).throw(AssertionError()) if _sha(p) != str(e).strip().lower()
        else Path(p).read_bytes(),  # assert, stripped by python -O
        "upper case": lambda p, e: Path(p).read_bytes() if _sha(p) == e
        else (_ for _ in ()).throw(ValueError("mismatch")),  # no .strip().lower()
        "not MD5|refused": lambda p, e: Path(p).read_bytes() if hashlib.md5(Path(p).read_bytes()).hexdigest() == e
        else (_ for _ in ()).throw(ValueError("mismatch")),  # the wrong hash function
        "Return the bytes": lambda p, e: _read_verified(p, e) and True,  # returns True, not the model
        "None.*AttributeError|AttributeError": lambda p, e: _read_verified(p, e.strip()),  # crashes on None
    }
    for match, fn in wrong.items():
        with pytest.raises(AssertionError, match=match):
            checks.check_read_verified(fn)


def test_read_verified_checker_lets_the_stub_say_what_it_is():
    def stub(path, expected_sha256):
        raise NotImplementedError("Exercise 8.4: serve only the released model (your code here)")

    with pytest.raises(NotImplementedError, match="Exercise 8.4"):
        checks.check_read_verified(stub)
