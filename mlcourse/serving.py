"""Serving and monitoring a compressed model: what happens after the notebook.

Notebook: ``07_deployment`` writes the converter, the interpreter and the serving function out in its
cells; this module is their tested production version.

* :class:`Predictor`: a TFLite model behind one small prediction function. It checks its input (shape,
  type, range, NaN) and says what to do when it is wrong, returns labels, class names and confidence, and
  saves / loads itself as ``model.tflite`` + ``predictor.json`` (never over an existing one).
* :func:`benchmark`: latency per request and throughput at several batch sizes.
* :class:`Monitor`: the "monitor after deployment" step. It keeps a reference window (inputs and
  predictions at deployment time); each new window of traffic is compared with it on cheap input features
  (PSI and KS per feature, :mod:`mlcourse.drift`) and on the distribution of predicted classes, which needs
  no labels. Every check is logged, so the alarms can be plotted over time.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["warm_cache", "SIZES", "sizes", "TUNED_HP", "deployment_hp", "deployment_model", "Predictor", "benchmark",
           "Monitor"]

#: A fixed CNN (421,642 parameters), the fallback when no choice of your own (02_nas, 01_tuning) is found. It is
#: not 01's current winner: the run says which model it deploys and from where.
TUNED_HP = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.1,
            "learning_rate": 0.0033473086882182972}


#: 07_deployment's parameter defaults, one table read by the notebook's parameters cell and by :func:`warm_cache`.
SIZES = {
    "smoke": {"N_TRAIN": 2_000, "EPOCHS": 1, "N_CALIBRATION": 200, "ROUNDS": 5, "WINDOW": 1_000, "NORMAL_DAYS": 10},
    "full": {"N_TRAIN": 60_000, "EPOCHS": 6, "N_CALIBRATION": 500, "ROUNDS": 15, "WINDOW": 1_000, "NORMAL_DAYS": 40},
}


def sizes(smoke: bool, **given) -> dict:
    """07's defaults for this mode (:data:`SIZES`), with every value in ``given`` that is not None put over them."""
    from mlcourse.runtime import pick_sizes

    table = pick_sizes(SIZES, smoke, given)
    return table


def deployment_hp(work_dir=None) -> tuple[dict, str]:
    """The hyperparameters to deploy: your own earlier weeks' choice (:func:`mlcourse.results.chosen_hp`:
    02_nas's, else 01_tuning's) when there is one, else :data:`TUNED_HP`. Returns ``(hp, where it came from)``."""
    from mlcourse.results import chosen_hp

    return chosen_hp(work_dir, TUNED_HP,
                     "mlcourse.serving.TUNED_HP (a fixed fallback CNN: no 02_nas or 01_tuning choice found)")


def deployment_model(x, y, hp: dict | None = None, epochs: int = 6, seed: int = 0):
    """The model to deploy, trained on ``(x, y)`` (Keras 3), from the workshop cache when trained before."""
    from mlcourse.cache import trained_model

    return trained_model("deployment", x, y, hp or TUNED_HP, epochs, seed=seed, model_name="deployed")


class Predictor:
    """A TFLite classifier for 28 x 28 grey images (raw 0-255 pixels), behind ``predict``.

        >>> p = Predictor(tflite_bytes, class_names=data.CLASS_NAMES)
        >>> p.predict(images)          # DataFrame: label, class, confidence
    """

    def __init__(self, tflite: bytes, class_names=None, input_shape=(28, 28), threads: int = 1):
        from mlcourse.compression import interpreter

        if not isinstance(tflite, (bytes, bytearray)) or len(tflite) < 16:
            raise ValueError("tflite must be the bytes of a .tflite model (from compression.to_tflite).")
        self.tflite = bytes(tflite)
        try:
            self.input_shape = tuple(int(v) for v in input_shape)
        except (TypeError, ValueError):
            raise ValueError(f"input_shape must be a tuple of whole numbers such as (28, 28), got {input_shape!r}.") \
                from None
        self._interp = interpreter(self.tflite, threads=threads)
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
        from mlcourse.compression import run_interpreter

        batch_size = self._batch_size(batch_size)
        return run_interpreter(self._interp, self._check(images), batch_size=batch_size)

    def predict(self, images, batch_size: int = 256) -> pd.DataFrame:
        """One row per image: ``label`` (int), ``class`` (name) and ``confidence`` (top probability)."""
        p = self.predict_proba(images, batch_size)
        labels = p.argmax(axis=1)
        return pd.DataFrame({"label": labels, "class": [self.class_names[i] for i in labels],
                             "confidence": p.max(axis=1)})

    def save(self, directory) -> Path:
        """Write ``model.tflite`` and ``predictor.json`` into a new or empty ``directory``."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise FileExistsError(f"{directory} is not empty: choose a new folder (nothing was overwritten).")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.tflite").write_bytes(self.tflite)
        (directory / "predictor.json").write_text(json.dumps({"class_names": self.class_names,
                                                              "input_shape": list(self.input_shape)}))
        return directory

    @classmethod
    def load(cls, directory, threads: int = 1) -> "Predictor":
        """Load what :meth:`save` wrote."""
        directory = Path(directory)
        model, meta = directory / "model.tflite", directory / "predictor.json"
        if not model.is_file() or not meta.is_file():
            raise FileNotFoundError(f"{directory} needs model.tflite and predictor.json (written by Predictor.save).")
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
        try:
            return cls(model.read_bytes(), names, shape, threads=threads)
        except ValueError as exc:
            raise ValueError(f"{directory} (model.tflite, predictor.json): {exc}") from None


def benchmark(predictor: Predictor, x, batch_sizes=(1, 8, 64, 256), repeats: int = 20) -> pd.DataFrame:
    """Median latency of one ``predict_proba`` call at each batch size, and the throughput it gives."""
    from tqdm.auto import tqdm

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
    """

    def __init__(self, predictor: Predictor, reference_images, psi_threshold: float = 0.2,
                 prediction_psi_threshold: float = 0.2):
        from mlcourse import drift

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
        from mlcourse import drift

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


def warm_cache(ds, smoke: bool, seed: int = 0) -> None:
    """Train and cache 07's deployed model at the notebook's default sizes, with the hyperparameters 07 would
    pick (your own earlier weeks' choice when there is one) (``make workshop``). In smoke mode :data:`TUNED_HP`
    is cached as well when a choice was found (cheap there; a test may run the notebook with an empty work
    folder)."""
    from mlcourse import data
    from mlcourse.runtime import work_dir

    size = sizes(smoke)
    x, y = data.stratified_subset(ds.x_train, ds.y_train, size["N_TRAIN"], seed=seed)
    hp, _ = deployment_hp(work_dir(smoke))
    # smoke (tests, CI): the fallback too, since a test may run the notebook with an empty work folder
    for h in [hp] + ([TUNED_HP] if smoke and hp != TUNED_HP else []):
        deployment_model(x, y, h, epochs=size["EPOCHS"], seed=seed)
