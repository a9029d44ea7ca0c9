"""mlcourse.runtimes on a tiny CNN: every variant exported and run, the table's columns and agreement, telemetry
off, hardware and energy probes, the budget pick. Speed figures live in the benchmark, not here."""
import sys

import numpy as np
import pandas as pd
import pytest

from mlcourse import data, litert, models, settings
from mlcourse import runtimes as R  # first: it switches OpenVINO / NNCF telemetry off before they are imported
from mlcourse.session import set_seed

HP = {"arch": "cnn", "filters": [4, 8], "dense_units": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def ds():
    d = data.load_fashion_mnist(source="embedded")
    return d.x_train[:600], d.y_train[:600], d.x_test[:96], d.y_test[:96]


@pytest.fixture(scope="module")
def exported(ds, tmp_path_factory):
    x, y, _, _ = ds
    set_seed(0)
    model = models.build_model(HP)
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    paths = R.export_all(model, tmp_path_factory.mktemp("variants") / "tiny", x[:100], tvm=False)
    return model, paths


def test_every_variant_is_written_and_int8_is_smaller(exported):
    _, paths = exported
    assert set(paths) == set(R.VARIANTS)
    for rt in ("LiteRT", "ONNX Runtime", "OpenVINO"):
        f32, i8 = R.size_on_disk(paths[(rt, "float32")]), R.size_on_disk(paths[(rt, "int8")])
        assert 0 < i8 < f32, f"{rt}: int8 {i8} B should be smaller than float32 {f32} B"
    assert paths[("OpenVINO", "float32")].with_suffix(".bin").exists()


def test_benchmark_table_columns_and_agreement(exported, ds):
    model, paths = exported
    _, _, xt, yt = ds
    table = R.benchmark(model, paths, xt, yt, rounds=2, number=2, threads=(1, 2), progress=False)
    assert len(table) == len(paths)
    for col in ("runtime", "precision", "size_kb", "accuracy", "agreement", "first_call_s", "p50_ms_1t", "p95_ms_1t",
                "img_s_1t", "p50_ms_2t", "img_s_2t"):
        assert col in table, col
    assert table.attrs["threads"] == [1, 2]
    assert (table[["p50_ms_1t", "img_s_1t", "first_call_s"]] > 0).all().all()
    assert (table.p95_ms_1t >= table.p50_ms_1t - 1e-9).all()
    f32 = table[table.precision == "float32"]
    assert (f32.agreement >= 0.98).all(), f32[["runtime", "agreement"]]  # the same float model everywhere
    assert (table.agreement >= 0.8).all(), table[["runtime", "precision", "agreement"]]
    assert all(isinstance(s, str) and s.endswith(".") for s in R.summary(table))
    ax = R.plot(table)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_load_runs_any_batch_size(exported, ds):
    _, paths = exported
    _, _, xt, _ = ds
    for v, p in paths.items():
        fn = R.load(v, p, threads=1)
        for n in (1, 5, 64):
            out = fn(xt[:n])
            assert out.shape == (n, 10), (v, n, out.shape)
            assert np.allclose(out.sum(1), 1, atol=0.05), v


def test_telemetry_is_off(exported):
    import nncf.telemetry.wrapper as w
    from openvino.tools.ovc import convert_impl

    assert R.telemetry_blocked()
    assert sys.modules["openvino_telemetry"] is None
    assert type(w.telemetry).__name__ != "NNCFTelemetry"
    assert convert_impl.tm.__name__.endswith("telemetry_stub")


def test_export_never_overwrites(exported, tmp_path):
    model, paths = exported
    with pytest.raises(FileExistsError):
        R.export_onnx(model, paths[("ONNX Runtime", "float32")])
    with pytest.raises(FileExistsError):
        R.export_all(model, paths[("ONNX Runtime", "float32")].parent, np.zeros((10, 28, 28)))


def test_calibration_reader_hands_out_everything_then_none():
    x = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    r = R.CalibrationReader(x, "inp", batch_size=2)
    got = []
    while (b := r.get_next()) is not None:
        got.append(b["inp"])
    assert [len(g) for g in got] == [2, 2, 1] and np.array_equal(np.concatenate(got), x)
    r.rewind()
    assert r.get_next()["inp"].shape == (2, 4)
    with pytest.raises(ValueError, match="non-empty"):
        R.CalibrationReader(np.zeros((0, 4)))


def test_ort_session_threads_and_provider(exported):
    _, paths = exported
    s = R.ort_session(paths[("ONNX Runtime", "float32")], threads=2)
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert s.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError, match="threads"):
        R.ort_session(paths[("ONNX Runtime", "float32")], threads=0)


