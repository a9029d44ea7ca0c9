"""Dimensionality reduction, measured: the curse of dimensionality, and what each reducer buys.

* :func:`distance_concentration`: as dimensions grow, the nearest and farthest neighbours of a point
  become almost equally far (the *relative contrast* shrinks), so distance-based methods lose their grip;
* :func:`hughes_curve`: for a fixed training size, accuracy first rises with more features, then falls
  as features outgrow the data (the Hughes effect); :func:`add_noise_features` does it to real data;
* :func:`compare_reducers`: accuracy, the reducer's own fit time, the classifier's fit time and predict time of
  one model before and after each reducer; :func:`training_time_verdict` words the result from the table;
* :func:`pca_reconstruction`, :func:`pls_vs_pcr`, :func:`make_mixed_signals` + :func:`match_sources`
  (ICA vs PCA for unmixing);
* :data:`SIZES`: the notebook's sizes (smoke, lesson, full), read by its parameters cell with
  :func:`mlcourse.settings.pick_sizes`.

Taught in ``solutions/04_dimensionality_reduction.ipynb``.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["SIZES", "relative_contrast", "distance_concentration", "add_noise_features", "hughes_curve",
           "noise_feature_curve", "compare_reducers", "training_time_verdict", "pca_reconstruction", "pls_vs_pcr",
           "make_mixed_signals", "match_sources"]

#: 04_dimensionality_reduction's sizes, one table (read with ``settings.pick_sizes(reduction.SIZES, cfg.size,
#: given)``): ``N_IMAGES`` Fashion-MNIST training images, ``REPEATS`` repetitions of each curve point,
#: ``N_POINTS`` random points per dimension for the distance concentration, ``N_COMPARE`` images for the
#: before/after-reduction table, ``NMF_ITER`` / ``LOGREG_ITER`` iteration caps there, ``N_GRID`` images and ``KS``
#: candidate components for the GridSearchCV over PCA's ``k``, ``NMF_PARTS_ITER`` for the 16 NMF parts shown.
#: The full run takes about 3 minutes on 2 cores, so the lesson size is the full size.
_FULL = {"N_IMAGES": 20_000, "REPEATS": 10, "N_POINTS": 2_000, "N_COMPARE": 20_000, "NMF_ITER": 400,
         "LOGREG_ITER": 300, "N_GRID": 5_000, "KS": (5, 10, 25, 50, 100), "NMF_PARTS_ITER": 300}
SIZES = {
    "smoke": {"N_IMAGES": 2_000, "REPEATS": 2, "N_POINTS": 500, "N_COMPARE": 1_000, "NMF_ITER": 100,
              "LOGREG_ITER": 100, "N_GRID": 300, "KS": (5, 25, 50), "NMF_PARTS_ITER": 100},
    "lesson": dict(_FULL),
    "full": dict(_FULL),
}


def relative_contrast(points: np.ndarray, query: np.ndarray) -> float:
    """``(d_max - d_min) / d_min`` of the Euclidean distances from ``query`` to ``points``."""
    d = np.linalg.norm(np.asarray(points) - np.asarray(query), axis=1)
    if d.min() == 0:
        raise ValueError("query coincides with a point: the relative contrast is undefined.")
    return float((d.max() - d.min()) / d.min())


def distance_concentration(dims=(1, 2, 5, 10, 50, 100, 500, 1000), n_points: int = 1000,
                           n_queries: int = 20, seed: int = 0) -> pd.DataFrame:
    """Mean relative contrast of uniform random points in ``[0, 1]^d`` for each dimension ``d``.

    Lesson: 04_dimensionality_reduction § 1 · The curse of dimensionality.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for d in dims:
        pts = rng.random((n_points, d))
        rc = [relative_contrast(pts, rng.random(d)) for _ in range(n_queries)]
        rows.append({"dimensions": d, "relative_contrast": float(np.mean(rc)),
                     "nearest/farthest distance": float(np.mean([1 / (1 + r) for r in rc]))})
    return pd.DataFrame(rows)


def add_noise_features(X, n_noise: int, seed: int = 0) -> np.ndarray:
    """``X`` with ``n_noise`` extra standard-normal columns that carry no information about the target."""
    X = np.asarray(X, dtype=float)
    return np.hstack([X, np.random.default_rng(seed).normal(size=(len(X), n_noise))])


