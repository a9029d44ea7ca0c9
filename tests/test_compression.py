"""mlcourse.compression on tiny models: conversions, LiteRT evaluation, pruning/QAT/clustering, the three
pitfalls, low rank, MACs, binarized layers, the target table. Speed figures live in the benchmark, not here."""

import numpy as np
import pandas as pd
import pytest

from mlcourse import compression as C
from mlcourse import data, models
from mlcourse import litert as L
from mlcourse.session import set_seed

HP = {"arch": "cnn", "filters": [4, 8], "dense_units": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def ds():
    d = data.load_fashion_mnist(source="embedded")
    return d.x_train[:1000], d.y_train[:1000], d.x_test[:200], d.y_test[:200]


@pytest.fixture(scope="module")
def trained(ds):
    x, y, _, _ = ds
    set_seed(0)
    m = models.build_model(HP)
    C.fit(m, x, y, epochs=2)
    return m


def test_every_mode_converts_and_runs(trained, ds):
    x, _, xt, yt = ds
    keras_acc = float(trained.evaluate(xt, yt, verbose=0)[1])
    blobs = {mode: L.to_tflite(trained, mode, representative=x[:200]) for mode in L.MODES}
    f32 = L.tflite_predict(blobs["float32"], xt)
    np.testing.assert_allclose(f32, trained.predict(xt, verbose=0), atol=1e-4)
    for mode, blob in blobs.items():
        acc = L.evaluate_tflite(blob, xt, yt)
        assert abs(acc - keras_acc) < 0.05, f"{mode}: accuracy {acc} far from Keras' {keras_acc}"
        assert L.tflite_latency_ms(blob, xt[0], runs=5, warmup=1) > 0
    size = {m: L.sizes(b)[0] for m, b in blobs.items()}
    assert size["int8"] < size["float16"] < size["float32"] and size["dynamic"] < size["float16"]


def test_quantized_sizes_approach_their_ratios_when_weights_dominate(ds):
    big = models.build_model({"arch": "mlp", "hidden_units": [512], "dropout": 0.0})  # 400k weights
    f32, f16 = L.sizes(L.to_tflite(big))[0], L.sizes(L.to_tflite(big, "float16"))[0]
    i8 = L.sizes(L.to_tflite(big, "int8", ds[0][:100]))[0]
    assert f32 / f16 > 1.95 and f32 / i8 > 3.9


def test_int8_takes_raw_uint8_pixels(trained, ds):
    from ai_edge_litert.interpreter import Interpreter

    inp = Interpreter(model_content=L.to_tflite(trained, "int8", ds[0][:200])).get_input_details()[0]
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0)


def test_int8_needs_and_checks_calibration(trained, ds):
    with pytest.raises(ValueError, match="representative"):
        L.to_tflite(trained, "int8")
    with pytest.warns(UserWarning, match="Calibrating int8 on 10 samples"):
        L.to_tflite(trained, "int8", ds[0][:10])
    with pytest.raises(ValueError, match="Unknown mode"):
        L.to_tflite(trained, "int4")


def test_pruning_reaches_target_and_pitfalls(trained, ds):
    x, y, xt, yt = ds
    pruned = C.prune(trained, x, y, target_sparsity=0.8, schedule="constant", epochs=1)
    assert abs(C.sparsity(pruned) - 0.8) < 0.02
    assert C.sparsity(trained) < 0.01
    # pitfall 3: on disk the same, gzipped much smaller
    (raw_b, gz_b), (raw_p, gz_p) = L.sizes(L.to_tflite(trained)), L.sizes(L.to_tflite(pruned))
    assert abs(raw_p - raw_b) / raw_b < 0.05 and gz_p < 0.5 * gz_b
    # pitfall 1: an unstripped model is refused, with the fix in the message
    wrapped = C.prunable(trained, 0.5)
    with pytest.raises(ValueError, match="strip_pruning"):
        L.to_tflite(wrapped)
    # pitfall 2: tfmot refuses to train without the callback
    wrapped.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(Exception, match="UpdatePruningStep"):
        wrapped.fit(x[:32], y[:32], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="target_sparsity"):
        C.prunable(trained, 1.5)
    with pytest.raises(ValueError, match="schedule"):
        C.prunable(trained, 0.5, schedule="cosine")


