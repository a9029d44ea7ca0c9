"""Evaluating a model honestly: the one metric, splits that do not leak, baselines, fitting diagnosis.

Every function *measures*; nothing here returns a number it did not compute.

* :func:`precision_recall_f1`, :func:`threshold_report`, :func:`roc_vs_pr` : metrics under class imbalance;
* :func:`group_split_leakage`, :func:`time_split_leakage`, :func:`fold_prevalence_spread` : what a blind
  random split hides;
* :func:`baseline_table` : fit several models (a dummy first) and compare accuracy and fit time;
* :func:`diagnose_fit`, :func:`complexity_curve` : under- vs over-fitting.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["precision_recall_f1", "threshold_report", "roc_vs_pr", "group_split_leakage",
           "time_split_leakage", "fold_prevalence_spread", "baseline_table", "diagnose_fit",
           "complexity_curve"]


def _binary(y, name):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}.")
    if not np.isin(y, [0, 1]).all():
        raise ValueError(f"{name} must hold only 0 and 1 (binary labels).")
    return y.astype(int)


def precision_recall_f1(y_true, y_pred) -> tuple[float, float, float]:
    """Precision, recall and F1 of binary predictions (0 where undefined, as scikit-learn's ``zero_division=0``)."""
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape.")
    tp = int(((y_pred == 1) & (y_true == 1)).sum())
    fp = int(((y_pred == 1) & (y_true == 0)).sum())
    fn = int(((y_pred == 0) & (y_true == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def threshold_report(y_true, scores, thresholds=(0.1, 0.3, 0.5, 0.7, 0.9)) -> pd.DataFrame:
    """Precision, recall, F1 and the share flagged, at each decision threshold on ``scores``."""
    scores = np.asarray(scores, dtype=float)
    rows = []
    for t in thresholds:
        pred = (scores >= t).astype(int)
        p, r, f = precision_recall_f1(y_true, pred)
        rows.append({"threshold": t, "precision": p, "recall": r, "f1": f, "flagged": pred.mean()})
    return pd.DataFrame(rows)


def roc_vs_pr(positive_rates=(0.5, 0.1, 0.01), n_samples: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Measure ROC-AUC and PR-AUC of one kind of model as positives get rarer.

    For each rate, makes a binary problem (:func:`mlcourse.data.make_imbalanced`) with a stratified split,
    fits a logistic regression, and scores it and a random scorer on the test set. ROC-AUC hardly moves;
    PR-AUC (average precision) falls with the rate, as does precision at a fixed recall: the share of
    alarms that are real, which is what the people who act on alarms live with.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
    from sklearn.model_selection import train_test_split

    from mlcourse.data import make_imbalanced

    rng = np.random.default_rng(seed)
    rows = []
    for rate in positive_rates:
        X, y = make_imbalanced(n_samples=n_samples, positive_rate=rate, class_sep=0.8, seed=seed)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
        s = LogisticRegression(max_iter=1000).fit(Xtr, ytr).predict_proba(Xte)[:, 1]
        noise = rng.random(len(yte))
        prec, rec, _ = precision_recall_curve(yte, s)
        rows.append({
            "positive_rate": rate,
            "test_positives": int(yte.sum()),
            "roc_auc": roc_auc_score(yte, s),
            "pr_auc": average_precision_score(yte, s),
            "precision_at_recall_0.8": float(prec[rec >= 0.8].max()),
            "random_roc_auc": roc_auc_score(yte, noise),
            "random_pr_auc": average_precision_score(yte, noise),
        })
    return pd.DataFrame(rows)


def group_split_leakage(X, y, groups, model, n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Cross-validated accuracy with a random split vs a grouped split, and on groups never seen.

    ``groups`` marks near-duplicates (same product, same patient). A random KFold puts one group on both
    sides, so it rewards memorising the group: its score is higher than what new groups will see.
    The last row is the truth: train on 80 % of the groups, test on the other 20 %.
    """
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, cross_val_score

    X, y, groups = np.asarray(X), np.asarray(y), np.asarray(groups)
    if not len(X) == len(y) == len(groups):
        raise ValueError(f"X, y and groups differ in length: {len(X)}, {len(y)}, {len(groups)}.")
    rows = []
    for name, cv, g in (("random KFold (leaks)", KFold(n_splits, shuffle=True, random_state=seed), None),
                        ("GroupKFold", GroupKFold(n_splits), groups)):
        scores = cross_val_score(clone(model), X, y, groups=g, cv=cv)
        rows.append({"validation": name, "accuracy": scores.mean(), "std": scores.std()})
    tr, te = next(GroupShuffleSplit(1, test_size=0.2, random_state=seed + 1).split(X, y, groups))
    acc = clone(model).fit(X[tr], y[tr]).score(X[te], y[te])
    rows.append({"validation": "new groups (the truth)", "accuracy": acc, "std": np.nan})
    return pd.DataFrame(rows)


def time_split_leakage(X, y, t, model, n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """R^2 with a shuffled KFold vs a time-ordered split, and on the future (the last 20 % of time).

    With drifting data, shuffling lets the model see the future while it is validated; TimeSeriesSplit
    always validates on what comes after training, as deployment will.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, TimeSeriesSplit, cross_val_score

    order = np.argsort(np.asarray(t), kind="stable")
    X, y = np.asarray(X)[order], np.asarray(y)[order]
    cut = int(0.8 * len(y))
    rows = []
    for name, cv in (("shuffled KFold (leaks)", KFold(n_splits, shuffle=True, random_state=seed)),
                     ("TimeSeriesSplit", TimeSeriesSplit(n_splits))):
        scores = cross_val_score(clone(model), X[:cut], y[:cut], cv=cv, scoring="r2")
        rows.append({"validation": name, "r2": scores.mean(), "std": scores.std()})
    r2 = clone(model).fit(X[:cut], y[:cut]).score(X[cut:], y[cut:])
    rows.append({"validation": "the future (the truth)", "r2": r2, "std": np.nan})
    return pd.DataFrame(rows)


def fold_prevalence_spread(y, n_splits: int = 5, repeats: int = 20, seed: int = 0) -> pd.DataFrame:
    """How much the positive rate varies between validation folds: KFold vs StratifiedKFold.

    With rare positives, a plain KFold can give folds with almost none, so per-fold metrics swing wildly.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    y = _binary(y, "y")
    rows = []
    for name, make in (("KFold", KFold), ("StratifiedKFold", StratifiedKFold)):
        rates = []
        for r in range(repeats):
            cv = make(n_splits, shuffle=True, random_state=seed + r)
            rates += [y[te].mean() for _, te in cv.split(np.zeros(len(y)), y)]
        rates = np.array(rates)
        rows.append({"splitter": name, "mean_rate": rates.mean(), "min_rate": rates.min(),
                     "max_rate": rates.max(), "std_rate": rates.std(),
                     "folds_without_positives": int((rates == 0).sum())})
    return pd.DataFrame(rows)


def baseline_table(models: dict, X_train, y_train, X_test, y_test) -> pd.DataFrame:
    """Fit each ``{name: estimator}`` and report test accuracy and fit/predict time (a dummy goes first)."""
    rows = []
    for name, est in models.items():
        t0 = time.perf_counter()
        est.fit(X_train, y_train)
        t1 = time.perf_counter()
        acc = est.score(X_test, y_test)
        t2 = time.perf_counter()
        rows.append({"model": name, "test_accuracy": acc, "fit_s": t1 - t0, "predict_s": t2 - t1})
    return pd.DataFrame(rows)


def diagnose_fit(train_score: float, val_score: float, target: float | None = None,
                 gap: float = 0.05) -> str:
    """Name the fitting regime from a train and a validation score (higher is better).

    * ``"overfitting"``: train beats validation by more than ``gap``;
    * ``"underfitting"``: the gap is small but the train score itself is below ``target`` (the score the
      use case needs; without a target, nothing is called underfitting);
    * ``"good fit"`` otherwise.
    """
    for name, v in (("train_score", train_score), ("val_score", val_score)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v}.")
    if train_score - val_score > gap:
        return "overfitting"
    if target is not None and train_score < target:
        return "underfitting"
    return "good fit"


def complexity_curve(model, param_name: str, param_range, X, y, cv: int = 5, target=None,
                     gap: float = 0.05) -> pd.DataFrame:
    """Train and validation scores as one hyperparameter varies, with :func:`diagnose_fit` for each."""
    from sklearn.model_selection import StratifiedKFold, validation_curve

    tr, va = validation_curve(model, X, y, param_name=param_name, param_range=list(param_range),
                              cv=StratifiedKFold(cv, shuffle=True, random_state=0))
    df = pd.DataFrame({param_name: list(param_range), "train": tr.mean(1), "validation": va.mean(1)})
    df["diagnosis"] = [diagnose_fit(a, b, target, gap) for a, b in zip(df["train"], df["validation"])]
    return df
