"""Serving, securing, monitoring and retraining a compressed model: what happens after the notebook.

Notebook: ``08_deployment`` writes the converter, the interpreter, the serving function, the integrity check and
the shadow comparison out in its cells; this module is their tested production version.

* :class:`Predictor`: a TFLite model behind one small prediction function. It checks its input (shape,
  type, range, NaN) and says what to do when it is wrong, returns labels, class names and confidence, and
  saves / loads itself as ``model.tflite`` + ``predictor.json`` (never over an existing one; the model's
  SHA-256, and an HMAC signature when a key is given, are checked before it is served).
* Security: :func:`sha256`, :func:`sign` and :func:`verified_bytes` (a model file is served only when its digest or
  signature matches: fail closed), :func:`load_artifact` (the one loader: ``.tflite`` bytes or a ``.keras`` file in
  Keras' ``safe_mode``; a pickle is refused before a byte of it runs), :class:`Limits` and :func:`parse_request` (a
  request body is refused before it is read or allocated when it is too big, too deep, has too many images, the
  wrong shape or a NaN), :func:`serve_http` (a small JSON server on loopback that applies them).
* :func:`benchmark`: latency per request and throughput at several batch sizes.
* :class:`Monitor`: the "monitor after deployment" step. It keeps a reference window (inputs and
  predictions at deployment time); each new window of traffic is compared with it on cheap input features
  (PSI and KS per feature, :mod:`mlcourse.drift`) and on the distribution of predicted classes, which needs
  no labels. Every check is logged, so the alarms can be plotted over time.
* Retraining: :func:`retrain` (fine-tune the serving model on the new days' labelled images), :func:`shadow` (the
  serving and the candidate model answer the same traffic, day by day) and :func:`promotion` (promote only when the
  candidate wins on accuracy by more than a margin, with the interval over days printed).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mlcourse import cache, data, drift, litert, models, results, settings, stats
from mlcourse.headlines import Headlines, row
from mlcourse.litert import PTQ_REFERENCE
from mlcourse.session import quiet_import, set_seed, work_dir

__all__ = ["headlines", "REFERENCES",
           "warm_cache", "SIZES", "sizes", "TUNED_HP", "deployment_hp", "deployment_model", "Predictor", "benchmark",
           "Monitor", "sha256", "sign", "verified_bytes", "IntegrityError", "load_artifact", "Limits",
           "RequestRejected", "parse_request", "serve_http", "retrain", "shadow", "promotion"]

#: A fixed CNN (421,642 parameters), the fallback when no choice of your own (03_nas, 02_tuning) is found. It is
#: not 02's current winner: the run says which model it deploys and from where.
TUNED_HP = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.1,
            "learning_rate": 0.0033473086882182972}


#: 08_deployment's sizes, one table read by the notebook's parameters cell and by :func:`warm_cache`. ``N_TRAIN``
#: and ``EPOCHS`` train the deployed model; ``N_CALIBRATION`` images calibrate int8; ``ROUNDS`` x ``NUMBER`` calls
#: time float32 against int8; ``REPEATS`` per batch size in the benchmark; ``WINDOW`` images per monitored day and
#: ``NORMAL_DAYS`` resampled normal days for the false-alarm rate; ``N_NEW`` labelled images of the new days
#: retrain the model for ``RETRAIN_EPOCHS``; ``SHADOW_DAYS`` days of ``SHADOW_DAY`` images are served in shadow.
SIZES = {
    "smoke": {"N_TRAIN": 2_000, "EPOCHS": 1, "N_CALIBRATION": 200, "ROUNDS": 5, "NUMBER": 50, "REPEATS": 10,
              "WINDOW": 1_000, "NORMAL_DAYS": 10, "N_NEW": 600, "RETRAIN_EPOCHS": 1, "SHADOW_DAYS": 3,
              "SHADOW_DAY": 300},
    "lesson": {"N_TRAIN": 12_000, "EPOCHS": 3, "N_CALIBRATION": 300, "ROUNDS": 9, "NUMBER": 100, "REPEATS": 20,
               "WINDOW": 1_000, "NORMAL_DAYS": 20, "N_NEW": 3_000, "RETRAIN_EPOCHS": 2, "SHADOW_DAYS": 5,
               "SHADOW_DAY": 800},
    "full": {"N_TRAIN": 60_000, "EPOCHS": 6, "N_CALIBRATION": 500, "ROUNDS": 15, "NUMBER": 200, "REPEATS": 50,
             "WINDOW": 1_000, "NORMAL_DAYS": 40, "N_NEW": 4_000, "RETRAIN_EPOCHS": 3, "SHADOW_DAYS": 5,
             "SHADOW_DAY": 1_000},
}


def sizes(size: str, **given) -> dict:
    """08's sizes for ``size`` (``"smoke"``, ``"lesson"`` or ``"full"``; :data:`SIZES`), with every value in
    ``given`` that is not None put over them.

    Lesson: 08_deployment § 08 · Deployment and monitoring: the whole path, end to end.
    """
    return settings.pick_sizes(SIZES, size, given)


def deployment_hp(work_dir=None) -> tuple[dict, str]:
    """The hyperparameters to deploy: your own earlier weeks' choice (:func:`mlcourse.results.chosen_hp`:
    03_nas's, else 02_tuning's) when there is one, else :data:`TUNED_HP`. Returns ``(hp, where it came from)``.

    Lesson: 08_deployment § 1 · Tuned and trained.
    """
    return results.chosen_hp(work_dir, TUNED_HP,
                     "mlcourse.serving.TUNED_HP (a fixed fallback CNN: no 03_nas or 02_tuning choice found)")


def deployment_model(x, y, hp: dict | None = None, epochs: int = 6, seed: int = 0):
    """The model to deploy, trained on ``(x, y)`` (Keras 3), from the workshop cache when trained before.

    Lesson: 08_deployment § 1 · Tuned and trained.
    """
    return cache.trained_model("deployment", x, y, hp or TUNED_HP, epochs, seed=seed, model_name="deployed")


class Predictor:
    """A TFLite classifier for 28 x 28 grey images (raw 0-255 pixels), behind ``predict``.

        >>> p = Predictor(tflite_bytes, class_names=data.CLASS_NAMES)
        >>> p.predict(images)          # DataFrame: label, class, confidence

    Lesson: 08_deployment § ✏️ Exercise 8.2: the serving function (converter + interpreter + validated predict).
    """

    def __init__(self, tflite: bytes, class_names=None, input_shape=(28, 28), threads: int = 1):
        if not isinstance(tflite, (bytes, bytearray)) or len(tflite) < 16:
            raise ValueError("tflite must be the bytes of a .tflite model (from litert.to_tflite).")
        self.tflite = bytes(tflite)
        try:
            self.input_shape = tuple(int(v) for v in input_shape)
        except (TypeError, ValueError):
            raise ValueError(f"input_shape must be a tuple of whole numbers such as (28, 28), got {input_shape!r}.") \
                from None
        self._interp = litert.interpreter(self.tflite, threads=threads)
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        model_shape = tuple(int(v) for v in self._in["shape"][1:])
        if self.input_shape != model_shape:  # else: garbage predictions or a raw RESHAPE error later
            raise ValueError(f"input_shape {self.input_shape} does not match the model, whose input is one image of "
                             f"{model_shape}: pass input_shape={model_shape} (or leave it out).")
        n_classes = int(self._out["shape"][-1])
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
        if len(self.class_names) != n_classes:
            raise ValueError(f"the model has {n_classes} outputs but {len(self.class_names)} class names were given.")

    def _check(self, images) -> np.ndarray:
        """The request as a float32 batch, or a ValueError/TypeError that says what is wrong (checked per image)."""
        x = np.asarray(images)
        if x.shape == self.input_shape:
            x = x[None]
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            dims = ", ".join(map(str, self.input_shape))
            raise ValueError(f"expected images of shape {self.input_shape} or a batch (N, {dims}), got {x.shape}. "
                             f"Resize or crop the images to {self.input_shape} first.")
        if len(x) == 0:
            raise ValueError(f"the batch is empty (shape {x.shape}): send at least one image.")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"images must be numbers (uint8 pixels), got dtype {x.dtype}.")
        x = x.astype("float32")
        flat = x.reshape(len(x), -1)
        bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
        if bad.size:
            raise ValueError(f"image {bad[0]} ({bad.size} in all) contains NaN or infinite pixels; reject or repair "
                             "them before predicting.")
        bad = np.flatnonzero((flat.min(axis=1) < 0) | (flat.max(axis=1) > 255))
        if bad.size:
            raise ValueError(f"pixels must be in 0..255 (raw values): image {bad[0]} ({bad.size} in all) has "
                             f"{flat[bad[0]].min():.3g}..{flat[bad[0]].max():.3g}.")
        # per image, so that one wrongly prepared image inside a good batch is caught too
        top = flat.max(axis=1)
        small = (top <= 1.0) & (top > 0)
        whole = (flat % 1 == 0).all(axis=1)
        scaled = np.flatnonzero(small & ~whole)
        if scaled.size:
            raise ValueError(f"image {scaled[0]} ({scaled.size} in all) has every pixel <= 1: it looks already "
                             "scaled to 0..1. Pass raw 0..255 pixels: the model rescales them itself.")
        binary = np.flatnonzero(small & whole)
        if binary.size:
            raise ValueError(f"image {binary[0]} ({binary.size} in all) holds only 0 and 1: it looks binarised (a "
                             "mask, not a photo). Pass the raw 0..255 grey image; the model was never trained on "
                             "masks.")
        return x

    @staticmethod
    def _batch_size(batch_size) -> int:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
        return int(batch_size)

    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, N x classes."""
        batch_size = self._batch_size(batch_size)
        return litert.run_interpreter(self._interp, self._check(images), batch_size=batch_size)

    def predict(self, images, batch_size: int = 256) -> pd.DataFrame:
        """One row per image: ``label`` (int), ``class`` (name) and ``confidence`` (top probability)."""
        p = self.predict_proba(images, batch_size)
        labels = p.argmax(axis=1)
        return pd.DataFrame({"label": labels, "class": [self.class_names[i] for i in labels],
                             "confidence": p.max(axis=1)})

    def manifest(self) -> dict:
        """What :meth:`save` writes to ``predictor.json``: the class names, the input shape and the model's SHA-256."""
        return {"class_names": self.class_names, "input_shape": list(self.input_shape),
                "model_sha256": sha256(self.tflite)}

    def save(self, directory, key: bytes | None = None) -> Path:
        """Write ``model.tflite`` and ``predictor.json`` (:meth:`manifest`) into a new or empty ``directory``. With
        a secret ``key``, the manifest also carries an HMAC-SHA256 ``signature`` of itself (:func:`sign`), which
        :meth:`load` checks: a model or class list changed by someone without the key is then refused."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise FileExistsError(f"{directory} is not empty: choose a new folder (nothing was overwritten).")
        meta = self.manifest()
        if key is not None:
            meta["signature"] = sign(_canonical(meta), key)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.tflite").write_bytes(self.tflite)
        (directory / "predictor.json").write_text(json.dumps(meta))
        return directory

    @classmethod
    def load(cls, directory, threads: int = 1, key: bytes | None = None, expected_sha256: str | None = None) \
            -> "Predictor":
        """Load what :meth:`save` wrote, checked before it is served (fail closed: any doubt is an
        :class:`IntegrityError`, nothing is half-loaded). The model's SHA-256 must match the manifest's (a
        corrupted or swapped file); with ``key``, the manifest's HMAC signature must match (someone without the
        key changed the model or the class names); with ``expected_sha256`` (from your release notes, not from the
        same folder), the model must be that one."""
        directory = Path(directory)
        model, meta = directory / "model.tflite", directory / "predictor.json"
        if not model.is_file() or not meta.is_file():
            raise FileNotFoundError(f"{directory} needs model.tflite and predictor.json (written by Predictor.save).")
        m = _read_manifest(meta)
        if key is not None:
            given = m.pop("signature", None)
            if not isinstance(given, str) or not hmac.compare_digest(given, sign(_canonical(m), key)):
                raise IntegrityError(f"{meta}: the HMAC signature is missing or does not match this key: the model "
                                     "or its manifest was changed (or signed with another key). Not served.")
        blob = verified_bytes(model, expected_sha256=m["model_sha256"])
        if expected_sha256 is not None:
            verified_bytes(blob, expected_sha256=expected_sha256)
        try:
            return cls(blob, m["class_names"], m["input_shape"], threads=threads)
        except ValueError as exc:
            raise ValueError(f"{directory} (model.tflite, predictor.json): {exc}") from None


def _canonical(meta: dict) -> bytes:
    """A manifest as the bytes its signature covers (sorted keys, no spaces, no signature)."""
    return json.dumps({k: v for k, v in meta.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":")).encode()


def _read_manifest(meta: Path) -> dict:
    """``predictor.json`` read and checked field by field; a ValueError that names the file and the field."""
    try:
        m = json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta} is not valid JSON ({exc}): save the predictor again with Predictor.save.") \
            from None
    if not isinstance(m, dict) or not {"class_names", "input_shape"} <= set(m):
        raise ValueError(f"{meta} must be a JSON object with 'class_names' and 'input_shape' (as "
                         f"Predictor.save writes it), got {str(m)[:80]}.")
    names, shape = m["class_names"], m["input_shape"]
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise ValueError(f"{meta}: 'class_names' must be a list of strings, got {names!r}.")
    if not isinstance(shape, list) or not shape or not all(isinstance(v, int) and v > 0 for v in shape):
        raise ValueError(f"{meta}: 'input_shape' must be a list of positive whole numbers such as [28, 28], "
                         f"got {shape!r}.")
    if "model_sha256" not in m:
        raise IntegrityError(f"{meta} records no 'model_sha256', so the model cannot be checked before it is "
                             "served: save the predictor again with Predictor.save (this one was written before "
                             "the course checked digests).")
    return m


# --- security: serve only a verified model, load only what cannot run code, refuse requests before allocating ---

class IntegrityError(ValueError):
    """A model file whose digest or signature does not match: it is not served (fail closed)."""


_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256(data) -> str:
    """The SHA-256 of ``data`` (bytes, or a path to a file read in 1 MiB blocks) as 64 lower-case hex digits: the
    same as ``sha256sum FILE`` prints.

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sign(data: bytes, key: bytes) -> str:
    """The HMAC-SHA256 of ``data`` under a secret ``key`` (hex). Unlike a bare digest, it cannot be recomputed by
    someone who changed the file but does not hold the key."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
        raise ValueError("key must be at least 16 secret bytes (e.g. secrets.token_bytes(32)), kept out of the "
                         "model folder and out of the code (an environment variable or a secret store).")
    return hmac.new(bytes(key), bytes(data), hashlib.sha256).hexdigest()


def verified_bytes(source, expected_sha256: str | None = None, key: bytes | None = None,
                   signature: str | None = None) -> bytes:
    """The bytes of ``source`` (a path, or bytes already read), returned only when they are the ones expected:
    their SHA-256 equals ``expected_sha256``, and/or their HMAC under ``key`` equals ``signature``.

    Fail closed: nothing to check against (no digest, no signature), a digest that is not 64 hex digits (a
    truncated one would match too much), or any mismatch is an :class:`IntegrityError`. The file is read once and
    the checked bytes are returned, so what is served is what was checked (a second read could differ).

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """
    if expected_sha256 is None and (key is None or signature is None):
        raise IntegrityError("nothing to verify against: pass the expected SHA-256 (from the release, not from the "
                             "same folder) or a key and a signature. An unverified model is not served.")
    blob = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    if expected_sha256 is not None:
        want = str(expected_sha256).strip().lower()
        if not _HEX64.fullmatch(want):
            raise IntegrityError(f"the expected SHA-256 must be 64 hex digits, got {expected_sha256!r}: a "
                                 "truncated or empty digest would match models it should refuse.")
        if not hmac.compare_digest(sha256(blob), want):
            raise IntegrityError(f"SHA-256 mismatch: the file is {sha256(blob)[:16]}..., expected {want[:16]}...: "
                                 "it was changed or is another model. Not served.")
    if key is not None or signature is not None:
        if key is None or not isinstance(signature, str) or not hmac.compare_digest(sign(blob, key),
                                                                                       signature.strip().lower()):
            raise IntegrityError("HMAC signature mismatch (or a signature without its key): the file was changed, "
                                 "or signed with another key. Not served.")
    return blob


#: Suffixes of formats whose loading runs code (pickle and the formats built on it): refused by :func:`load_artifact`.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".npy", ".npz")


def load_artifact(path, expected_sha256: str | None = None):
    """The course's one loader of a model file from outside: ``.tflite`` (returned as bytes, after its FlatBuffer
    identifier ``TFL3`` is checked) or ``.keras`` (loaded with ``keras.saving.load_model(..., safe_mode=True)``,
    which refuses a ``Lambda`` layer's pickled Python code). Anything else is refused before a byte of it is
    interpreted: above all a pickle (``.pkl``, ``.joblib``, ... or a file that starts with a pickle opcode),
    because unpickling runs whatever code the file names. With ``expected_sha256`` the file is verified first
    (:func:`verified_bytes`).

    Lesson: 08_deployment § 7 · Secured: what the server loads, and what it accepts.
    """
    path = Path(path)
    blob = verified_bytes(path, expected_sha256) if expected_sha256 is not None else path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES or blob[:1] == b"\x80":
        raise ValueError(f"{path.name} is a pickle (or a format built on one): loading it runs any code it names, "
                         "so it is refused. Ship the model as .tflite or .keras (safe_mode) instead.")
    if suffix == ".tflite":
        if len(blob) < 8 or blob[4:8] != b"TFL3":
            raise ValueError(f"{path.name} is not a TFLite FlatBuffer (no 'TFL3' identifier): refused.")
        return blob
    if suffix == ".keras":
        if blob[:4] != b"PK\x03\x04":
            raise ValueError(f"{path.name} is not a .keras archive (a zip file): refused.")
        keras = quiet_import("keras")

        with tempfile.TemporaryDirectory() as tmp:  # load the bytes that were checked, not the file again
            mine = Path(tmp) / "model.keras"
            mine.write_bytes(blob)
            return keras.saving.load_model(mine, safe_mode=True)
    raise ValueError(f"{path.name}: only .tflite and .keras models are loaded (refused: {suffix or 'no suffix'}).")


@dataclass(frozen=True)
class Limits:
    """What a request may cost before it is refused: ``max_body_bytes`` of JSON (checked against the declared
    ``Content-Length`` before a byte is read), ``max_batch`` images, ``max_depth`` of nested brackets, and the
    shape of one image. The default body limit fits ``max_batch`` images of 0..255 pixels written as JSON.

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """

    max_batch: int = 64
    image_shape: tuple = (28, 28)
    max_depth: int = 8
    max_body_bytes: int = 0  # 0: derived, 6 bytes per pixel ("255, " and a bracket to spare) plus 1 KiB

    def body_limit(self) -> int:
        """The body limit in bytes (``max_body_bytes``, or the derived one)."""
        return self.max_body_bytes or self.max_batch * int(np.prod(self.image_shape)) * 6 + 1024


class RequestRejected(ValueError):
    """A request refused by :func:`parse_request`; ``status`` is the HTTP status to answer with (400 or 413).

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _no_constants(name: str):
    raise RequestRejected(f"the request holds {name}, which is not a pixel value: send numbers 0..255.")


def parse_request(body: bytes, limits: Limits = Limits()) -> np.ndarray:
    """A JSON request ``{"images": [...]}`` (one image, or a list of them) as a float32 batch, or a
    :class:`RequestRejected` that says why, raised as early (as cheaply) as possible: a body over the limit before
    it is parsed; ``NaN`` / ``Infinity`` while parsing; brackets nested deeper than an image before the arrays are
    built; more than ``max_batch`` images before anything is allocated for them; then shape and range.

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """
    if len(body) > limits.body_limit():
        raise RequestRejected(f"the body is {len(body):,} bytes; the limit is {limits.body_limit():,}.", 413)
    raw = np.frombuffer(body, dtype=np.uint8)  # brackets only: numbers cannot hold '[' in a valid request
    steps = (raw == 0x5B).astype(np.int32) - (raw == 0x5D)
    if len(steps) and int(np.cumsum(steps).max()) > limits.max_depth:  # before json.loads recurses into it
        raise RequestRejected(f"the JSON is nested more than {limits.max_depth} levels deep: not an image batch.")
    try:
        doc = json.loads(body, parse_constant=_no_constants)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestRejected(f"the body is not valid JSON ({exc}).") from None
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list) or not images:
        raise RequestRejected('send a JSON object {"images": [...]} with at least one image.')
    rank = len(limits.image_shape)
    single = _depth(images) == rank
    n = 1 if single else len(images)
    if n > limits.max_batch:
        raise RequestRejected(f"{n} images in one request; the limit is {limits.max_batch}: split the batch.", 413)
    try:
        x = np.asarray([images] if single else images, dtype=np.float32)
    except (ValueError, TypeError):
        raise RequestRejected(f"every image must be a {limits.image_shape} grid of numbers (ragged or non-numeric "
                              "rows were sent).") from None
    if x.shape[1:] != tuple(limits.image_shape):
        raise RequestRejected(f"images must have shape {tuple(limits.image_shape)}, got {x.shape[1:]}.")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise RequestRejected("pixels must be finite numbers in 0..255.")
    return x


