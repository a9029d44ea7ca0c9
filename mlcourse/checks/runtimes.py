"""Checkers of the exercises of notebook 09 runtimes (ONNX Runtime session, static int8 quantization with a
calibration reader, picking a runtime for a budget, a
microcontroller's tensor arena). Each runs in seconds on a fixed tiny ONNX model."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["tiny_onnx_model", "check_ort_session", "check_ort_quantizer", "check_pick_runtime", "check_arena_estimate"]


def tiny_onnx_model(path) -> Path:
    """Write a fixed tiny ONNX classifier (16 features -> 32 ReLU -> 4 classes, softmax) to ``path``; the input
    is called ``"x"`` and takes float32 batches ``(N, 16)``. Built with ``onnx.helper``: no training, no TF."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (16, 32)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 32).astype(np.float32)
    w2 = rng.normal(0, 0.5, (32, 4)).astype(np.float32)
    b2 = np.zeros(4, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["z0"]),
             helper.make_node("Add", ["z0", "b2"], ["z1"]), helper.make_node("Softmax", ["z1"], ["probs"], axis=-1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 16)).astype(np.float32)


def check_ort_session(fn) -> None:
    """Exercise 9.1: ``fn(path, threads) -> onnxruntime.InferenceSession`` on the CPU provider only, with
    ``threads`` intra-op threads, whose answers match the model's.

    Lesson: 09_runtimes § ✏️ Exercise 9.1: an ONNX Runtime session for a thread budget.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_onnx_model(Path(tmp) / "tiny.onnx")
        ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = _inputs(8, 1)
        for threads in (1, 2):
            sess = fn(str(path), threads)
            assert isinstance(sess, ort.InferenceSession), (
                f"fn should return an onnxruntime.InferenceSession, got {type(sess).__name__}.")
            assert sess.get_providers() == ["CPUExecutionProvider"], (
                f"The session uses providers {sess.get_providers()}: pass providers=['CPUExecutionProvider'] so "
                "it runs on this CPU only (other installed providers, such as Azure, can call remote services).")
            got = sess.get_session_options().intra_op_num_threads
            assert got == threads, (
                f"Asked for {threads} thread(s), the session has intra_op_num_threads={got}: create "
                "ort.SessionOptions(), set so.intra_op_num_threads = threads and pass it to InferenceSession.")
            out = sess.run(None, {"x": x})[0]
            assert np.allclose(out, ref.run(None, {"x": x})[0], atol=1e-5), (
                "The session's answers differ from the model's: load the file you were given, unchanged.")
    _passed("9.1", "CPU provider only, intra_op_num_threads = 1 and 2 as asked, answers match the model.")


def check_ort_quantizer(fn) -> None:
    """Exercise 9.2: ``fn(float_path, int8_path, calibration_images)`` writes a statically quantized int8 model
    (``quantize_static`` with a calibration data reader) at ``int8_path`` that runs, holds int8 operations and
    agrees on the top-1 class with the float model on at least 90 % of fixed inputs (no timing is asserted).

    Lesson: 09_runtimes § ✏️ Exercise 9.2: static int8 quantization with a calibration reader.
    """
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = tiny_onnx_model(Path(tmp) / "float.onnx"), Path(tmp) / "int8.onnx"
        calibration = _inputs(64, 2)
        fn(str(src), str(dst), calibration)
        assert dst.is_file(), f"No file at int8_path ({dst.name}): quantize_static(..., model_output=int8_path, ...)."
        ops = [n.op_type for n in onnx.load(str(dst)).graph.node]
        int8_ops = [o for o in ops if o in ("QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "MatMulInteger",
                                            "QLinearConv", "ConvInteger", "DynamicQuantizeLinear")]
        assert int8_ops, (f"The written model has no int8 operations (ops: {sorted(set(ops))}): call "
                          "onnxruntime.quantization.quantize_static(float_path, int8_path, reader) with your reader.")
        assert "DynamicQuantizeLinear" not in ops, (
            "The model quantizes activations at run time (DynamicQuantizeLinear): that is quantize_dynamic. Use "
            "quantize_static with a CalibrationDataReader, so the activation ranges come from the calibration images.")
        x = _inputs(400, 3)
        f32 = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        q = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        agree = float((f32.argmax(1) == q.argmax(1)).mean())
        assert agree >= 0.9, (
            f"The int8 model agrees with the float one on only {agree:.0%} of 400 inputs (need >= 90 %): does "
            "your reader hand out every calibration image, as {input name: float32 batch of shape (n, 16)}, and "
            "return None at the end?")
    _passed("9.2", "an int8 model was written (QDQ / int8 operations), it runs and agrees with float32 on at least "
                   "90 % of 400 fixed inputs.")


def _budget_table():
    import pandas as pd

    return pd.DataFrame({
        "runtime": ["LiteRT", "LiteRT", "ONNX Runtime", "ONNX Runtime", "OpenVINO", "OpenVINO"],
        "precision": ["float32", "int8", "float32", "int8", "float32", "int8"],
        "size_kb": [1650.0, 420.0, 1640.0, 430.0, 1700.0, 450.0],
        "accuracy": [0.912, 0.910, 0.912, 0.905, 0.912, 0.910],
        "p50_ms_1t": [0.30, 0.22, 0.25, 0.40, 0.35, 0.18],
    })


def check_pick_runtime(fn) -> None:
    """Exercise 9.3: ``fn(table, max_latency_ms, max_size_kb)`` returns the most accurate row that fits both
    budgets (ties: the faster one), or ``None`` when none fits.

    Lesson: 09_runtimes § ✏️ Exercise 9.3: pick the runtime for a budget.
    """
    import pandas as pd

    table = _budget_table()
    cases = [((1.0, 5000.0), 2, "no limit that binds: the most accurate; three tie at 0.912, ONNX Runtime float32 "
                                "is the fastest of them"),
             ((0.24, 5000.0), 5, "under 0.24 ms only the two int8 rows at 0.22 and 0.18 ms fit; both have 0.910, so "
                                 "the faster, OpenVINO int8"),
             ((1.0, 500.0), 5, "under 500 KB only the int8 rows fit; 0.910 ties, the faster wins"),
             ((0.20, 400.0), None, "nothing is both under 0.20 ms and 400 KB"),
             ((0.22, 420.0), 1, "LiteRT int8 at exactly 0.22 ms and 420 KB fits (limits are inclusive)")]
    for (lat, size), want, why in cases:
        got = fn(table.copy(), lat, size)
        if want is None:
            assert got is None, f"Budget {lat} ms / {size} KB: {why}; return None, got {got!r}."
            continue
        exp = table.iloc[want]
        assert got is not None, (f"Budget {lat} ms / {size} KB: expected {exp['runtime']} {exp['precision']} ({why}), "
                                 "got None.")
        assert isinstance(got, pd.Series), (
            f"Budget {lat} ms / {size} KB: return the chosen row (table.loc[...] or .iloc[...], a pandas Series), "
            f"got {type(got).__name__}.")
        assert (got["runtime"], got["precision"]) == (exp["runtime"], exp["precision"]), (
            f"Budget {lat} ms / {size} KB: expected {exp['runtime']} {exp['precision']} ({why}), got "
            f"{got['runtime']} {got['precision']}.")
    _passed("9.3", "five budgets: the most accurate fitting row (ties to the faster, limits inclusive), None when "
                   "nothing fits.")


#: Tiny graphs for 8.4: (ops, activation bytes, the right peak, what it teaches). Tensor 99 is a weight (not in RAM).
_ARENA_CASES = [
    ([([0], [1]), ([1, 99], [2]), ([2], [3])], {0: 100, 1: 200, 2: 50, 3: 10}, 300,
     "a chain: input 0 (100 B) -> 1 (200 B) -> 2 (50 B) -> 3 (10 B); a tensor is freed after its last reader, so the "
     "peak is the first op's input + output, 300 B (not the 360 B of every activation at once)"),
    ([([0], [1]), ([1], [2]), ([0, 2], [3])], {0: 100, 1: 400, 2: 10, 3: 10}, 510,
     "a skip connection: input 0 is read again by the last op, so it stays alive while op 1 runs (0 + 1 + 2 = 510 B); "
     "counting only each op's own inputs and outputs gives 500 B"),
    ([([0], [1]), ([1], [2]), ([1], [3])], {0: 10, 1: 10, 2: 100, 3: 100}, 210,
     "two graph outputs: output 2 is never read by an op, but the caller reads it after the last op, so it stays "
     "alive to the end (1 + 2 + 3 = 210 B at the last op)"),
    ([([0, 98], [1]), ([1, 99], [2])], {0: 1000, 1: 10, 2: 10}, 1010,
     "weights 98 and 99 live in flash: they are not in activation_bytes and must not be counted (nor looked up)"),
]


def check_arena_estimate(fn) -> None:
    """Exercise 9.4: ``fn(ops, activation_bytes)`` returns the peak bytes of activations alive at once: a tensor
    lives from the op that writes it (graph inputs: from the start) to the last op that reads it (graph outputs:
    to the end); tensors not in ``activation_bytes`` (weights) are not counted.

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    for ops, nbytes, want, why in _ARENA_CASES:
        try:
            got = fn([(list(i), list(o)) for i, o in ops], dict(nbytes))
        except KeyError as exc:
            raise AssertionError(f"KeyError {exc} on {why.split(':')[0]}: tensors that are not in activation_bytes "
                                 "are weights; skip them.") from None
        assert got is not None, "fn returned None: return the peak, in bytes (an int)."
        assert got == want, f"Expected {want} B, got {got}: {why}."
    _passed("9.4", "a chain, a skip connection, graph outputs kept to the end, weights left out: every peak right.")
