"""Ensembles with scikit-learn, measured: bagging, boosting and stacking side by side.

Notebook: ``07_distillation_ensembles`` calls the scikit-learn classes directly; :func:`default_models` is the
tested version of its line-up.

* **Bagging** (random forest): many deep trees, each on a bootstrap sample; averaging cuts *variance*.
  Trees are independent, so training parallelises (``n_jobs``).
* **Boosting** (gradient boosting, AdaBoost): shallow trees fitted one after another, each correcting the
  previous ones; cuts the *bias* of its shallow base learner (compared with that base learner alone,
  :func:`base_learners`). Sequential, so said to be slower to train (measured against the random forest).
* **XGBoost** (``xgboost.XGBClassifier``): gradient boosting with second-order steps, regularised leaves and a
  histogram tree builder (``tree_method="hist"``), threads set by ``n_jobs``; with ``early_stopping_rounds`` it
  stops adding trees once a validation set (``eval_set`` in ``fit``) stops improving (:func:`xgboost_model`).
* **Stacking**: a meta-model learns how to combine different base models from their out-of-fold predictions.

:func:`compare` trains each and returns one table: accuracy, train time, predict time, size on disk
(pickled; ``fit_params`` gives a model its own ``fit`` arguments, XGBoost's validation set), :func:`bias_variance`
estimates the two error terms over bootstrap re-trainings, and
:func:`check_claims` sets the claims above against those measurements, one row per claim.
"""
from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd

__all__ = ["default_models", "xgboost_model", "base_learners", "BASE_LEARNER", "compare", "bias_variance",
           "check_claims", "model_size"]

#: the single tree each boosted model of :func:`default_models` is built from: the fair bias comparison (a fully
#: grown tree has little bias; boosting's claim is that it cuts the bias of its own shallow base learner)
BASE_LEARNER = {"AdaBoost": "decision tree (depth 3)", "gradient boosting": "decision tree (depth 3)",
                "hist gradient boosting": "decision tree (31 leaves)", "XGBoost": "decision tree (depth 3)"}


def xgboost_model(seed: int = 0, n_estimators: int = 100, n_jobs: int | None = 1,
                  early_stopping_rounds: int | None = 10, max_depth: int = 3, learning_rate: float = 0.3):
    """``xgboost.XGBClassifier`` with the histogram tree builder (``tree_method="hist"``), ``n_jobs`` threads and,
    when ``early_stopping_rounds`` is set, early stopping on the validation set given to ``fit`` as
    ``eval_set=[(X_val, y_val)]`` (the booster keeps the best round; predictions use it). Trees of ``max_depth`` 3,
    like the scikit-learn gradient boosting of :func:`default_models`."""
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate,
                         tree_method="hist", n_jobs=n_jobs, random_state=seed,
                         early_stopping_rounds=early_stopping_rounds, eval_metric="mlogloss")