def _depth(v) -> int:
    """How many list levels the first element chain of ``v`` has (``[[1, 2]]`` has 2)."""
    d = 0
    while isinstance(v, list) and v:
        v, d = v[0], d + 1
    return d


def serve_http(predictor: Predictor, port: int = 0, limits: Limits = Limits()):
    """A small JSON server for ``predictor`` on **127.0.0.1 only** (loopback: nothing off this machine reaches it),
    in a background thread. ``POST /predict`` with ``{"images": [...]}`` answers
    ``{"labels", "classes", "confidence"}``; ``GET /health`` answers the model's SHA-256. A body whose declared
    ``Content-Length`` is over the limit is refused with 413 **before it is read**; every other bad request gets
    400 and the reason (:func:`parse_request`). Requests are served one at a time (one interpreter). Returns the
    server: ``server.url``, and ``server.shutdown(); server.server_close()`` (or use it in a ``with`` block).

    Lesson: 08_deployment § ✏️ Exercise 8.4: serve only the released model.
    """
    digest = sha256(predictor.tflite)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, doc: dict) -> None:
            out = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self):  # noqa: N802 (the name http.server calls)
            if self.path != "/health":
                return self._answer(404, {"error": "GET /health or POST /predict"})
            self._answer(200, {"status": "ok", "model_sha256": digest})

        def do_POST(self):  # noqa: N802
            if self.path != "/predict":
                return self._answer(404, {"error": "POST /predict"})
            try:
                size = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._answer(411, {"error": "a Content-Length header is required."})
            if size < 0 or size > limits.body_limit():
                self.close_connection = True  # the body is never read
                return self._answer(413, {"error": f"the body would be {size:,} bytes; the limit is "
                                                   f"{limits.body_limit():,}."})
            try:
                out = predictor.predict(parse_request(self.rfile.read(size), limits))
            except RequestRejected as exc:
                return self._answer(exc.status, {"error": str(exc)})
            except (ValueError, TypeError) as exc:
                return self._answer(400, {"error": str(exc)})
            self._answer(200, {"labels": out["label"].tolist(), "classes": out["class"].tolist(),
                               "confidence": [round(float(c), 4) for c in out["confidence"]]})

        def log_message(self, *args):  # quiet: a notebook is not a server log
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True, name="mlcourse-serve").start()
    return server