def test_polynomial_schedule_and_sweep(trained, ds):
    x, y, xt, yt = ds
    sweep = C.sparsity_sweep(trained, x, y, xt, yt, sparsities=(0.5,), schedules=("polynomial",), epochs=1)
    assert list(sweep.columns) == ["schedule", "target_sparsity", "measured_sparsity", "accuracy", "gzipped_int8"]
    assert abs(sweep.measured_sparsity[0] - 0.5) < 0.02


def test_clustering_keeps_n_values(trained, ds):
    x, y, _, _ = ds
    clustered = C.cluster(trained, x, y, n_clusters=8, epochs=1)
    for layer in clustered.layers:
        if hasattr(layer, "kernel"):
            assert len(np.unique(layer.kernel.numpy())) <= 8
    with pytest.raises(ValueError, match="n_clusters"):
        C.cluster(trained, x, y, n_clusters=1)


def test_qat_model_converts(trained, ds):
    x, y, xt, yt = ds
    qat = C.quantization_aware(trained, x[:256], y[:256], epochs=1)
    assert any("quant" in layer.name for layer in qat.layers)
    float_acc = float(trained.evaluate(xt, yt, verbose=0)[1])
    qat_acc = float(qat.evaluate(xt, yt, verbose=0)[1])
    acc = L.evaluate_tflite(L.to_tflite(qat, "int8", x[:200]), xt, yt)
    # the converted model does what the fake-quantized one did, and fine-tuning lost nothing (the tiny model
    # is only 0.25-0.35 accurate after 2 epochs on 1,000 images, so compare with it, not with a fixed number)
    assert abs(acc - qat_acc) < 0.05, f"int8 TFLite {acc} vs QAT Keras {qat_acc}"
    assert acc > float_acc - 0.05, f"QAT int8 {acc} vs float {float_acc}"


def test_low_rank_is_exact_for_a_low_rank_layer(ds):
    m = models.build_model({"arch": "mlp", "hidden_units": [64, 64], "dropout": 0.0})
    rng = np.random.default_rng(0)
    for name in ("dense0", "dense1"):  # every hidden Dense layer is factorized: make each exactly rank 3
        layer = m.get_layer(name)
        (n, k), b = layer.kernel.shape, layer.bias.numpy()
        layer.set_weights([(rng.normal(size=(n, 3)) @ rng.normal(size=(3, k)) / 8).astype("float32"), b])
    lr = C.low_rank(m, 3)
    assert lr.count_params() < m.count_params()
    np.testing.assert_allclose(lr.predict(ds[2], verbose=0), m.predict(ds[2], verbose=0), atol=1e-4)
    with pytest.raises(ValueError, match="rank"):
        C.low_rank(m, 0)
    t = C.low_rank_sweep(m, ds[2], ds[3], ranks=(3,))
    assert t["rank"].tolist() == ["full", 3]


def test_macs_counts():
    std = C.macs(models.build_model({"filters": [4], "dense_units": 0, "dropout": 0.0}))
    sep = C.macs(models.build_model({"filters": [4], "dense_units": 0, "dropout": 0.0, "conv": "separable"}))
    assert std.macs[0] == 28 * 28 * 9 * 1 * 4
    assert sep.macs[0] == 28 * 28 * 9 * 1 + 28 * 28 * 1 * 4
    assert std.layer.iloc[-1] == "total" and std.macs.iloc[-1] == std.macs.iloc[:-1].sum()


