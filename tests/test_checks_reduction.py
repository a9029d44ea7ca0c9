"""The checkers of notebook reduction: each passes a right answer and rejects typical wrong ones with an explanation."""
import numpy as np
import pytest

from mlcourse import checks


def test_pca_checker():
    def right(X, k):
        U, S, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return Vt[:k], (S ** 2 / (S ** 2).sum())[:k]

    checks.check_pca(right)

    def uncentred(X, k):
        U, S, Vt = np.linalg.svd(X, full_matrices=False)
        return Vt[:k], (S ** 2 / (S ** 2).sum())[:k]

    with pytest.raises(AssertionError, match="centre"):
        checks.check_pca(uncentred)

    def ratio_of_top_k(X, k):  # normalises over the k kept values only: the ratios always sum to 1
        U, S, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return Vt[:k], (S[:k] ** 2 / (S[:k] ** 2).sum())

    with pytest.raises(AssertionError, match="all.*singular values"):
        checks.check_pca(ratio_of_top_k)

    def unsquared(X, k):  # singular values, not variances
        U, S, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return Vt[:k], (S / S.sum())[:k]

    with pytest.raises(AssertionError, match=r"S\*\*2"):
        checks.check_pca(unsquared)

    def columns_of_vt(X, k):  # the axes are the rows of Vt, not its columns
        U, S, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return Vt.T[:k], (S ** 2 / (S ** 2).sum())[:k]

    with pytest.raises(AssertionError, match="first k rows of Vt"):
        checks.check_pca(columns_of_vt)


def _search(X, y, ks, seed, pca_inside=True, fixed_cv=True):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    cv = StratifiedKFold(3, shuffle=True, random_state=seed) if fixed_cv else StratifiedKFold(3, shuffle=True)
    if not pca_inside:  # the leak: PCA fitted on every row, validation folds included
        Z = PCA(max(ks)).fit_transform(X)
        return GridSearchCV(LogisticRegression(max_iter=1000), {"C": [1.0]}, cv=cv).fit(Z, y)
    pipe = Pipeline([("pca", PCA()), ("model", LogisticRegression(max_iter=1000))])
    return GridSearchCV(pipe, {"pca__n_components": list(ks)}, cv=cv).fit(X, y)


def test_pca_search_checker(capsys):
    checks.check_pca_search(_search)
    assert "✅ Exercise 4.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Pipeline with PCA inside"):
        checks.check_pca_search(lambda X, y, ks, s: _search(X, y, ks, s, pca_inside=False))
    with pytest.raises(AssertionError, match="exactly ks"):
        checks.check_pca_search(lambda X, y, ks, s: _search(X, y, ks[:2], s))
    with pytest.raises(AssertionError, match="fitted"):
        checks.check_pca_search(lambda X, y, ks, s: _search(X, y, ks, s).estimator)  # a Pipeline, not a search


def test_lsa_pipeline_checker(capsys):
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def good(k):
        return make_pipeline(TfidfVectorizer(sublinear_tf=True, stop_words="english"), TruncatedSVD(k, random_state=0),
                             LogisticRegression(max_iter=1000))

    checks.check_lsa_pipeline(good)
    assert "✅ Exercise 4.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="no TruncatedSVD"):
        checks.check_lsa_pipeline(lambda k: make_pipeline(TfidfVectorizer(), PCA(k), LogisticRegression()))
    with pytest.raises(AssertionError, match="n_components=k"):
        checks.check_lsa_pipeline(lambda k: good(10))
    with pytest.raises(AssertionError, match="start with a TfidfVectorizer"):
        checks.check_lsa_pipeline(lambda k: make_pipeline(TruncatedSVD(k), LogisticRegression()))