def _curve(make, counts, n_train, model, repeats, seed, name):
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    rows = []
    for k in counts:
        accs = []
        for r in range(repeats):
            X, y = make(k, seed + r)
            Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=n_train, stratify=y, random_state=seed + r)
            accs.append(clone(model).fit(Xtr, ytr).score(Xte, yte))
        rows.append({name: k, "accuracy": float(np.mean(accs)), "std": float(np.std(accs))})
    return pd.DataFrame(rows)


def hughes_curve(feature_counts=(1, 2, 4, 8, 16, 32, 64, 128, 256), n_train: int = 60, n_informative: int = 8,
                 model=None, repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Test accuracy against the number of features for a fixed, small training set (the Hughes effect).

    The features come in order of usefulness: the first ``n_informative`` carry signal (each a little),
    the rest are noise. Default model: linear discriminant analysis (a classic victim).

    Lesson: 04_dimensionality_reduction § 1 · The curse of dimensionality.
    """
    from sklearn.datasets import make_classification
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    model = model if model is not None else LinearDiscriminantAnalysis()
    n_max = max(feature_counts)

    def make(k, s):
        X, y = make_classification(n_samples=n_train + 2000, n_features=max(n_max, n_informative),
                                   n_informative=n_informative, n_redundant=0, n_repeated=0, shuffle=False,
                                   class_sep=0.6, random_state=s)
        return X[:, :k], y

    return _curve(make, feature_counts, n_train, model, repeats, seed, "features")


def noise_feature_curve(X, y, noise_counts=(0, 10, 30, 100, 300), n_train: int = 100, model=None,
                        repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Accuracy of ``model`` on real data as pure-noise features are added (fixed training size).

    Lesson: 04_dimensionality_reduction § 1 · The curse of dimensionality.
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = model if model is not None else make_pipeline(StandardScaler(), KNeighborsClassifier(5))
    return _curve(lambda k, s: (add_noise_features(X, k, s), y), noise_counts, n_train, model, repeats, seed,
                  "noise_features")


def compare_reducers(reducers: dict, model, X_train, y_train, X_test, y_test) -> pd.DataFrame:
    """Fit ``reducer -> model`` for each ``{name: reducer or None}``; accuracy, dimensions and times.

    The fit time is split in two, so that "the classifier trains faster" and "the whole pipeline trains
    faster" are separate claims: ``reduce_fit_s`` is the reducer's own ``fit_transform`` on the training set
    (0 without a reducer), ``model_fit_s`` the classifier's ``fit`` on the reduced data, ``fit_s`` their sum.
    ``predict_s`` covers transforming and scoring the test set.

    Lesson: 04_dimensionality_reduction § 3 · A model before and after reduction.
    """
    from sklearn.base import clone

    if not reducers:
        raise ValueError("reducers is empty: pass {name: reducer or None}, e.g. {'none': None, 'PCA 50': PCA(50)}.")
    rows = []
    for name, red in reducers.items():
        red_fit, clf = (clone(red) if red is not None else None), clone(model)
        t0 = time.perf_counter()
        Z_train = red_fit.fit_transform(X_train, y_train) if red_fit is not None else X_train
        t1 = time.perf_counter()
        clf.fit(Z_train, y_train)
        t2 = time.perf_counter()
        acc = clf.score(red_fit.transform(X_test) if red_fit is not None else X_test, y_test)
        t3 = time.perf_counter()
        reduce_s = t1 - t0 if red_fit is not None else 0.0
        rows.append({"reduction": name, "dimensions": int(Z_train.shape[1]), "accuracy": acc,
                     "reduce_fit_s": reduce_s, "model_fit_s": t2 - t1, "fit_s": reduce_s + t2 - t1,
                     "predict_s": t3 - t2})
    return pd.DataFrame(rows)


def training_time_verdict(table: pd.DataFrame, baseline: str | None = None) -> list[str]:
    """Sentences, one per reducer, built from a :func:`compare_reducers` table: does it train faster?

    Each reducer row is compared with the ``baseline`` row (default: the first row, which should be the
    model without reduction) on two separate claims: the *classifier alone* trains faster on the reduced
    data, and the *whole pipeline* (reducer's fit included) trains faster. Each sentence says whether the
    claim holds or does not hold in this run, with the measured seconds and the accuracy change.

    Lesson: 04_dimensionality_reduction § 3 · A model before and after reduction.
    """
    need = {"reduction", "accuracy", "reduce_fit_s", "model_fit_s", "fit_s"}
    if not need <= set(table.columns):
        raise ValueError(f"table lacks the columns {sorted(need - set(table.columns))}: "
                         "pass the table compare_reducers returns.")
    base = table.iloc[0] if baseline is None else table.set_index("reduction").loc[baseline].rename(baseline)
    base_name = base["reduction"] if baseline is None else baseline
    out = []
    for _, r in table.iterrows():
        if r["reduction"] == base_name:
            continue
        clf = r["model_fit_s"] < base["model_fit_s"]
        whole = r["fit_s"] < base["fit_s"]
        out.append(
            f"{r['reduction']}: the classifier trains in {r['model_fit_s']:.2f} s vs {base['model_fit_s']:.2f} s "
            f"on {base_name} ({base['model_fit_s'] / max(r['model_fit_s'], 1e-9):.1f}x): "
            f"'classifier trains faster' {'holds' if clf else 'does not hold'}; with the reducer's own fit "
            f"({r['reduce_fit_s']:.2f} s) the pipeline takes {r['fit_s']:.2f} s: 'pipeline trains faster' "
            f"{'holds' if whole else 'does not hold'}; accuracy {r['accuracy']:.3f} vs {base['accuracy']:.3f} "
            f"({100 * (r['accuracy'] - base['accuracy']):+.1f} pp).")
    return out


def pca_reconstruction(X, components=(2, 10, 50, 100, 200)) -> pd.DataFrame:
    """Explained variance and relative reconstruction error of PCA with each number of components.

    Lesson: 04_dimensionality_reduction § 2 · PCA on Fashion-MNIST.
    """
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=float)
    full = PCA(n_components=min(max(components), *X.shape)).fit(X)
    total = np.sum((X - X.mean(0)) ** 2)
    rows = []
    for k in components:
        Z = (X - full.mean_) @ full.components_[:k].T
        err = np.sum((X - full.mean_ - Z @ full.components_[:k]) ** 2) / total
        rows.append({"components": k, "explained_variance": float(full.explained_variance_ratio_[:k].sum()),
                     "relative_reconstruction_error": float(err)})
    return pd.DataFrame(rows)


def pls_vs_pcr(X, y, components=(1, 2, 3, 5, 8), cv: int = 5) -> pd.DataFrame:
    """Cross-validated R^2 of PLS regression vs principal-component regression, per number of components.

    PCA picks directions of large *input* variance, blind to the target; PLS picks directions that
    covary with the target, so it needs fewer components.

    Lesson: 04_dimensionality_reduction § 6 · PLS: reduction for regression.
    """
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = KFold(cv, shuffle=True, random_state=0)
    rows = []
    for k in components:
        pcr = make_pipeline(StandardScaler(), PCA(k), LinearRegression())
        pls = make_pipeline(StandardScaler(), PLSRegression(k))
        rows.append({"components": k, "PCR r2": cross_val_score(pcr, X, y, cv=folds).mean(),
                     "PLS r2": cross_val_score(pls, X, y, cv=folds).mean()})
    return pd.DataFrame(rows)


def make_mixed_signals(n_samples: int = 2000, seed: int = 0):
    """Three independent sources (sine, square, sawtooth) mixed by a random matrix, plus a little noise.

    Returns ``(S, X, A)``: sources ``(n, 3)``, observed mixtures ``X = S A^T`` ``(n, 3)``, mixing ``A``.

    Lesson: 04_dimensionality_reduction § 8 · ICA: unmixing independent sources, where PCA fails.
    """
    from scipy import signal

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 8, n_samples)
    S = np.c_[np.sin(2 * t), np.sign(np.sin(3 * t)), signal.sawtooth(2 * np.pi * t)]
    S += 0.05 * rng.normal(size=S.shape)
    S /= S.std(axis=0)
    A = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, 1.0], [1.5, 1.0, 2.0]])
    return S, S @ A.T, A


def match_sources(S, S_hat) -> np.ndarray:
    """For each true source, the |correlation| with the recovered component matched to it (best pairing).

    1.0 means perfectly recovered (up to sign and scale, which unmixing cannot know).

    Lesson: 04_dimensionality_reduction § 8 · ICA: unmixing independent sources, where PCA fails.
    """
    from scipy.optimize import linear_sum_assignment

    S, S_hat = np.asarray(S), np.asarray(S_hat)
    k = S.shape[1]
    corr = np.abs(np.corrcoef(S.T, S_hat.T)[:k, k:])
    rows, cols = linear_sum_assignment(-corr)
    return corr[rows, cols]