def test_binary_dense_forward_and_straight_through_gradient():
    import tensorflow as tf

    model = C.build_binary_mlp(hidden_units=(8,))
    layer = model.get_layer("binary0")
    x = tf.random.normal((4, 784))
    w = layer.kernel
    alpha = tf.reduce_mean(tf.abs(w))
    expected = x @ tf.where(w >= 0, alpha, -alpha) + layer.bias
    np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), atol=1e-5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grad = tape.gradient(loss, layer.kernel)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0, "the STE must pass gradients"
    fp32, bits = C.binary_weight_bytes(model)
    assert fp32 == 4 * 784 * 8 and fp32 / bits == 32


def test_check_targets_judges_measurements():
    rows = [("float32 baseline", 4000, 3600, 0.90, 1.0), ("int8 (per-channel)", 1000, 900, 0.898, 0.5),
            ("pruned + int8", 1000, 250, 0.885, 0.5)]
    table = pd.DataFrame(rows, columns=["variant", "bytes", "gzipped", "accuracy", "latency_ms"])
    t = C.check_targets(table).set_index("target")
    assert t.loc["int8 size ratio (float32 / int8, on disk)", "met"]
    assert t.loc["int8 accuracy loss (pp)", "measured"] == pytest.approx(0.2)
    assert t.loc["pruned+int8 size ratio (gzipped float32 / gzipped pruned+int8)", "met"]
    assert not t.loc["pruned+int8 accuracy loss (pp)", "met"]  # 1.5 pp > 1 pp
    assert t.loc["int8 latency speed-up (float32 ms / int8 ms)", "measured"] == pytest.approx(2.0)
    assert t.loc["int8 latency speed-up (float32 ms / int8 ms)", "met"] is None, "medians alone are not a verdict"
    names = ["float32 baseline", "int8 (per-channel)"]
    split = pd.DataFrame({"candidate": names, "median_ms": [1.0, 0.5], "rounds_ms": [[1, 1, 0.4], [0.5, 0.5, 0.6]]})
    t = C.check_targets(table, split.set_index("candidate")).set_index("target")
    speed = t.loc["int8 latency speed-up (float32 ms / int8 ms)"]
    assert not speed["met"] and "too close to call" in speed["verdict"], "faster by the medians, not by the rounds"


def test_calibration_sweep_one_row_per_set(trained, ds):
    x, _, xt, yt = ds
    t = C.calibration_sweep(trained, {"one": x[:1], "many": x[:100]}, xt, yt)
    assert t["calibration set"].tolist() == ["one", "many"] and t.images.tolist() == [1, 100]
    assert t.accuracy.between(0, 1).all()


def test_int8_io_type(trained, ds):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=L.to_tflite(trained, "int8", ds[0][:200], io_type="int8"))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8 and inp["quantization"] == (1.0, -128)
    with pytest.raises(ValueError, match="io_type"):
        L.to_tflite(trained, "int8", ds[0][:200], io_type="int4")


@pytest.mark.parametrize("hp", [{"arch": "cnn", "filters": [4, 8], "dense_units": 16, "dropout": 0.0},
                                {"arch": "cnn", "filters": [4, 6, 8], "dense_units": 0, "dropout": 0.0,
                                 "batch_norm": True}])
def test_prune_filters_keeps_the_strongest_filters(hp, ds):
    x = ds[2][:20]
    set_seed(0)
    m = models.build_model(hp)
    C.fit(m, ds[0][:300], ds[1][:300], epochs=1)
    full = C.prune_filters(m, 1.0)  # keeping every filter is the same network
    np.testing.assert_allclose(full.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-5)
    half = C.prune_filters(m, 0.5)
    assert models.get_hp(half)["filters"] == [max(1, round(f / 2)) for f in hp["filters"]]
    assert C.macs(half).macs.iloc[-1] < 0.5 * C.macs(m).macs.iloc[-1]
    k = m.get_layer("conv0").get_weights()[0]
    strongest = np.sort(np.argsort(np.abs(k).sum(axis=(0, 1, 2)))[::-1][:2])
    np.testing.assert_array_equal(half.get_layer("conv0").get_weights()[0], k[..., strongest])
    with pytest.raises(ValueError, match="keep"):
        C.prune_filters(m, 0)
    with pytest.raises(ValueError, match="standard"):
        C.prune_filters(models.build_model(dict(hp, conv="separable")), 0.5)