def default_models(seed: int = 0, n_estimators: int = 100, n_jobs: int | None = None) -> dict:
    """The course's line-up: a single tree, bagging, random forest, AdaBoost, gradient boosting
    (classic and histogram-based), XGBoost (:func:`xgboost_model`, no early stopping here: :func:`compare` with
    ``fit_params`` adds it) and stacking (forest + logistic regression, combined by logistic regression).

    Lesson: 07_distillation_ensembles § 7 · Ensembles with scikit-learn and XGBoost: bagging, boosting, stacking.
    """
    from sklearn.ensemble import (
        AdaBoostClassifier,
        BaggingClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        StackingClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return {
        "decision tree (one)": DecisionTreeClassifier(random_state=seed),
        "bagging (trees)": BaggingClassifier(DecisionTreeClassifier(), n_estimators=n_estimators // 2,
                                             random_state=seed, n_jobs=n_jobs),
        "random forest": RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs),
        "AdaBoost": AdaBoostClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=n_estimators // 2,
                                       random_state=seed),
        "gradient boosting": GradientBoostingClassifier(n_estimators=n_estimators // 2, max_depth=3,
                                                        random_state=seed),
        "hist gradient boosting": HistGradientBoostingClassifier(max_iter=n_estimators, random_state=seed),
        "XGBoost": xgboost_model(seed, n_estimators, n_jobs=n_jobs or 1, early_stopping_rounds=None),
        "stacking (forest + logreg)": StackingClassifier(
            [("forest", RandomForestClassifier(n_estimators=n_estimators // 2, random_state=seed, n_jobs=n_jobs)),
             ("logreg", logreg)], final_estimator=LogisticRegression(max_iter=1000), cv=3, n_jobs=n_jobs),
    }


def base_learners(seed: int = 0) -> dict:
    """One tree of each base learner of the boosted models (names of :data:`BASE_LEARNER`): depth 3 (AdaBoost and
    gradient boosting here) and 31 leaves (``HistGradientBoostingClassifier``'s default ``max_leaf_nodes``).

    Lesson: 07_distillation_ensembles § 7 · Ensembles with scikit-learn and XGBoost: bagging, boosting, stacking.
    """
    from sklearn.tree import DecisionTreeClassifier

    return {"decision tree (depth 3)": DecisionTreeClassifier(max_depth=3, random_state=seed),
            "decision tree (31 leaves)": DecisionTreeClassifier(max_leaf_nodes=31, random_state=seed)}


def model_size(model) -> int:
    """Bytes of the pickled model: what it costs to ship."""
    return len(pickle.dumps(model))


def _threads(threads):
    """OpenMP thread limit for the fits (histogram gradient boosting is the OpenMP user here).

    On a busy 2-core machine (other processes running TensorFlow), OpenMP's spinning worker threads made one
    20-iteration ``HistGradientBoostingClassifier`` fit on 1,000 x 40 rows take 237 s instead of 8 s with one
    thread (measured while writing this course); ``None`` leaves scikit-learn's default.
    """
    from contextlib import nullcontext

    if threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads), user_api="openmp")


def compare(models: dict, X_train, y_train, X_test, y_test, threads: int | None = 1,
            fit_params: dict | None = None) -> pd.DataFrame:
    """Fit each model; one row each: test accuracy, train time (s), predict time per 1,000 rows (ms), size (KB).

    ``threads``: OpenMP threads during the fits (1 by default, see :func:`_threads`; None: scikit-learn's).
    ``fit_params``: ``{model name: keyword arguments of its fit}``, e.g. ``{"XGBoost": {"eval_set": [(X_val,
    y_val)], "verbose": False}}`` for early stopping on a validation set (never the test set).

    Lesson: 07_distillation_ensembles § 7 · Ensembles with scikit-learn and XGBoost: bagging, boosting, stacking.
    """
    from tqdm.auto import tqdm

    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        raise ValueError("X and y must have the same number of rows (train and test).")
    fit_params = fit_params or {}
    unknown = set(fit_params) - set(models)
    if unknown:
        raise ValueError(f"fit_params names models that are not in the line-up: {sorted(unknown)}.")
    rows = []
    for name, model in tqdm(models.items(), desc="ensembles"):
        with _threads(threads):
            t0 = time.perf_counter()
            model.fit(X_train, y_train, **fit_params.get(name, {}))
            t1 = time.perf_counter()
            pred = model.predict(X_test)
            t2 = time.perf_counter()
        rows.append({"model": name, "test accuracy": float(np.mean(pred == np.asarray(y_test))),
                     "train time (s)": t1 - t0, "predict ms / 1k rows": 1000 * (t2 - t1) / len(X_test) * 1000,
                     "size (KB)": model_size(model) / 1024})
    return pd.DataFrame(rows)


