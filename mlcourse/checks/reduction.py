"""Checkers of the exercises of notebook 04 dimensionality reduction."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed
from mlcourse.data import load_text_corpus

__all__ = ["check_pca", "check_pca_search", "check_lsa_pipeline"]


def check_pca(fn) -> None:
    """Exercise 4.1: ``fn(X, k) -> (components (k, d), explained_variance_ratio (k,))`` by SVD.

    Lesson: 04_dimensionality_reduction § ✏️ Exercise 4.1: PCA with one SVD.
    """
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 5.0  # correlated, far from the origin
    comps, ratio = fn(X, 3)
    comps, ratio = np.asarray(comps), np.asarray(ratio)
    ref = PCA(3).fit(X)
    assert comps.shape == (3, 6) and ratio.shape == (3,), (
        f"Return components of shape (3, 6) and ratios of shape (3,); got {comps.shape} and {ratio.shape}.")
    assert not (np.isclose(ratio.sum(), 1.0) and not np.isclose(ref.explained_variance_ratio_.sum(), 1.0)), (
        f"Your 3 ratios sum to 1 ({np.round(ratio, 4)}): they were normalised over the kept values only. Divide "
        "S**2 by the sum over *all* singular values, so the ratios say how much of the total variance k keeps.")
    assert np.allclose(ratio, ref.explained_variance_ratio_, atol=1e-6), (
        f"explained variance ratios {np.round(ratio, 4)} differ from {np.round(ref.explained_variance_ratio_, 4)}: "
        "did you centre X first? ratio = S**2 / sum(S**2) over *all* singular values.")
    dots = np.abs(np.sum(comps * ref.components_, axis=1))
    assert np.allclose(dots, 1, atol=1e-4), (
        "Your components are not the principal axes (up to sign): take the first k rows of Vt from "
        "np.linalg.svd(X - X.mean(0), full_matrices=False).")
    _passed("4.1", "components (up to sign) and explained variance ratios match scikit-learn's PCA.")


def check_pca_search(fn) -> None:
    """Exercise 4.2: ``fn(X, y, ks, seed) -> fitted GridSearchCV`` over ``Pipeline(PCA -> classifier)``.

    Lesson: 04_dimensionality_reduction § ✏️ Exercise 4.2: `Pipeline(PCA -> classifier)`, `k` chosen by
    `GridSearchCV`.
    """
    from sklearn.base import clone, is_classifier
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import Pipeline

    X, y = load_digits(return_X_y=True)
    X, y = X[:360] / 16.0, y[:360]
    ks = (2, 5, 10, 20)
    search = fn(X, y, ks, 0)
    assert isinstance(search, GridSearchCV), (
        f"Return the fitted GridSearchCV; got a {type(search).__name__}. GridSearchCV(pipe, {{'pca__n_components': "
        "list(ks)}, cv=...) then .fit(X, y).")
    assert hasattr(search, "best_params_"), "The search is not fitted: call search.fit(X, y) before returning it."
    pipe = search.estimator
    assert isinstance(pipe, Pipeline), (
        f"The searched estimator is a {type(pipe).__name__}: it must be a Pipeline with PCA inside, so that "
        "each fold fits PCA on its own training rows (PCA fitted on all of X first sees the validation rows).")
    kinds = [type(e).__name__ for _, e in pipe.steps]
    pca_at = [i for i, (_, e) in enumerate(pipe.steps) if isinstance(e, PCA)]
    assert pca_at and pca_at[0] < len(pipe.steps) - 1, f"The pipeline {kinds} needs a PCA step before the model."
    assert is_classifier(pipe.steps[-1][1]), f"The last step of {kinds} must be a classifier."
    key = [k for k in search.best_params_ if k.endswith("n_components")]
    assert key, (f"The grid searches {list(search.best_params_)}; it must search PCA's n_components, named "
                 f"'<step name>__n_components' (e.g. 'pca__n_components').")
    tried = sorted(int(p[key[0]]) for p in search.cv_results_["params"])
    assert tried == sorted(ks), f"The grid tried n_components {tried}; it must try exactly ks = {list(ks)}."
    best_k = int(search.best_params_[key[0]])
    means = dict(zip((int(p[key[0]]) for p in search.cv_results_["params"]), search.cv_results_["mean_test_score"]))
    assert best_k == max(means, key=means.get), "best_params_ is not the k with the best mean validation score."
    again = cross_val_score(clone(pipe).set_params(**{key[0]: best_k}), X, y, cv=search.cv).mean()
    assert abs(again - means[best_k]) < 1e-6, (
        f"Re-running your pipeline with k={best_k} on the same folds gives {again:.4f}, the search said "
        f"{means[best_k]:.4f}: pass a fixed splitter, e.g. StratifiedKFold(3, shuffle=True, random_state=seed).")
    n_fit = search.best_estimator_.steps[pca_at[0]][1].n_samples_
    assert n_fit == len(X), f"The refitted PCA saw {n_fit} rows, not all {len(X)}: keep refit=True."
    return _passed("4.2", f"PCA inside the pipeline (fitted per fold), k chosen among {len(tried)} values by "
                          "GridSearchCV and confirmed on the same folds.")


def check_lsa_pipeline(fn) -> None:
    """Exercise 4.3: ``fn(k) -> unfitted Pipeline(TfidfVectorizer -> TruncatedSVD(k) -> classifier)``.

    Lesson: 04_dimensionality_reduction § ✏️ Exercise 4.3: latent semantic analysis as one `Pipeline`.
    """
    from sklearn.base import is_classifier
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    pipe = fn(30)
    assert isinstance(pipe, Pipeline), (
        f"Return a sklearn Pipeline (make_pipeline(TfidfVectorizer(...), TruncatedSVD(k), LogisticRegression(...))); "
        f"got a {type(pipe).__name__}.")
    steps = [e for _, e in pipe.steps]
    kinds = [type(e).__name__ for e in steps]
    assert isinstance(steps[0], TfidfVectorizer), (
        f"The pipeline {kinds} must start with a TfidfVectorizer, so that it takes raw text and learns its "
        "vocabulary from the training documents only.")
    svd = [e for e in steps if isinstance(e, TruncatedSVD)]
    assert svd, f"The pipeline {kinds} has no TruncatedSVD: that is the reducer (PCA would densify the sparse matrix)."
    assert svd[0].n_components == 30, f"fn(30) built TruncatedSVD({svd[0].n_components}); use n_components=k."
    assert is_classifier(steps[-1]), f"The last step of {kinds} must be a classifier."
    assert not hasattr(steps[0], "vocabulary_"), "Return the pipeline unfitted; the checker fits it."
    texts, y, names = load_text_corpus()
    tr, te, ytr, yte = train_test_split(texts, y, train_size=400, test_size=300, stratify=y, random_state=0)
    acc = pipe.fit(tr, ytr).score(te, yte)
    chance = np.bincount(yte).max() / len(yte)
    assert acc > chance + 0.2, (
        f"Accuracy {acc:.2f} on held-out docstrings, the majority class alone gets {chance:.2f}: check the "
        "vectorizer settings (sublinear_tf=True, stop_words='english') and the classifier's max_iter.")
    return _passed("4.3", f"TF-IDF -> TruncatedSVD(30) -> {kinds[-1]} in one Pipeline, fitted on raw text: held-out "
                          f"accuracy more than 20 points above the majority class, on {len(names)} packages.")
