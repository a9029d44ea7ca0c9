"""mlcourse.capstone: MNIST-1D generated offline, the paper's table, and the course's copy of the capstone's code."""
import numpy as np
import pytest

from mlcourse import capstone, settings


@pytest.fixture(scope="module")
def small():
    return capstone.make_data(600, seed=3)


def test_data_comes_from_the_generator_never_the_network(monkeypatch):
    import mnist1d.data
    import requests

    def no_network(*a, **k):
        raise AssertionError("the data function touched the network or the pickle download")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(mnist1d.data, "get_dataset", no_network)
    monkeypatch.setattr(mnist1d.data, "from_pickle", no_network)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_network)
    d = capstone.make_data(200, seed=1)
    assert d.x_train.shape == (160, 40, 1) and d.x_test.shape == (40, 40, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert sorted(np.unique(d.y_train)) == list(range(10))
    assert "url" not in d.args


def test_the_defaults_are_the_published_split_and_the_generator_is_deterministic():
    a, b = capstone.make_data(300, seed=5), capstone.make_data(300, seed=5)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, capstone.make_data(300, seed=6).x_train)
    assert capstone.make_data.__defaults__ == (5000, 42)  # the published dataset: 4000 train, 1000 test


def test_generating_data_leaves_numpys_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    capstone.make_data(100, seed=0)
    assert np.allclose(np.random.rand(3), expected)


def test_knobs_change_the_data_and_unknown_ones_are_refused():
    base = capstone.signal_features(capstone.make_data(400, seed=2).x_train)
    noisy = capstone.signal_features(capstone.make_data(400, seed=2, iid_noise_scale=0.2).x_train)
    assert noisy.roughness.mean() > 1.5 * base.roughness.mean()
    with pytest.raises(ValueError, match="knobs"):
        capstone.make_data(100, iid_noise=0.1)
    with pytest.raises(ValueError, match="at least 20"):
        capstone.make_data(10)
    x, y = capstone.sample(37, seed=1)
    assert x.shape == (37, 40, 1) and y.shape == (37,)


def test_the_transfer_set_is_new_unlabelled_signals_never_the_test_set():
    x = capstone.unlabelled(300, seed=5000)
    assert x.shape == (300, 40, 1) and x.dtype == np.float32
    test = capstone.make_data(5000, seed=42).x_test
    seen = {r.tobytes() for r in test}
    assert not any(r.tobytes() in seen for r in x)
    with pytest.raises(ValueError, match="another seed"):
        capstone.unlabelled(100, seed=42)


def test_split_val_is_stratified_and_disjoint(small):
    x_tr, y_tr, x_val, y_val = capstone.split_val(small.x_train, small.y_train, 100, seed=0)
    assert len(x_val) == 100 and len(x_tr) == len(small.x_train) - 100
    share = np.bincount(small.y_train, minlength=10) / len(small.y_train)
    assert np.abs(np.bincount(y_val, minlength=10) - 100 * share).max() <= 1  # each class in proportion
    rows = {r.tobytes() for r in x_tr}
    assert not any(r.tobytes() in rows for r in x_val)


def test_sizes_table_is_consistent_and_the_paper_table_is_the_readme():
    for size in settings.SIZES:
        settings.pick_sizes(capstone.SIZES, size)
    assert capstone.SIZES["lesson"]["N_SAMPLES"] == 5000  # lesson numbers are on the published dataset
    for size, row in capstone.SIZES.items():  # the transfer set is larger than the labelled set it adds to
        assert row["N_TRANSFER"] >= 0.5 * row["N_SAMPLES"] and row["KD_TEMPERATURES"] and row["KD_ALPHAS"], size
    assert capstone.PAPER == {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91,
                              "human expert": 0.96}
    assert capstone.PAPER_SHUFFLED["CNN"] == 0.56
    assert capstone.paper_row("CNN") == 0.94
    with pytest.raises(KeyError, match="reports"):
        capstone.paper_row("transformer")


def test_baselines_are_fitted_and_the_mlp_beats_the_linear_model():
    d = capstone.make_data(1200, seed=7)
    fitted = capstone.fit_baselines(d.flat(d.x_train), d.y_train, seed=0, mlp_iter=200)
    lr, mlp = (fitted[k].score(d.flat(d.x_test), d.y_test) for k in ("logistic regression", "MLP"))
    assert 0.15 < lr < mlp


def test_hypermodel_builds_conv1d_models_for_40_by_1_signals():
    import keras
    import keras_tuner as kt

    hp = kt.HyperParameters()
    model = capstone.hypermodel(hp)
    assert {"conv_layers", "filters", "kernel_size", "learning_rate"} <= {p.name for p in hp.space}
    assert model.input_shape == (None, 40, 1) and model.output_shape == (None, 10)
    assert sum(isinstance(layer, keras.layers.Conv1D) for layer in model.layers) == hp.values["conv_layers"]


