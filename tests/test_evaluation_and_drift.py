"""mlcourse.evaluation and mlcourse.drift measure what the workflow notebook teaches."""
import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support
from sklearn.neighbors import KNeighborsClassifier

from mlcourse import data, drift, evaluation


def test_precision_recall_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
        ref = precision_recall_fscore_support(y, p, average="binary", zero_division=0)[:3]
        np.testing.assert_allclose(evaluation.precision_recall_f1(y, p), ref)
    assert evaluation.precision_recall_f1([1, 0], [0, 0]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        evaluation.precision_recall_f1([0, 2], [0, 1])


def test_roc_auc_stays_while_pr_auc_falls_under_imbalance():
    t = evaluation.roc_vs_pr(positive_rates=(0.5, 0.01), n_samples=20000, seed=0)
    balanced, rare = t.iloc[0], t.iloc[1]
    assert abs(balanced.roc_auc - rare.roc_auc) < 0.05
    assert rare.pr_auc < balanced.pr_auc - 0.2
    assert abs(rare.random_pr_auc - 0.01) < 0.02 and abs(rare.random_roc_auc - 0.5) < 0.1


def test_random_split_leaks_on_grouped_data():
    ds = data.load_fashion_mnist(source="embedded")
    x, y = data.stratified_subset(ds.x_train, ds.y_train, 300, seed=0)
    xg, yg, g = data.make_grouped_images(x, y, per_group=4)
    t = evaluation.group_split_leakage(xg.reshape(len(xg), -1) / 255, yg, g, KNeighborsClassifier(1))
    random_cv, group_cv, truth = t.accuracy
    assert random_cv > truth + 0.05, "the random split should be optimistic"
    assert abs(group_cv - truth) < abs(random_cv - truth)


def test_shuffled_split_is_optimistic_on_drifting_data():
    from sklearn.linear_model import Ridge

    X, y, t = data.make_drifting_time_series(n_samples=2000, drift=1.0)
    r = evaluation.time_split_leakage(X, y, t, Ridge())
    assert r.r2[0] > r.r2[2], "shuffled CV should promise more than the future gives"


def test_stratified_folds_keep_the_rare_class():
    _, y = data.make_imbalanced(n_samples=1000, positive_rate=0.01)
    s = evaluation.fold_prevalence_spread(y, repeats=10).set_index("splitter")
    assert s.loc["StratifiedKFold", "std_rate"] < s.loc["KFold", "std_rate"]
    assert s.loc["StratifiedKFold", "folds_without_positives"] == 0


def test_diagnose_fit_and_complexity_curve():
    assert evaluation.diagnose_fit(0.99, 0.8) == "overfitting"
    assert evaluation.diagnose_fit(0.7, 0.69, target=0.9) == "underfitting"
    assert evaluation.diagnose_fit(0.7, 0.69) == "good fit"
    with pytest.raises(ValueError, match="finite"):
        evaluation.diagnose_fit(float("nan"), 0.5)
    from sklearn.tree import DecisionTreeClassifier

    X, y, _ = data.load_tabular("digits")
    c = evaluation.complexity_curve(DecisionTreeClassifier(random_state=0), "max_depth", [1, 20], X, y, cv=3,
                                    target=0.9)
    assert c.diagnosis.tolist() == ["underfitting", "overfitting"]


def test_psi_properties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=10000)
    assert drift.psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert drift.psi(a, rng.normal(size=10000)) < drift.PSI_WATCH
    assert drift.psi(a, rng.normal(1, 1, 10000)) > drift.PSI_ACT
    assert np.isfinite(drift.psi(a, np.full(100, 99.0)))
    with pytest.raises(ValueError, match="NaN"):
        drift.psi(a, [np.nan, 1.0])
    with pytest.raises(ValueError, match="bins"):
        drift.psi(a, a, bins=1)


def test_drift_report_alarms_on_shift_and_stays_quiet_without():
    ds = data.load_fashion_mnist(source="embedded")
    ref = drift.image_features(ds.x_test[:500])
    same = drift.image_features(ds.x_test[500:])
    shifted = drift.image_features(drift.shift_images(ds.x_test[500:], brightness=60, contrast=0.7))
    assert not drift.drift_report(ref, same).alarm.any()
    assert drift.drift_report(ref, shifted).alarm.sum() >= 2
    with pytest.raises(ValueError, match="same columns"):
        drift.drift_report(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="images"):
        drift.image_features(np.zeros((5, 784)))


def test_prediction_drift():
    a = np.repeat(np.arange(10), 100)
    assert drift.prediction_drift(a, a) == pytest.approx(0.0)
    assert drift.prediction_drift(a, np.zeros(1000, int)) > drift.PSI_ACT