def test_openvino_int8_runs_int8_kernels(exported):
    _, paths = exported
    prec = R.openvino_precisions(paths[("OpenVINO", "int8")])
    assert any(p in prec.index for p in ("i8", "u8")), prec


def test_energy_counter_reads_or_explains():
    path, why = R.energy_counter()
    assert (path is None) == (why != "readable")
    if path is None:
        assert "RAPL" in why or "rapl" in why
        assert R.energy_per_image_mj(lambda x: x, np.zeros((1, 28, 28))) is None


def test_pick_budget():
    t = pd.DataFrame({"runtime": ["a", "b", "c"], "precision": ["float32"] * 3, "size_kb": [100.0, 50.0, 10.0],
                      "accuracy": [0.9, 0.9, 0.8], "p50_ms_1t": [1.0, 0.5, 0.1]})
    assert R.pick(t, 2.0, 200.0).runtime == "b"  # accuracy ties: the faster
    assert R.pick(t, 0.1, 10.0).runtime == "c"  # limits are inclusive
    assert R.pick(t, 0.05, 200.0) is None
    with pytest.raises(KeyError, match="size_kb"):
        R.pick(t.drop(columns="size_kb"), 1, 1)


def test_tvm_status_is_a_measured_answer():
    ok, why = R.tvm_status()
    assert isinstance(ok, bool) and why


def test_unknown_kind_and_runtime_are_explained():
    with pytest.raises(ValueError, match="conv_heavy"):
        R.trained_model("huge", np.zeros((2, 28, 28)), np.zeros(2))
    with pytest.raises(ValueError, match="ONNX Runtime"):
        R.load(("TensorRT", "int8"), "x")


def test_openvino_float32_variant_runs_in_f32(tmp_path):
    """OpenVINO's CPU plugin would run a "float32" model in bf16 on AVX512-BF16 / AMX CPUs unless pinned: the
    float32 and int8 variants' compiled models must report f32; the bf16 variant is its own row."""
    from mlcourse import machine
    from mlcourse.checks.runtimes import tiny_onnx_model

    onnx_path = tiny_onnx_model(tmp_path / "tiny.onnx")
    for precision in ("float32", "int8"):
        runner = R.load(("OpenVINO", precision), onnx_path, threads=1)
        assert R.openvino_inference_precision(runner._compiled) == "f32"
    reported = R.openvino_inference_precision(R.openvino_compile(onnx_path, "bf16"))
    if machine.has(*machine.NATIVE_BF16):  # AVX512-BF16 / AMX: the hint is honoured
        assert reported == "bf16"
    else:  # an AVX2-only CPU: OpenVINO keeps f32 where it cannot run bf16 (the notebook prints which it did)
        assert reported in ("bf16", "f32")
    status = R.openvino_bf16_status(onnx_path)
    assert set(status) == {"avx512_bf16", "amx_bf16", "reported", "operations", "error"}
    assert status["error"] is not None or status["operations"]
    with pytest.raises(ValueError, match="Unknown OpenVINO precision"):
        R.openvino_compile(onnx_path, "fp8")


def test_sizes_table_and_warm_cache_take_a_size():
    assert set(R.SIZES) == set(settings.SIZES)
    assert R.sizes("smoke")["N_TRAIN"] < R.sizes("lesson")["N_TRAIN"] <= R.sizes("full")["N_TRAIN"]
    assert R.sizes("lesson", N_TRAIN=123, EPOCHS=None)["N_TRAIN"] == 123
    assert R.sizes("full")["WIDE_UNITS"] >= 2048  # float32 weights far beyond a 2 MB L2 cache
    with pytest.raises(ValueError, match="unknown"):
        R.sizes("lesson", N_TRIAN=5)
    with pytest.raises(TypeError, match="size"):
        R.warm_cache(None, True)