@pytest.fixture(scope="module")
def trained(small):
    import keras

    keras.utils.set_random_seed(0)
    model = capstone.build_student(0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(small.x_train, small.y_train, epochs=3, batch_size=64, verbose=0)
    return model


def test_to_int8_is_full_integer(trained, small):
    from ai_edge_litert.interpreter import Interpreter

    blob = capstone.to_int8(trained, small.x_train[:100])
    it = Interpreter(model_content=blob)
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    assert not [t for t in it.get_tensor_details() if t["dtype"] == np.float32 and t["name"]]
    keras_labels = trained.predict(small.x_test, verbose=0).argmax(1)
    assert (capstone.make_predictor(blob)(small.x_test) == keras_labels).mean() >= 0.9


def test_magnitude_prune_zeroes_the_smallest_weights_of_a_copy(trained):
    before = [w.copy() for w in trained.get_weights()]
    pruned = capstone.magnitude_prune(trained, 0.5)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights()))
    assert capstone.kernel_sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    assert capstone.kernel_sparsity(trained) < 0.01
    for a, b in zip(trained.layers, pruned.layers):
        if type(a).__name__ in ("Conv1D", "Dense"):
            k, p = a.get_weights()[0], b.get_weights()[0]
            assert np.abs(k[p != 0]).min() >= np.abs(k[p == 0]).max()
    with pytest.raises(ValueError, match="sparsity"):
        capstone.magnitude_prune(trained, 1.0)


def test_kd_loss_is_hintons():
    rng = np.random.default_rng(0)
    y, t, s = rng.integers(0, 10, 8), rng.normal(0, 2, (8, 10)), rng.normal(0, 2, (8, 10))
    log_softmax = lambda z: z - np.log(np.exp(z).sum(1, keepdims=True))  # noqa: E731
    ce = -log_softmax(s)[np.arange(8), y]
    assert np.allclose(capstone.kd_loss(y, t, s, 3.0, 0.0), ce, atol=1e-5)
    T = 3.0
    pt = np.exp(log_softmax(t / T))
    kl = (pt * (log_softmax(t / T) - log_softmax(s / T))).sum(1)
    assert np.allclose(capstone.kd_loss(y, t, s, T, 1.0), T ** 2 * kl, atol=1e-4)
    assert np.allclose(capstone.kd_loss(y, t, t, T, 1.0), 0, atol=1e-5)  # the student equals the teacher
    # alpha per example: 0 rows are the hard loss, 1 rows the soft one (unlabelled transfer signals)
    alpha = np.array([0.0, 1.0] * 4, dtype=np.float32)
    mixed = np.asarray(capstone.kd_loss(y, t, s, T, alpha))
    assert np.allclose(mixed[::2], ce[::2], atol=1e-5) and np.allclose(mixed[1::2], T ** 2 * kl[1::2], atol=1e-4)


def test_the_student_fits_the_microcontroller_budget(trained, small):
    assert trained.count_params() <= capstone.STUDENT_MAX_PARAMS
    assert len(capstone.to_int8(trained, small.x_train[:100])) <= capstone.STUDENT_MAX_BYTES


def test_validate_signals_refuses_bad_requests_with_clear_errors(small):
    good = small.x_test[:4]
    assert capstone.validate_signals(good).shape == (4, 40, 1)
    assert capstone.validate_signals(good[:, :, 0].astype(np.float64)).dtype == np.float32
    assert capstone.validate_signals(good[0, :, 0]).shape == (1, 40, 1)
    bad = good.copy()
    bad[2, 7, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite \(in signal\(s\) \[2\]\)"):
        capstone.validate_signals(bad)
    with pytest.raises(ValueError, match="wrong shape"):
        capstone.validate_signals(good[:, :30])
    with pytest.raises(ValueError, match="empty"):
        capstone.validate_signals(np.zeros((0, 40), np.float32))
    with pytest.raises(TypeError, match="dtype int64"):
        capstone.validate_signals(np.zeros((2, 40), np.int64))
    with pytest.raises(TypeError, match="floating point"):
        capstone.validate_signals([["x"] * 40])


def test_drift_alarm_catches_the_generators_drifts_and_not_a_new_sample():
    ref, _ = capstone.sample(500, seed=21)
    assert not capstone.drift_alarm(ref, capstone.sample(500, seed=22)[0])
    assert capstone.drift_alarm(ref, capstone.sample(500, seed=23, iid_noise_scale=0.1, corr_noise_scale=0.5)[0])
    assert capstone.drift_alarm(ref, capstone.sample(500, seed=24, max_translation=72)[0])
    p = capstone.drift_pvalues(ref, capstone.sample(500, seed=23, iid_noise_scale=0.1)[0])
    assert p.idxmin() == "roughness" and list(p.index) == ["roughness", "peak position", "peak height"]


def test_size_row_and_summary():
    row = capstone.size_row("int8", b"\0" * 1000, 0.9, nonzero=12)
    assert row["bytes"] == 1000 and row["gzipped bytes"] < 100 and row["test accuracy"] == 0.9
    table = capstone.summary({"MLP": 0.70, "CNN (tuned)": 0.90, "student": 0.8}, "lesson")
    assert list(table["paper"][:2]) == [0.68, 0.94] and table["paper"].isna().tolist() == [False, False, True]
    assert table["difference (points)"].tolist()[:2] == [2.0, -4.0]
    assert "this run (lesson)" in table