def benchmark(predictor: Predictor, x, batch_sizes=(1, 8, 64, 256), repeats: int = 20) -> pd.DataFrame:
    """Median latency of one ``predict_proba`` call at each batch size, and the throughput it gives.

    Lesson: 08_deployment § 4 · Benchmarked.
    """
    rows = []
    for b in tqdm(batch_sizes, desc="batch sizes"):
        batch = np.asarray(x[:b])
        predictor.predict_proba(batch, batch_size=b)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predictor.predict_proba(batch, batch_size=b)
            times.append(time.perf_counter() - t0)
        ms = 1000 * float(np.median(times))
        rows.append({"batch size": len(batch), "latency ms (median)": ms, "images/s": len(batch) / ms * 1000})
    return pd.DataFrame(rows)


class Monitor:
    """Drift monitor for a deployed image classifier.

    ``Monitor(predictor, reference_images)`` computes the reference: image features and predicted classes
    at deployment time. ``check(images, window=...)`` compares a new window with it and logs one row: the
    number of input features in alarm (PSI above ``psi_threshold``; KS is reported in ``reports[window]``),
    the PSI of the predicted-class distribution and whether it is in alarm, and the accuracy when labels
    are given (usually they arrive later, or never).

    Lesson: 08_deployment § ✏️ Exercise 8.3: the prediction-drift alarm.
    """

    def __init__(self, predictor: Predictor, reference_images, psi_threshold: float = 0.2,
                 prediction_psi_threshold: float = 0.2):
        if len(reference_images) < 100:
            raise ValueError(f"the reference window has {len(reference_images)} images: use at least 100 for "
                             "stable histograms.")
        self.predictor = predictor
        self.psi_threshold = psi_threshold
        self.prediction_psi_threshold = prediction_psi_threshold
        self.reference = drift.image_features(reference_images)
        self.reference_pred = predictor.predict(reference_images)["label"].to_numpy()
        self.log: list[dict] = []
        self.reports: dict[str, pd.DataFrame] = {}  # the per-feature drift report of each window

    def check(self, images, window: str = "", labels=None) -> dict:
        """Compare one window of traffic with the reference; returns (and logs) the summary row."""
        current = drift.image_features(images)
        report = drift.drift_report(self.reference, current, feature_names=list(current.columns),
                                    psi_threshold=self.psi_threshold)
        pred = self.predictor.predict(images)["label"].to_numpy()
        n_classes = len(self.predictor.class_names)
        pred_psi = drift.prediction_drift(self.reference_pred, pred, n_classes=n_classes)
        row = {"window": window or f"window {len(self.log)}", "images": len(images),
               "input alarms": int(report["alarm"].sum()), "features": len(report),
               "prediction PSI": pred_psi, "prediction alarm": bool(pred_psi > self.prediction_psi_threshold),
               "accuracy": float(np.mean(pred == np.asarray(labels))) if labels is not None else np.nan}
        row["alarm"] = bool(row["input alarms"] > 0 or row["prediction alarm"])
        self.reports[row["window"]] = report
        self.log.append(row)
        return row

    def history(self) -> pd.DataFrame:
        """Every check so far, one row each."""
        return pd.DataFrame(self.log)

    def plot(self, ax=None):
        """Prediction PSI (bars, red when in alarm) and accuracy (line, if labels were given) per window."""
        import matplotlib.pyplot as plt

        h = self.history()
        if h.empty:
            raise ValueError("nothing to plot yet: call check() on some windows first.")
        ax = ax or plt.subplots(figsize=(9, 3.5))[1]
        colors = ["tab:red" if a else "tab:green" for a in h["alarm"]]
        ax.bar(range(len(h)), h["prediction PSI"], color=colors)
        ax.axhline(self.prediction_psi_threshold, color="k", ls=":", label="prediction PSI threshold")
        ax.set(xticks=range(len(h)), ylabel="prediction PSI", xlabel="traffic window",
               title="Monitoring: red = alarm (inputs or predictions)")
        ax.set_xticklabels(h["window"], rotation=30, ha="right")
        if h["accuracy"].notna().any():
            ax2 = ax.twinx()
            ax2.plot(range(len(h)), h["accuracy"], "ko-", label="accuracy (labels arrive later)")
            ax2.set(ylabel="accuracy", ylim=(0, 1))
            ax2.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        return ax


