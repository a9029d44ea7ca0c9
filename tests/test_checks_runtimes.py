"""The checkers of notebook 09 runtimes: each passes a right answer and rejects typical wrong ones with an
explanation, in seconds."""
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from mlcourse import checks


def _session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def test_ort_session_checker(capsys):
    import onnxruntime as ort

    checks.check_ort_session(_session)
    assert "✅ Exercise 9.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="intra_op_num_threads"):  # options forgotten
        checks.check_ort_session(lambda p, t: ort.InferenceSession(p, providers=["CPUExecutionProvider"]))
    with pytest.raises(AssertionError, match="CPUExecutionProvider"):  # every installed provider
        checks.check_ort_session(lambda p, t: ort.InferenceSession(p, _opts(t), providers=ort.get_available_providers())
                                 if len(ort.get_available_providers()) > 1 else _no_provider_list())


def _opts(t):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = t
    return so


def _no_provider_list():
    raise AssertionError("only one provider installed: CPUExecutionProvider")


class _Reader:
    def __init__(self, x, name="x"):
        self.it = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.it, None)


def _quantize(src, dst, images):
    from onnxruntime.quantization import quantize_static

    quantize_static(src, dst, _Reader(np.asarray(images, np.float32)))


def test_ort_quantizer_checker(capsys):
    t0 = time.perf_counter()
    checks.check_ort_quantizer(_quantize)
    assert "✅ Exercise 9.2 passed" in capsys.readouterr().out
    assert time.perf_counter() - t0 < 10
    with pytest.raises(AssertionError, match="No file"):
        checks.check_ort_quantizer(lambda src, dst, x: None)
    with pytest.raises(AssertionError, match="no int8 operations"):  # a copy is not a quantized model
        checks.check_ort_quantizer(lambda src, dst, x: shutil.copy(src, dst))

    def dynamic(src, dst, x):
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(src, dst)

    with pytest.raises(AssertionError, match="quantize_dynamic"):
        checks.check_ort_quantizer(dynamic)


def _pick(table, max_latency_ms, max_size_kb):
    fits = table[(table.p50_ms_1t <= max_latency_ms) & (table.size_kb <= max_size_kb)]
    if fits.empty:
        return None
    return fits.sort_values(["accuracy", "p50_ms_1t"], ascending=[False, True]).iloc[0]


def test_pick_runtime_checker(capsys):
    checks.check_pick_runtime(_pick)
    assert "✅ Exercise 9.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="return None"):  # "none fits" not handled: an empty frame
        checks.check_pick_runtime(lambda t, lat, s: _pick(t, lat, s) if _pick(t, lat, s) is not None
                                  else pd.Series(dtype=object))
    with pytest.raises(AssertionError, match="fastest|faster"):  # ties not broken by latency
        checks.check_pick_runtime(lambda t, lat, s: None if _pick(t, lat, s) is None
                                  else t[(t.p50_ms_1t <= lat) & (t.size_kb <= s)].sort_values("accuracy",
                                                                                             ascending=False).iloc[0])
    with pytest.raises(AssertionError, match="inclusive"):  # strict limits
        checks.check_pick_runtime(lambda t, lat, s: _pick(t, lat - 1e-9, s - 1e-9))


def test_pick_matches_the_module():
    from mlcourse import runtimes
    from mlcourse.checks.runtimes import _budget_table

    t = _budget_table()
    for lat, size in ((1.0, 5000.0), (0.24, 5000.0), (1.0, 500.0), (0.2, 400.0), (0.22, 420.0)):
        a, b = _pick(t, lat, size), runtimes.pick(t, lat, size)
        assert (a is None and b is None) or a.equals(b)


def _peak(ops, nbytes):
    from mlcourse.runtimes import arena_estimate

    return arena_estimate(ops, nbytes)


def _every_activation(ops, nbytes):  # no reuse: every tensor alive at once
    return sum(nbytes.values())


def _own_tensors_only(ops, nbytes):  # forgets tensors kept alive for a later op (skip connections)
    return max(sum(nbytes.get(t, 0) for t in ins + outs) for ins, outs in ops)


def _outputs_freed(ops, nbytes):  # a tensor nobody reads is freed at once, graph outputs too
    last, born = {}, {}
    for k, (ins, outs) in enumerate(ops):
        for t in ins:
            last[t] = k
        for t in outs:
            born[t], last[t] = k, max(last.get(t, k), k)
    return max(sum(b for t, b in nbytes.items() if born.get(t, -1) <= k <= last.get(t, -1)) for k in range(len(ops)))


def _weights_looked_up(ops, nbytes):
    return max(sum(nbytes[t] for t in ins + outs) for ins, outs in ops)


def test_arena_estimate_checker(capsys):
    t0 = time.perf_counter()
    checks.check_arena_estimate(_peak)
    assert "✅ Exercise 9.4 passed" in capsys.readouterr().out
    assert time.perf_counter() - t0 < 5
    with pytest.raises(AssertionError, match="360"):
        checks.check_arena_estimate(_every_activation)
    with pytest.raises(AssertionError, match="skip connection"):
        checks.check_arena_estimate(_own_tensors_only)
    with pytest.raises(AssertionError, match="graph outputs"):
        checks.check_arena_estimate(_outputs_freed)
    with pytest.raises(AssertionError, match="weights"):
        checks.check_arena_estimate(_weights_looked_up)
    with pytest.raises(AssertionError, match="None"):
        checks.check_arena_estimate(lambda ops, nbytes: None)