def test_structured_prune_is_cached(trained, ds, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    x, y = ds[0][:256], ds[1][:256]
    first = C.structured_prune(trained, x, y, keep=0.5, epochs=1)
    again = C.structured_prune(trained, x, y, keep=0.5, epochs=1)
    out = capsys.readouterr().out
    assert "cached in" in out and "loaded from the workshop cache" in out
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_outlier_unit_keeps_the_function_and_widens_the_range(ds):
    x = ds[2][:20]
    set_seed(0)
    m = models.build_model({"arch": "cnn", "filters": [4, 8, 8], "dense_units": 0, "dropout": 0.0})
    o = C.with_outlier_unit(m, "conv1", unit=0, factor=100.0)
    np.testing.assert_allclose(o.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-4)
    np.testing.assert_allclose(o.get_layer("conv1").get_weights()[0][..., 0],
                               100 * m.get_layer("conv1").get_weights()[0][..., 0], rtol=1e-6)
    mlp = models.build_model({"arch": "mlp", "hidden_units": [16, 8], "dropout": 0.0})
    np.testing.assert_allclose(C.with_outlier_unit(mlp, "dense0", 3, 50.0).predict(x, verbose=0),
                               mlp.predict(x, verbose=0), atol=1e-4)
    with pytest.raises(ValueError, match="layer must be"):
        C.with_outlier_unit(m, "conv2")  # followed by Dense, not by a conv layer
    with pytest.raises(ValueError, match="unit"):
        C.with_outlier_unit(m, "conv1", unit=99)
    with pytest.raises(ValueError, match="factor"):
        C.with_outlier_unit(m, "conv1", factor=0)


def test_latency_table_times_every_model_interleaved(trained, ds):
    from mlcourse import timing

    blobs = {"float32": L.to_tflite(trained), "int8": L.to_tflite(trained, "int8", ds[0][:100])}
    t = C.latency_table(blobs, ds[2][0], rounds=3, number=2)
    assert list(t.index) == ["float32", "int8"] and (t.median_ms > 0).all()
    assert all(len(r) == 3 for r in t.rounds_ms)
    assert "rounds" in timing.compare(t, "int8", "float32")
    with pytest.raises(ValueError, match="at least one"):
        C.latency_table({}, ds[2][0])


def test_sizes_table_has_three_sizes_read_by_pick_sizes():
    from mlcourse import settings

    assert set(C.SIZES) == set(settings.SIZES)
    assert C.SIZES["smoke"].keys() == C.SIZES["lesson"].keys() == C.SIZES["full"].keys()
    s = settings.pick_sizes(C.SIZES, "lesson", {"N_TRAIN": 123, "EPOCHS": None})
    assert s["N_TRAIN"] == 123 and s["EPOCHS"] == C.SIZES["lesson"]["EPOCHS"]
    assert C.SIZES["smoke"]["N_TRAIN"] <= C.SIZES["lesson"]["N_TRAIN"] <= C.SIZES["full"]["N_TRAIN"]
    assert C.SIZES["lesson"]["WIDE_UNITS"] >= 2048, "the memory-bound case needs weights beyond the caches"


def test_sensitivity_scan_prunes_one_layer_at_a_time_on_the_data_given(trained, ds):
    x, y, xt, yt = ds
    before = [w.copy() for w in trained.get_weights()]
    scan = C.sensitivity_scan(trained, xt, yt, (0.5, 0.99))
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights())), "the scan must not prune the model"
    layers = C.prunable_layers(trained)
    assert list(layers) == ["conv0", "conv1", "dense0", "probs"]
    assert len(scan) == 3 * len(layers) and set(scan.sparsity) == {0.0, 0.5, 0.99}
    one = C.magnitude_prune(trained, {"conv0": 0.99})
    assert C.keras_accuracy(one, xt, yt) == scan.query("layer == 'conv0' and sparsity == 0.99").accuracy.item()
    k = one.get_layer("conv0").kernel.numpy()
    assert (k == 0).sum() == round(0.99 * k.size)
    assert (one.get_layer("conv1").kernel.numpy() != 0).all(), "only the named layer is pruned"
    with pytest.raises(ValueError, match="no prunable layer"):
        C.magnitude_prune(trained, {"rescale": 0.5})


