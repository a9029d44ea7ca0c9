"""mlcourse.reduction measures the curse of dimensionality and what reducers buy; the text corpus loads."""
import gzip

import numpy as np
import pytest
from sklearn.decomposition import PCA, FastICA
from sklearn.linear_model import LogisticRegression

from mlcourse import data, reduction


def test_distance_concentration_falls_with_dimensions():
    t = reduction.distance_concentration(dims=(2, 100, 1000), n_points=300, n_queries=5)
    rc = t.relative_contrast.tolist()
    assert rc[0] > 10 * rc[1] > 10 * rc[2] / 5 and rc[2] < 0.3
    with pytest.raises(ValueError, match="coincides"):
        reduction.relative_contrast(np.zeros((3, 2)), np.zeros(2))


def test_hughes_effect_peak_then_decline():
    h = reduction.hughes_curve(feature_counts=(1, 8, 256), n_train=60, repeats=3)
    one, eight, many = h.accuracy
    assert eight > one and eight > many + 0.05


def test_noise_features_hurt_knn_on_real_data():
    X, y, _ = data.load_tabular("breast_cancer")
    assert reduction.add_noise_features(X, 5).shape == (len(X), X.shape[1] + 5)
    t = reduction.noise_feature_curve(X, y, noise_counts=(0, 300), repeats=2)
    assert t.accuracy[0] > t.accuracy[1] + 0.03


def test_compare_reducers_reports_dimensions():
    X, y, _ = data.load_tabular("digits")
    t = reduction.compare_reducers({"none": None, "PCA 10": PCA(10)}, LogisticRegression(max_iter=500),
                                   X[:1000], y[:1000], X[1000:], y[1000:])
    assert t.dimensions.tolist() == [64, 10] and (t.accuracy > 0.85).all() and (t.fit_s > 0).all()
    # the reducer's own fit is reported apart from the classifier's, and they add up
    assert t.reduce_fit_s[0] == 0 and t.reduce_fit_s[1] > 0
    assert np.allclose(t.fit_s, t.reduce_fit_s + t.model_fit_s)


def test_training_time_verdict_is_built_from_the_table():
    import pandas as pd

    t = pd.DataFrame({"reduction": ["none", "fast", "slow reducer"], "dimensions": [784, 50, 50],
                      "accuracy": [0.80, 0.79, 0.78], "reduce_fit_s": [0.0, 0.1, 5.0],
                      "model_fit_s": [2.0, 0.5, 0.5], "fit_s": [2.0, 0.6, 5.5], "predict_s": [0.1, 0.1, 0.1]})
    fast, slow = reduction.training_time_verdict(t)
    assert fast.startswith("fast:") and "'classifier trains faster' holds" in fast
    assert "'pipeline trains faster' holds" in fast and "-1.0 pp" in fast
    assert "'classifier trains faster' holds" in slow and "'pipeline trains faster' does not hold" in slow
    with pytest.raises(ValueError, match="compare_reducers"):
        reduction.training_time_verdict(t.drop(columns="reduce_fit_s"))
    with pytest.raises(ValueError, match="empty"):
        reduction.compare_reducers({}, None, None, None, None, None)


def test_pca_reconstruction_is_monotone():
    X, _, _ = data.load_tabular("digits")
    t = reduction.pca_reconstruction(X, components=(2, 10, 40))
    assert t.explained_variance.is_monotonic_increasing
    np.testing.assert_allclose(t.explained_variance + t.relative_reconstruction_error, 1, atol=1e-6)


def test_pls_beats_pcr_with_one_component():
    X, y, _ = data.load_tabular("diabetes")
    t = reduction.pls_vs_pcr(X, y, components=(1,))
    assert t["PLS r2"][0] > t["PCR r2"][0]


def test_ica_unmixes_where_pca_does_not():
    S, X, A = reduction.make_mixed_signals(1000)
    assert np.allclose(X, S @ A.T)
    ica = reduction.match_sources(S, FastICA(3, whiten="unit-variance", random_state=0).fit_transform(X))
    pca = reduction.match_sources(S, PCA(3).fit_transform(X))
    assert ica.min() > 0.95 and pca.min() < 0.9
    np.testing.assert_allclose(reduction.match_sources(S, -2 * S[:, ::-1]), 1.0)


def test_text_corpus_loads_and_errors(tmp_path):
    texts, y, names = data.load_text_corpus()
    assert len(texts) == len(y) > 500 and len(names) == 8 and set(np.unique(y)) == set(range(8))
    assert all(len(t) >= 80 for t in texts)
    with pytest.raises(data.DataError, match="missing"):
        data.load_text_corpus(tmp_path / "none.csv.gz")
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("a,b\n1,2\n")
    with pytest.raises(data.DataError, match="text,label"):
        data.load_text_corpus(bad)


@pytest.mark.parametrize("size", ["smoke", "lesson", "full"])
def test_sizes_table_reads_for_every_size_and_grows_with_it(size):
    from mlcourse import settings

    s = settings.pick_sizes(reduction.SIZES, size, {"N_IMAGES": None})
    assert set(s) == set(reduction.SIZES["full"]) and 50 in s["KS"]  # the notebook prints the k = 50 guess
    assert s["N_COMPARE"] <= s["N_IMAGES"]  # the comparison slices the loaded images
    smoke, lesson, full = (reduction.SIZES[k] for k in ("smoke", "lesson", "full"))
    for name, value in full.items():
        if isinstance(value, int):
            assert smoke[name] <= lesson[name] <= full[name], name
    assert settings.pick_sizes(reduction.SIZES, size, {"REPEATS": 3})["REPEATS"] == 3
