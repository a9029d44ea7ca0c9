"""Security of the served model: each safeguard in mlcourse.serving fails closed on what it must refuse."""
import hashlib
import http.client
import json
import pickle
import secrets

import numpy as np
import pytest

from mlcourse import data, litert, models, serving


@pytest.fixture(scope="module")
def blob():
    ds = data.load_fashion_mnist(source="embedded")
    model = models.build_model({"arch": "mlp", "hidden_units": [16], "dropout": 0.0})
    model.fit(ds.x_train[:500], ds.y_train[:500], epochs=1, verbose=0)
    return litert.to_tflite(model, "float32")


def test_sha256_matches_sha256sum_for_bytes_and_files(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x" * 3_000_000)  # more than one 1 MiB block
    assert serving.sha256(f) == serving.sha256(b"x" * 3_000_000) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_verified_bytes_fails_closed(tmp_path):
    f = tmp_path / "model.tflite"
    f.write_bytes(b"model bytes" * 10)
    good = serving.sha256(f)
    assert serving.verified_bytes(f, good) == f.read_bytes()
    assert serving.verified_bytes(f, " " + good.upper() + "\n") == f.read_bytes()  # as Get-FileHash prints it
    for bad, match in ((None, "nothing to verify"), ("", "64 hex"), (good[:16], "64 hex"),
                       (hashlib.md5(f.read_bytes()).hexdigest(), "64 hex"),
                       (hashlib.sha256(b"other").hexdigest(), "mismatch")):
        with pytest.raises(serving.IntegrityError, match=match):
            serving.verified_bytes(f, bad)
    f.write_bytes(f.read_bytes()[:-1] + b"!")  # one byte changed
    with pytest.raises(serving.IntegrityError, match="mismatch"):
        serving.verified_bytes(f, good)


def test_hmac_signature_needs_the_key(tmp_path):
    key = secrets.token_bytes(32)
    payload = b"weights" * 100
    sig = serving.sign(payload, key)
    assert serving.verified_bytes(payload, key=key, signature=sig) == payload
    with pytest.raises(serving.IntegrityError, match="signature"):
        serving.verified_bytes(payload + b"!", key=key, signature=sig)
    with pytest.raises(serving.IntegrityError, match="signature"):
        serving.verified_bytes(payload, key=secrets.token_bytes(32), signature=sig)
    with pytest.raises(serving.IntegrityError, match="nothing to verify"):
        serving.verified_bytes(payload, key=key)  # a key but no signature: nothing was checked
    with pytest.raises(serving.IntegrityError, match="signature"):
        serving.verified_bytes(payload, expected_sha256=serving.sha256(payload), signature=sig)  # no key
    with pytest.raises(ValueError, match="16 secret bytes"):
        serving.sign(payload, b"short")


def test_predictor_load_refuses_a_tampered_or_unsigned_folder(blob, tmp_path):
    p = serving.Predictor(blob, class_names=data.CLASS_NAMES)
    plain = p.save(tmp_path / "plain")
    assert serving.Predictor.load(plain).class_names == list(data.CLASS_NAMES)
    assert serving.Predictor.load(plain, expected_sha256=serving.sha256(blob)) is not None
    with pytest.raises(serving.IntegrityError, match="mismatch"):
        serving.Predictor.load(plain, expected_sha256=hashlib.sha256(b"another model").hexdigest())
    with pytest.raises(serving.IntegrityError, match="signature"):
        serving.Predictor.load(plain, key=secrets.token_bytes(32))  # unsigned, yet a key was given
    model = plain / "model.tflite"
    model.write_bytes(model.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(serving.IntegrityError, match="mismatch"):
        serving.Predictor.load(plain)
    key = secrets.token_bytes(32)
    signed = p.save(tmp_path / "signed", key=key)
    assert serving.Predictor.load(signed, key=key).class_names == list(data.CLASS_NAMES)
    meta = json.loads((signed / "predictor.json").read_text())
    meta["class_names"][0], meta["class_names"][1] = meta["class_names"][1], meta["class_names"][0]
    (signed / "predictor.json").write_text(json.dumps(meta))  # labels swapped: digest still matches the model
    assert serving.Predictor.load(signed).class_names[0] == data.CLASS_NAMES[1]  # without the key: not caught
    with pytest.raises(serving.IntegrityError, match="signature"):
        serving.Predictor.load(signed, key=key)
    meta.pop("model_sha256")
    (signed / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(serving.IntegrityError, match="model_sha256"):
        serving.Predictor.load(signed)


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_load_artifact_refuses_pickles_before_running_them(blob, tmp_path):
    marker = tmp_path / "marker.txt"
    evil = pickle.dumps(_RunsCode(marker))
    for name in ("model.pkl", "model.joblib", "model.tflite", "model.keras"):  # a pickle under any name
        (tmp_path / name).write_bytes(evil)
        with pytest.raises(ValueError, match="pickle"):
            serving.load_artifact(tmp_path / name)
    assert not marker.exists()  # refused before a byte of it ran
    pickle.loads(evil)  # the control: unpickling it does run the code
    assert marker.read_text() == "ran"
    (tmp_path / "ok.tflite").write_bytes(blob)
    assert serving.load_artifact(tmp_path / "ok.tflite", expected_sha256=serving.sha256(blob)) == blob
    (tmp_path / "fake.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match="TFL3"):
        serving.load_artifact(tmp_path / "fake.tflite")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(ValueError, match="only .tflite and .keras"):
        serving.load_artifact(tmp_path / "model.onnx")
    with pytest.raises(serving.IntegrityError):
        serving.load_artifact(tmp_path / "ok.tflite", expected_sha256="0" * 64)


def test_load_artifact_loads_keras_in_safe_mode_only(tmp_path):
    import keras

    plain = models.build_model({"arch": "mlp", "hidden_units": [4]})
    plain.save(tmp_path / "plain.keras")
    assert serving.load_artifact(tmp_path / "plain.keras").count_params() == plain.count_params()
    inp = keras.Input((28, 28))
    lam = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Lambda(lambda t: t / 255)(inp))))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        serving.load_artifact(tmp_path / "lambda.keras")


def _body(images) -> bytes:
    return json.dumps({"images": np.asarray(images).tolist()}).encode()


def test_parse_request_refuses_before_allocating():
    limits = serving.Limits(max_batch=4)
    img = np.random.default_rng(0).integers(0, 256, (28, 28))
    assert serving.parse_request(_body(img), limits).shape == (1, 28, 28)
    x = serving.parse_request(_body([img, img]), limits)
    assert x.shape == (2, 28, 28) and x.dtype == np.float32
    cases = (
        (_body([img] * 5), "limit is 4", 413),
        (b" " * (limits.body_limit() + 1), "bytes", 413),
        (b'{"images": [' + b"[" * 50 + b"]" * 50 + b"]}", "nested", 400),
        (b'{"images": [[NaN]]}', "NaN", 400),
        (b'{"images": [[Infinity]]}', "Infinity", 400),
        (_body(img[:20]), "shape", 400),
        (_body(img * 2), "0..255", 400),
        (_body(-img - 1), "0..255", 400),
        (json.dumps({"images": [[["a"] * 28] * 28]}).encode(), "grid of numbers", 400),
        (json.dumps({"images": [[[1] * 28] * 27 + [[1] * 5]]}).encode(), "grid of numbers", 400),
        (b"[1, 2]", "images", 400),
        (b'{"images": []}', "at least one", 400),
        (b"{not json", "not valid JSON", 400),
    )
    for body, match, status in cases:
        with pytest.raises(serving.RequestRejected, match=match) as err:
            serving.parse_request(body, limits)
        assert err.value.status == status, (match, err.value.status)


def test_http_server_is_loopback_only_and_refuses_a_huge_body_unread(blob):
    p = serving.Predictor(blob, class_names=data.CLASS_NAMES)
    server = serving.serve_http(p, limits=serving.Limits(max_batch=8))
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        conn = http.client.HTTPConnection(host, port, timeout=10)
        img = np.zeros((28, 28), int)
        img[10:18, 10:18] = 200
        conn.request("POST", "/predict", body=_body([img, img]), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        doc = json.loads(r.read())
        assert r.status == 200 and len(doc["labels"]) == 2 and doc["classes"][0] in data.CLASS_NAMES
        conn.request("GET", "/health")
        r = conn.getresponse()
        assert json.loads(r.read())["model_sha256"] == serving.sha256(blob)
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)  # declares 1 GB and sends none of it
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Length", str(10**9))
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 413 and "limit" in json.loads(r.read())["error"]
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("POST", "/predict", body=b'{"images": [[NaN]]}')
        r = conn.getresponse()
        assert r.status == 400 and "NaN" in json.loads(r.read())["error"]
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