def test_most_confused_and_what_to_fix_next():
    y = np.array([0] * 10 + [1] * 10 + [2] * 10)
    p = y.copy()
    p[:4] = 1          # 4 of class 0 taken for 1
    p[10:12] = 2       # 2 of class 1 taken for 2
    p[20] = 0          # 1 of class 2 taken for 0
    t = evaluation.most_confused(y, p, ["a", "b", "c"], top=5)
    assert t[["true", "predicted", "count"]].values.tolist() == [["a", "b", 4], ["b", "c", 2], ["c", "a", 1]]
    assert np.isclose(t.share_of_true[0], 0.4) and np.isclose(t.share_of_errors.sum(), 1.0)
    advice = evaluation.what_to_fix_next(y, p, ["a", "b", "c"], train_score=0.99, val_score=0.7, top=1)
    assert "overfitting" in advice[0] and "Weakest class: a with recall 0.60" in advice[1]
    assert "a taken for b" in advice[2] and "57%" in advice[2]  # 4 of 7 errors
    assert "No errors" in evaluation.what_to_fix_next(y, y)[-1]
    close = evaluation.what_to_fix_next(y, p, ["a", "b", "c"], train_score=0.85, val_score=0.845)[0]
    assert "not over-fitting" in close and "bias may remain" in close and "not the bottleneck" not in close
    ref = evaluation.what_to_fix_next(y, p, ["a", "b", "c"], train_score=0.85, val_score=0.845,
                                      reference_score=0.91, reference_name="a CNN")[0]
    assert "a CNN reaches 0.910, 0.065 ahead" in ref and "bottleneck" in ref
    with pytest.raises(ValueError, match="shape"):
        evaluation.most_confused(y, p[:5])


def test_data_card_is_computed_from_the_dataset():
    ds = data.Dataset(np.zeros((20, 28, 28), np.uint8) + np.arange(20)[:, None, None].astype(np.uint8),
                      np.arange(20) % 10, np.full((4, 28, 28), 3, np.uint8), np.arange(4), "embedded")
    card = evaluation.data_card(ds)["value"]
    assert card["source read"] == "embedded" and card["complete"].startswith("no: a subset (20 + 4)")
    assert card["test images identical to a training image"] == "4"  # every test image equals train image 3
    assert card["class balance (train)"] == "2 to 2 images per class"
    assert "SHA256SUMS" in card["integrity"]
    with pytest.raises(TypeError, match="Dataset"):
        evaluation.data_card(np.zeros(3))


def test_prediction_drift_refuses_bad_input():
    a, b = np.array([0, 1, 2, 2]), np.array([0, 0, 1, 2])
    assert drift.prediction_drift(a, b) > 0
    assert drift.prediction_drift(a, a, n_classes=5) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="non-integer.*argmax"):
        drift.prediction_drift([0.2, 0.9, 0.4], [0.1, 0.3, 0.8])
    with pytest.raises(ValueError, match="non-empty"):
        drift.prediction_drift([], [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        drift.prediction_drift([0, 1], [])
    with pytest.raises(ValueError, match="n_classes=2.*up to 2"):
        drift.prediction_drift(a, b, n_classes=2)
    with pytest.raises(ValueError, match="negative"):
        drift.prediction_drift([0, -1], [0, 1])
    assert drift.prediction_drift([0.0, 1.0, 2.0], [0, 1, 2]) == pytest.approx(0.0)


def test_drift_alarm_catches_a_subtle_shift_and_ignores_benign_noise():
    x = data.load_fashion_mnist(source="embedded").x_train[:1000]
    ref = drift.image_features(x)
    subtle = drift.drift_report(ref, drift.image_features(drift.shift_images(x, contrast=0.9)))
    benign = drift.drift_report(ref, drift.image_features(drift.shift_images(x, noise=3, seed=0)))
    assert subtle.alarm.any(), "a 10 % contrast drop must raise the PSI alarm"
    assert not benign.alarm.any(), "sensor noise of 3 grey levels must not raise it"


@pytest.mark.parametrize("size", ["smoke", "lesson", "full"])
def test_00_sizes_table_reads_for_every_size_and_grows_with_it(size):
    from mlcourse import settings

    s = settings.pick_sizes(evaluation.SIZES, size, {"EPOCHS": None})
    assert set(s) == set(evaluation.SIZES["full"]) and all(isinstance(v, int) and v > 0 for v in s.values())
    assert s["N_GROUPED"] <= s["N_TRAIN"] and s["N_CURVE"] <= s["N_TRAIN"]  # both are subsets of the training images
    smoke, lesson, full = (evaluation.SIZES[k] for k in ("smoke", "lesson", "full"))
    assert all(smoke[k] <= lesson[k] <= full[k] for k in full)
    assert settings.pick_sizes(evaluation.SIZES, size, {"EPOCHS": 2})["EPOCHS"] == 2
    with pytest.raises(ValueError, match="unknown"):
        settings.pick_sizes(evaluation.SIZES, size, {"N_IMAGES": 5})