# --- retraining: a candidate trained on the new days, shadowed on the same traffic, promoted only when it wins ---

def retrain(model, x_new, y_new, epochs: int = 2, learning_rate: float = 3e-4, batch_size: int = 128, seed: int = 0):
    """A candidate: a copy of the serving ``model`` (same architecture and weights; the serving one is left as it
    is) fine-tuned on the new days' labelled images ``(x_new, y_new)`` at a small ``learning_rate``. Trained on the
    new days alone, as a sliding-window retraining job does: :func:`shadow` then shows whether that was wise.

    Lesson: 08_deployment § 6 · Retrained, shadowed, promoted (or not).
    """
    if len(x_new) != len(y_new) or len(x_new) == 0:
        raise ValueError(f"x_new and y_new must be non-empty and of the same length, got {len(x_new)} and "
                         f"{len(y_new)}.")
    set_seed(seed)
    hp = {**models.get_hp(model), "learning_rate": float(learning_rate)}
    candidate = models.copy_weights(model, models.build_model(hp, name="candidate"))
    candidate.fit(np.asarray(x_new), np.asarray(y_new), epochs=epochs, batch_size=batch_size, verbose=0,
                  callbacks=[models.epoch_bar(candidate, epochs, desc="retraining")])
    return candidate


def shadow(serving: Predictor, candidate: Predictor, days: dict) -> pd.DataFrame:
    """Shadow deployment: on each day's traffic (``{day: (images, labels)}``; the labels arrive later) the serving
    model answers and the candidate answers the same requests, logged only. One row per day: the accuracy of each,
    the candidate's lead in points, and how often the two agree.

    Lesson: 08_deployment § 6 · Retrained, shadowed, promoted (or not).
    """
    if not days:
        raise ValueError("give at least one day of traffic: {day: (images, labels)}.")
    rows = []
    for day, (x, y) in days.items():
        a = serving.predict(x)["label"].to_numpy()
        b = candidate.predict(x)["label"].to_numpy()
        y = np.asarray(y)
        rows.append({"day": day, "images": len(y), "serving accuracy": float(np.mean(a == y)),
                     "candidate accuracy": float(np.mean(b == y)),
                     "candidate lead (points)": 100 * float(np.mean(b == y) - np.mean(a == y)),
                     "agreement": float(np.mean(a == b))})
    return pd.DataFrame(rows)