def bias_variance(models: dict, X_train, y_train, X_test, y_test, rounds: int = 10, seed: int = 0,
                  threads: int | None = 1) -> pd.DataFrame:
    """0-1 loss bias and variance of each model (Domingos' decomposition), over ``rounds`` bootstrap re-trainings.

    For each test point the *main prediction* is the most frequent label across rounds; **bias** is the share
    of test points whose main prediction is wrong, **variance** the average share of rounds that disagree
    with the main prediction. Bagging should cut variance; boosting should cut bias. ``threads`` as in
    :func:`compare`.

    Lesson: 07_distillation_ensembles § 7 · Ensembles with scikit-learn and XGBoost: bagging, boosting, stacking.
    """
    from sklearn.base import clone
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    y_test = np.asarray(y_test)
    rows = []
    for name, model in tqdm(models.items(), desc="bias/variance"):
        preds = []
        for _ in range(rounds):
            idx = rng.integers(0, len(X_train), len(X_train))
            with _threads(threads):
                preds.append(clone(model).fit(X_train[idx], np.asarray(y_train)[idx]).predict(X_test))
        preds = np.array(preds)
        main = np.array([np.bincount(col).argmax() for col in preds.T])
        rows.append({"model": name, "error": float(np.mean(preds != y_test)), "bias": float(np.mean(main != y_test)),
                     "variance": float(np.mean(preds != main))})
    return pd.DataFrame(rows)


def check_claims(table: pd.DataFrame, bv: pd.DataFrame | None = None, single: str = "decision tree (one)",
                 bagged: str = "random forest") -> pd.DataFrame:
    """The usual claims about ensembles, checked against the measurements of :func:`compare` (``table``) and
    :func:`bias_variance` (``bv``): one row per claim, with what was measured and whether it holds here.

    Models are found by name (the names of :func:`default_models`); a claim whose models were not measured
    is left out. A claim that does not hold is reported, not hidden: on small data some do not.

    Lesson: 07_distillation_ensembles § 7 · Ensembles with scikit-learn and XGBoost: bagging, boosting, stacking.
    """
    singles = set(BASE_LEARNER.values())
    table = table[~table.model.isin(singles)]  # the base learners are measured for the bias claim only
    acc = table.set_index("model")["test accuracy"]
    train = table.set_index("model")["train time (s)"]
    if single not in acc.index:
        raise ValueError(f"the table has no {single!r} row to compare with; models: {list(acc.index)}")
    boosted = [m for m in acc.index if "boost" in m.lower()]
    rows = []

    def claim(text, measured, holds):
        rows.append({"claim": text, "measured": measured, "holds": bool(holds)})

    for m in acc.index.drop(single):
        claim(f"{m} is more accurate than one tree", f"{acc[m]:.4f} vs {acc[single]:.4f}", acc[m] > acc[single])
    if bv is not None and len(bv):
        b = bv.set_index("model")
        if single in b.index and bagged in b.index:
            claim("bagging cuts variance", f"{bagged} {b.variance[bagged]:.3f} vs one tree {b.variance[single]:.3f}",
                  b.variance[bagged] < b.variance[single])
        for m in (m for m in boosted if m in b.index):
            base = BASE_LEARNER.get(m)
            if base in b.index:  # the same base learner alone: what boosting is said to improve on
                claim(f"boosting cuts bias ({m} vs one {base}, its base learner)",
                      f"{b.bias[m]:.3f} vs {b.bias[base]:.3f}", b.bias[m] < b.bias[base])
            elif single in b.index:
                claim(f"boosting cuts bias ({m} vs one fully grown tree, not its base learner)",
                      f"{b.bias[m]:.3f} vs {b.bias[single]:.3f}", b.bias[m] < b.bias[single])
    if bagged in train.index:
        for m in (m for m in boosted if m in train.index):
            claim(f"boosting trains slower than bagging ({m} vs {bagged})",
                  f"{train[m]:.1f} s vs {train[bagged]:.1f} s", train[m] > train[bagged])
    for m in (m for m in acc.index if m.startswith("stacking")):
        best = acc.drop([m, single]).max()
        claim(f"{m} is as accurate as the best other ensemble", f"{acc[m]:.4f} vs {best:.4f}", acc[m] >= best)
    return pd.DataFrame(rows)