def test_keras_export_and_the_explicit_converters_agree(exported, ds, tmp_path):
    """Also once tensorflow_model_optimization is imported (it turns ``tf.keras`` into tf_keras, and converters
    that recognise a Keras model by ``tf.keras.Model`` then failed on a Keras 3 one: the CI order that found it)."""
    import tensorflow_model_optimization  # noqa: F401

    model, _ = exported
    _, _, xt, _ = ds
    t = R.compare_exports(model, tmp_path / "exports", xt[:16])
    assert set(zip(t.format, t.route)) == {(f, r) for f in R.EXPORTS for r in ("model.export", "converter")}
    failed = t[t.error != ""]
    assert failed.empty, "\n".join(f"{r.format} via {r.route}: {r.error}" for r in failed.itertuples())
    assert (t.max_abs_diff < 1e-4).all() and (t.agreement == 1.0).all(), t
    assert (t.bytes > 0).all()
    with pytest.raises(ValueError, match="Unknown format"):
        R.convert_explicitly(model, "coreml", tmp_path / "x")


@pytest.fixture(scope="module")
def int8_blob(exported, ds):
    model, _ = exported
    return litert.to_tflite(model, "int8", ds[0][:100])


def test_micro_graph_arena_and_resolver(int8_blob):
    ops = R.ops_of(int8_blob)
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops and "DELEGATE" not in ops
    code = R.resolver_code(int8_blob)
    assert "AddConv2D();" in code and "AddFullyConnected();" in code and "AddMaxPool2D();" in code
    assert f"MicroMutableOpResolver<{len(set(ops))}>" in code
    graph, nbytes = R.graph_of(int8_blob)
    est = R.arena_estimate(graph, nbytes)
    assert max(nbytes.values()) <= est < sum(nbytes.values())
    fit = R.mcu_fit(len(int8_blob), est)
    assert fit.fits.all() and (fit.shrink_by == 1.0).all()
    tight = R.mcu_fit(len(int8_blob), est, sram=est // 2, flash=len(int8_blob) // 4)
    assert not tight.fits.any() and tight.shrink_by.tolist() == pytest.approx([4.0, 2.0], rel=0.01)


def test_tflite_micro_runs_the_int8_model_or_says_why(int8_blob, ds):
    ok, why = R.tflm_status()
    if not ok:
        pytest.skip(f"tflite-micro not installed: {why}")
    _, _, xt, _ = ds
    arena = R.tflm_min_arena(int8_blob, xt[0])
    graph, nbytes = R.graph_of(int8_blob)
    assert arena >= R.arena_estimate(graph, nbytes)  # the estimate is a lower bound: TFLM adds its own structures
    with pytest.raises(Exception):
        R.tflm_predict(R.tflm_interpreter(int8_blob, arena // 4), xt[:1])
    micro = R.tflm_predict(R.tflm_interpreter(int8_blob, arena), xt[:20])
    lite = litert.run_interpreter(litert.interpreter(int8_blob), xt[:20], 20)
    assert np.abs(micro - lite).max() <= 1 / 256 + 1e-6  # at most one step of the uint8 output
    assert (micro.argmax(1) == lite.argmax(1)).mean() >= 0.95


def test_int8_latency_table_on_a_small_mlp(ds):
    m = R.wide_mlp(64)
    assert m.count_params() == 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    t = R.int8_latency({"small": m}, ds[0][:100].reshape(100, -1), rounds=2, number=2)
    assert list(t.model) == ["small"]
    assert (t[["float32 ms", "int8 ms"]] > 0).all().all()
    assert t["int8 file MB"].iloc[0] < t["float32 file MB"].iloc[0]
    assert any(w in t.verdict.iloc[0] for w in ("faster", "slower", "too close"))


def test_tvm_compiles_and_agrees_or_says_why(tmp_path):
    ok, why = R.tvm_status()
    if not ok:
        pytest.skip(f"apache-tvm not installed (pip install -e '.[tvm]'): {why}")
    model = models.build_model(HP)
    onnx_path = R.export_onnx(model, tmp_path / "tvm.onnx", batch=1)
    vm = R.tvm_program(R.tvm_module(onnx_path, 1))
    x = np.random.default_rng(0).uniform(0, 255, (3, 28, 28)).astype("float32")
    assert np.abs(R.tvm_run(vm, x) - model.predict(x, verbose=0)).max() < 1e-4