def test_allocation_meets_the_target_and_spares_the_sensitive_layers():
    rows = []
    for name, n, accs in (("small_sensitive", 100, (0.9, 0.5, 0.2)), ("big_robust", 10_000, (0.9, 0.9, 0.88))):
        rows += [{"layer": name, "weights": n, "sparsity": s, "accuracy": a} for s, a in zip((0.0, 0.5, 0.9), accs)]
    scan = pd.DataFrame(rows)
    weights = {"small_sensitive": 100, "big_robust": 10_000}
    loose = C.allocate_sparsity(scan, 8_000)  # 20 % off: the big layer at 50 % is enough, and nothing more
    assert loose == {"small_sensitive": 0.0, "big_robust": 0.5}
    tight = C.allocate_sparsity(scan, 1_200)
    assert C.nonzero_weights(weights, tight) <= 1_200 and tight["small_sensitive"] == 0.0
    uni = C.uniform_sparsity(weights, C.nonzero_weights(weights, tight))
    assert abs(C.nonzero_weights(weights, uni) - C.nonzero_weights(weights, tight)) <= 2
    with pytest.raises(ValueError, match="scan higher sparsities"):
        C.allocate_sparsity(scan, 500)


def test_prune_per_layer_reaches_each_layers_own_sparsity(trained, ds):
    x, y, _, _ = ds
    out = C.prune_per_layer(trained, x[:256], y[:256], {"dense0": 0.9, "conv1": 0.5}, epochs=1)
    k = {lay.name: lay.kernel.numpy() for lay in out.layers if hasattr(lay, "kernel")}
    assert abs((k["dense0"] == 0).mean() - 0.9) < 0.02 and abs((k["conv1"] == 0).mean() - 0.5) < 0.02
    assert (k["conv0"] != 0).mean() > 0.95 and not any(type(lay).__name__ == "PruneLowMagnitude" for lay in out.layers)


def test_keras_int8_quantizes_dense_layers_only(trained, ds):
    _, _, xt, yt = ds
    q, done = C.keras_int8(trained)
    assert done == ["dense0", "probs"], "Keras 3.15 quantizes Dense (not Conv2D)"
    assert str(q.get_layer("dense0").kernel.dtype) == "int8" and str(q.get_layer("conv0").kernel.dtype) == "float32"
    assert C.weight_bytes(q) < 0.5 * C.weight_bytes(trained)
    assert abs(C.keras_accuracy(q, xt, yt) - C.keras_accuracy(trained, xt, yt)) < 0.05
    assert str(trained.get_layer("dense0").kernel.dtype) == "float32", "the original is left as it was"


def test_wide_mlp_weights_are_mostly_its_wide_layers():
    m = C.wide_mlp(units=64, layers=2)
    assert [lay.name for lay in m.layers if lay.weights] == ["wide0", "wide1", "probs"]
    assert C.weight_bytes(m) == 4 * m.count_params()