def promotion(table: pd.DataFrame, margin_points: float = 0.5, confidence: float = 0.95) -> tuple[bool, str]:
    """Promote the candidate only when its lead over the serving model (per shadow day, :func:`shadow`) is more than
    ``margin_points`` with ``confidence``: the lower end of the t-interval over days is above the margin. Returns
    ``(promote, sentence)``; the sentence carries the mean lead, the interval and the decision (from the numbers,
    never assumed). Fewer than two days measure no spread, so they never promote.

    Lesson: 08_deployment § 6 · Retrained, shadowed, promoted (or not).
    """
    diffs = np.asarray(table["candidate lead (points)"], dtype=float) / 100
    iv = stats.seed_interval(diffs, confidence)
    said = stats.difference_verdict(diffs, "candidate", "serving", confidence=confidence, over="day")
    promote = bool(iv.n >= 2 and iv.lo * 100 > margin_points)
    if promote:
        why = f"PROMOTED: the interval's lower end {iv.lo * 100:+.2f} is above the {margin_points:.2f}-point margin."
    elif iv.n < 2:
        why = "NOT promoted: one day measures no spread."
    else:
        why = (f"NOT promoted: the interval's lower end {iv.lo * 100:+.2f} is not above the {margin_points:.2f}-point "
               "margin; the serving model stays.")
    return promote, f"{said} {why}"


