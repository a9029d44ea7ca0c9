"""Monitoring before deployment: measure drift between the data you trained on and the data you get.

You cannot watch production before you deploy, but you can rehearse it: make a shifted copy of your
data (darker photos, a new camera, a new customer group), and check that your monitors raise an alarm
while the model's accuracy falls.

* :func:`psi` : Population Stability Index of one feature (< 0.1 stable, 0.1-0.2 watch, > 0.2 act);
* :func:`ks` : two-sample Kolmogorov-Smirnov test of one feature;
* :func:`drift_report` : both, for every feature, with an alarm column;
* :func:`image_features`, :func:`shift_images` : cheap features to monitor images, and a shifted copy;
* :func:`prediction_drift` : PSI of the predicted class distribution (needs no labels).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["psi", "ks", "drift_report", "image_features", "shift_images", "prediction_drift",
           "PSI_WATCH", "PSI_ACT"]

PSI_WATCH, PSI_ACT = 0.1, 0.2
_EPS = 1e-4


def _1d(a, name):
    a = np.asarray(a, dtype=float)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values: clean them first.")
    return a


def psi(expected, actual, bins: int = 10) -> float:
    """Population Stability Index of ``actual`` against ``expected`` (the training data).

    Bins are the quantiles of ``expected`` (so each holds about the same share of it); empty bins get a
    small epsilon. ``PSI = sum((a - e) * ln(a / e))`` over bin shares.
    """
    e, a = _1d(expected, "expected"), _1d(actual, "actual")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}.")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e_share = np.histogram(e, edges)[0] / len(e)
    a_share = np.histogram(a, edges)[0] / len(a)
    e_share, a_share = np.clip(e_share, _EPS, None), np.clip(a_share, _EPS, None)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def ks(expected, actual) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    from scipy.stats import ks_2samp

    res = ks_2samp(_1d(expected, "expected"), _1d(actual, "actual"))
    return float(res.statistic), float(res.pvalue)


def drift_report(reference, current, feature_names=None, psi_threshold: float = PSI_ACT,
                 ks_alpha: float = 0.01) -> pd.DataFrame:
    """PSI and KS for every column of ``reference`` vs ``current``; ``alarm`` when PSI > threshold.

    KS p-values shrink with sample size (any tiny shift is "significant" on big data), so the alarm uses
    PSI, an effect size; the KS columns are reported alongside.

    Lesson: 00_workflow § 6 · Monitoring, rehearsed before deployment.
    """
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    if ref.ndim == 1:
        ref, cur = ref[:, None], cur[:, None]
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference {ref.shape} and current {cur.shape} must be 2-D with the same columns.")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(ref.shape[1])]
    if len(names) != ref.shape[1]:
        raise ValueError(f"{len(names)} feature names for {ref.shape[1]} columns.")
    rows = []
    for i, n in enumerate(names):
        stat, p = ks(ref[:, i], cur[:, i])
        v = psi(ref[:, i], cur[:, i])
        rows.append({"feature": n, "psi": v, "ks_stat": stat, "ks_pvalue": p,
                     "ks_significant": p < ks_alpha, "alarm": v > psi_threshold})
    return pd.DataFrame(rows)


def image_features(x) -> pd.DataFrame:
    """Cheap per-image statistics worth monitoring: brightness, contrast, ink share, centre of mass.

    Lesson: 00_workflow § ✏️ Exercise 0.3: a leak-free pipeline, evaluated by group; also used in 08_deployment.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"Expected images (n, height, width), got shape {x.shape}.")
    total = x.sum(axis=(1, 2)) + 1e-6
    rows, cols = np.arange(x.shape[1]), np.arange(x.shape[2])
    return pd.DataFrame({
        "mean_brightness": x.mean(axis=(1, 2)),
        "contrast": x.std(axis=(1, 2)),
        "ink_fraction": (x > 32).mean(axis=(1, 2)),
        "center_mass_row": (x.sum(axis=2) * rows).sum(axis=1) / total,
        "center_mass_col": (x.sum(axis=1) * cols).sum(axis=1) / total,
    })


def shift_images(x, brightness: float = 0.0, contrast: float = 1.0, noise: float = 0.0,
                 shift: int = 0, seed: int = 0) -> np.ndarray:
    """A shifted copy of uint8 images: scale contrast, add brightness and Gaussian noise, translate right.

    Lesson: 00_workflow § 6 · Monitoring, rehearsed before deployment; also used in 08_deployment.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(x, dtype=np.float32) * contrast + brightness
    if noise:
        y = y + rng.normal(0, noise, size=y.shape)
    if shift:
        y = np.roll(y, shift, axis=2)
    return np.clip(y, 0, 255).astype(np.uint8)


def _labels(a, name):
    a = np.asarray(a)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of predicted class labels, got shape {a.shape}.")
    if a.dtype.kind not in "iub":
        f = np.asarray(a, dtype=float)
        if not np.isfinite(f).all() or not np.array_equal(f, np.round(f)):
            raise ValueError(f"{name} holds non-integer values (e.g. {f[f != np.round(f)][:3].tolist()}): pass "
                             "predicted class labels, e.g. probs.argmax(axis=1), not probabilities or scores.")
        a = f
    if a.min() < 0:
        raise ValueError(f"{name} holds negative labels ({int(a.min())}): class labels are 0, 1, ..., n_classes-1.")
    return a.astype(int)


def prediction_drift(pred_ref, pred_cur, n_classes: int | None = None) -> float:
    """PSI between two distributions of predicted classes (integer labels); needs no ground truth.

    Lesson: 00_workflow § 6 · Monitoring, rehearsed before deployment; also used in 08_deployment.
    """
    a, b = _labels(pred_ref, "pred_ref"), _labels(pred_cur, "pred_cur")
    top = int(max(a.max(), b.max()))
    if n_classes is not None and top >= n_classes:
        raise ValueError(f"n_classes={n_classes} but the labels go up to {top}: pass n_classes={top + 1} or more "
                         "(labels are 0 .. n_classes-1), or leave it None.")
    k = n_classes or top + 1
    e = np.clip(np.bincount(a, minlength=k) / len(a), _EPS, None)
    c = np.clip(np.bincount(b, minlength=k) / len(b), _EPS, None)
    return float(np.sum((c - e) * np.log(c / e)))