def test_litert_quantizer_path_when_installed(trained, ds):
    x, _, xt, yt = ds
    try:
        C.litert_quantizer()
    except ImportError as err:
        assert "pip install litert-quantizer==0.11.0" in str(err)
        pytest.skip(str(err))
    blob = C.litert_int8(L.to_tflite(trained), x[:100])
    assert L.sizes(blob)[0] < 0.5 * L.sizes(L.to_tflite(trained))[0]
    assert L.evaluate_tflite(blob, xt, yt) > 0.3


def test_binary_weight_layer_is_named_as_such():
    model = C.build_binary_mlp(hidden_units=(8,))
    assert type(model.get_layer("binary0")).__name__ == "BinaryWeightDense"
    assert "activations stay float" in C.BinaryWeightDense.__doc__


def test_int8_calibration_data_is_refused_when_it_cannot_calibrate(trained, ds):
    x = ds[0]
    with pytest.raises(ValueError, match="non-finite"):
        L.to_tflite(trained, "int8", np.full((100, 28, 28), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty"):
        L.to_tflite(trained, "int8", x[:0])
    with pytest.raises(ValueError, match=r"shape \(100, 784\).*x_train\[:500\]"):
        L.to_tflite(trained, "int8", x[:100].reshape(100, -1))
    with pytest.raises(ValueError, match="shape"):
        L.to_tflite(trained, "int8", x[:100, None])


def test_low_rank_refuses_a_rank_it_cannot_apply(ds):
    m = models.build_model({"arch": "mlp", "hidden_units": [64, 64], "dropout": 0.0})
    with pytest.raises(ValueError, match="above the full rank.*at most 64"):
        C.low_rank(m, 10000)
    with pytest.raises(TypeError, match="integer"):
        C.low_rank(m, 2.5)
    with pytest.warns(UserWarning, match="would not save parameters"):
        C.low_rank(m, 40)  # 40 * (64 + 64) > 64 * 64: kept, and said so
    with pytest.raises(ValueError, match="no hidden Dense"):
        C.low_rank(models.build_model({"arch": "cnn", "filters": [4], "dense_units": 0, "dropout": 0.0}), 2)
    t = C.low_rank_sweep(m, ds[2], ds[3], ranks=(3, 10000))
    assert t["rank"].tolist() == ["full", 3]


def test_evaluation_refuses_mismatched_or_empty_batches(trained, ds):
    blob = L.to_tflite(trained)
    xt, yt = ds[2], ds[3]
    with pytest.raises(ValueError, match="200 images but 199 labels"):
        L.evaluate_tflite(blob, xt, yt[:-1])
    with pytest.raises(ValueError, match="empty batch"):
        L.tflite_predict(blob, xt[:0])
    with pytest.raises(ValueError, match="empty batch"):
        L.run_interpreter(L.interpreter(blob), xt[:0])


def test_float_finetune_is_the_equal_epoch_control(trained, ds):
    x, y, xt, yt = ds
    control = C.float_finetune(trained, x[:256], y[:256], epochs=1)
    assert not np.allclose(control.get_weights()[0], trained.get_weights()[0])  # it trained
    assert np.allclose(trained.get_weights()[0], models.convert(trained, "keras3").get_weights()[0])  # base untouched
    assert L.evaluate_tflite(L.to_tflite(control, "int8", x[:100]), xt, yt) > 0.3


def test_split_holds_validation_images_out_of_training():
    d = data.load_fashion_mnist(source="embedded")
    x, y, xv, yv, xt, yt = C.split(d, 300, 100, 50, seed=0)
    assert (len(x), len(xv), len(xt)) == (300, 100, 50) and len(y) == 300 and len(yv) == 100 and len(yt) == 50
    train_rows = {row.tobytes() for row in x}
    assert not any(row.tobytes() in train_rows for row in xv), "validation images must not be training images"
    again = C.split(d, 300, 100, 50, seed=0)
    assert np.array_equal(again[0], x), "deterministic: warm_cache and the notebook draw the same images"
    with pytest.raises(TypeError, match="size"):
        C.warm_cache(d, True)