def warm_cache(ds, size: str, seed: int = 0) -> None:
    """Train and cache 08's deployed model at ``size``'s sizes (:data:`SIZES`), with the hyperparameters 08 would
    pick (your own earlier weeks' choice when there is one) (``make workshop``). At smoke size :data:`TUNED_HP`
    is cached as well when a choice was found (cheap there; a test may run the notebook with an empty work
    folder)."""
    size = settings.size(size)
    table = sizes(size)
    x, y = data.stratified_subset(ds.x_train, ds.y_train, table["N_TRAIN"], seed=seed)
    hp, _ = deployment_hp(work_dir(size))
    for h in [hp] + ([TUNED_HP] if size == "smoke" and hp != TUNED_HP else []):
        deployment_model(x, y, h, epochs=table["EPOCHS"], seed=seed)

# ------------------------------------------------------------------------------------------------ headlines
#: The public figures 08's headlines are judged against.
REFERENCES = {"post-training quantization": PTQ_REFERENCE}


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``08_deployment`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    dep = h.rows("deployed model: float32 vs int8 (LiteRT)")
    f32, i8 = row(dep, variant="float32"), row(dep, variant="int8")
    if f32 and i8:
        serve = h.rows("serving benchmark (int8, LiteRT, 1 thread)") or []
        fastest = max(serve, key=lambda r: r["images/s"], default=None)
        h.add("deployed model: int8 vs float32 (LiteRT)",
              f"accuracy {i8['accuracy']:.4f} vs {f32['accuracy']:.4f}, {f32['bytes'] / i8['bytes']:.1f}x smaller, "
              f"{i8['latency_ms']:.3f} vs {f32['latency_ms']:.3f} ms per image"
              + (f"; {fastest['images/s']:,.0f} images/s at batch {fastest['batch size']}" if fastest else ""),
              REFERENCES["post-training quantization"], f32["bytes"] / i8["bytes"])
    mon = h.rows("monitoring: alarms per traffic window")
    if mon:
        normal = [r for r in mon if "normal" in r["window"]]
        drifted = [r for r in mon if "normal" not in r["window"]]
        h.add("monitoring rehearsal: alarms",
              f"{sum(r['alarm'] for r in normal)}/{len(normal)} false alarms on normal days, "
              f"{sum(r['alarm'] for r in drifted)}/{len(drifted)} drifted days caught")
    h.add_rows("retraining in shadow: the candidate's lead over the serving model, promoted?",
               "retraining: shadow comparison and promotion",
               lambda r: f"{r['case']}: {r['lead (points)']:+.2f} points [{r['95% interval lo']:+.2f}, "
               f"{r['95% interval hi']:+.2f}] -> {'promoted' if r['promoted'] else 'kept'}")
    return h.out
