"""Deployment runtimes side by side: one trained model on LiteRT, ONNX Runtime, OpenVINO (+ NNCF) and TVM.

Serves notebook ``08_runtimes``. The notebook writes the real calls in plain sight (``model.export(...,
format="onnx")``, ``onnxruntime.InferenceSession`` with ``SessionOptions``, ``quantize_static`` with a
``CalibrationDataReader``, ``ov.convert_model``, ``ov.Core().compile_model``, ``nncf.quantize``); this module is
the tested version of those cells plus the plumbing:

* :func:`trained_model`: the course's tuned CNN (``"tuned"``) or a conv-heavy twin (``"conv_heavy"``), trained
  once through :func:`mlcourse.cache.cached_model` (:func:`warm_cache` fills the cache ahead of a session);
* :func:`export_all`: every variant written to disk once (LiteRT float32 / dynamic / int8, ONNX float32 / int8,
  OpenVINO IR float32 / int8 through NNCF, TVM when it is installed);
* :func:`load`: a variant as a ``predict(x) -> probabilities`` callable with a given thread count;
* :func:`benchmark`: one table: size on disk, accuracy, top-1 agreement with Keras, first-call time, median and
  p95 latency at batch 1 and throughput at batch 64, with 1 thread and with every core, all runtimes timed
  interleaved (:func:`mlcourse.timing.interleaved`) on the same inputs;
* :func:`cpu_features`, :func:`runtime_report`, :func:`energy_counter`: what this CPU offers, what each runtime
  says it used, and whether an energy counter (RAPL) can be read;
* :func:`pick`: the most accurate variant that fits a latency and size budget (or ``None``).

Telemetry: OpenVINO's model converter and NNCF send usage statistics through the ``openvino-telemetry`` package
unless told not to. Importing this module blocks that package for the process (both then fall back to their
built-in no-op stubs), before ``openvino`` or ``nncf`` is imported: nothing is sent and no consent file is written.
On your own machine ``opt_in_out --opt_out`` does the same for good.

    python -m mlcourse.runtimes            # the full table (60,000 training images, full test set)
    python -m mlcourse.runtimes --smoke    # a tiny run
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# ------------------------------------------------------------------------------------------ telemetry off
# ``import openvino_telemetry`` now raises ImportError: openvino.tools.ovc and nncf both catch it and use their stubs.
if "openvino_telemetry" not in sys.modules:
    sys.modules["openvino_telemetry"] = None
os.environ.setdefault("NNCF_CI", "1")  # NNCF's own switch: "running in CI, send nothing" (a second lock)

__all__ = ["TUNED_HP", "CONV_HEAVY_HP", "MODELS", "VARIANTS", "telemetry_blocked", "trained_model", "warm_cache",
           "default_sizes", "export_onnx", "CalibrationReader", "quantize_onnx", "ort_session", "openvino_int8",
           "tvm_status",
           "export_all", "size_on_disk", "load", "first_call_s", "benchmark", "plot", "cpu_features",
           "runtime_report", "openvino_precisions", "openvino_compile", "openvino_inference_precision",
           "openvino_bf16_status", "OPENVINO_HINTS", "energy_counter", "energy_per_image_mj", "pick", "summary", "run",
           "main"]

from mlcourse.serving import TUNED_HP  # noqa: E402  (after the telemetry switch)

#: A conv-heavy counterpart of the fixed CNN: three wider conv blocks and no big dense layer, several times the
#: multiply-adds: the work moves from a matrix-vector product to convolutions (08 prints both parameter counts).
CONV_HEAVY_HP = {"arch": "cnn", "filters": [64, 128, 128], "dense_units": 0, "dropout": 0.1, "learning_rate": 1e-3}
MODELS = {"tuned": TUNED_HP, "conv_heavy": CONV_HEAVY_HP}
#: Every variant: (runtime, precision). TVM joins when :func:`tvm_status` says it works.
VARIANTS = [("LiteRT", "float32"), ("LiteRT", "dynamic"), ("LiteRT", "int8"),
            ("ONNX Runtime", "float32"), ("ONNX Runtime", "int8"),
            ("OpenVINO", "float32"), ("OpenVINO", "bf16"), ("OpenVINO", "int8")]
#: OpenVINO's ``INFERENCE_PRECISION_HINT`` per variant. Left unset, its CPU plugin runs a "float32" model in
#: bfloat16 on CPUs with AVX512-BF16 / AMX: the float32 (and the int8 model's float parts) are pinned to f32, and
#: bf16 is its own variant (same IR; on a CPU without native bf16 see :func:`openvino_bf16_status`).
OPENVINO_HINTS = {"float32": "f32", "int8": "f32", "bf16": "bf16"}
TVM_VARIANT = ("TVM", "float32")


def telemetry_blocked() -> bool:
    """True when OpenVINO / NNCF telemetry is off in this process (``openvino_telemetry`` cannot be imported)."""
    return sys.modules.get("openvino_telemetry", 0) is None


# ---------------------------------------------------------------------------------------------- models
def trained_model(kind: str, x, y, epochs: int = 4, seed: int = 0):
    """The ``kind`` model (``"tuned"`` or ``"conv_heavy"``, see :data:`MODELS`) trained on ``(x, y)`` (Keras 3),
    from the workshop cache when the same recipe was trained before."""
    from mlcourse.cache import trained_model as cached_training

    if kind not in MODELS:
        raise ValueError(f"Unknown model kind {kind!r}: use one of {list(MODELS)}.")
    return cached_training(f"runtimes-{kind}", x, y, MODELS[kind], epochs, seed=seed, model_name=kind)


def default_sizes(smoke: bool) -> dict:
    """The notebook's default sizes: training images and epochs (08_runtimes and warm_cache read the same)."""
    return {"n_train": 1_000 if smoke else 60_000, "epochs": 1 if smoke else 4}


def warm_cache(ds, smoke: bool, seed: int = 0) -> None:
    """Train and cache 08_runtimes' two models at the notebook's default sizes (``make workshop``)."""
    from mlcourse import data

    s = default_sizes(smoke)
    x, y = data.stratified_subset(ds.x_train, ds.y_train, s["n_train"], seed=seed)
    for kind in MODELS:
        trained_model(kind, x, y, epochs=s["epochs"], seed=seed)


# ------------------------------------------------------------------------------------------ ONNX Runtime
def export_onnx(model, path, batch: int | None = None) -> Path:
    """Write ``model`` as ONNX. Keras 3 models with a free batch size go through ``model.export(path,
    format="onnx")`` (which calls tf2onnx); tf_keras models, or a fixed ``batch`` (what TVM wants), through
    ``tf2onnx.convert.from_keras`` directly. Never overwrites an existing file."""
    from mlcourse.models import flavor_of

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: choose a new path (nothing was overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    from mlcourse.runtime import silenced

    with warnings.catch_warnings(), silenced():
        warnings.simplefilter("ignore")
        if batch is None and flavor_of(model) == "keras3":
            model.export(str(path), format="onnx", verbose=False)
        else:
            import tensorflow as tf
            import tf2onnx

            shape = (batch,) + tuple(model.input_shape[1:])
            spec = (tf.TensorSpec(shape, tf.float32, name="image"),)
            tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    return path


class CalibrationReader:
    """An ONNX Runtime calibration data reader: hands ``images`` to ``quantize_static`` one batch at a time.

    ``quantize_static`` calls ``get_next()`` until it returns ``None``; each call returns ``{input name: batch}``.
    (A subclass of ``onnxruntime.quantization.CalibrationDataReader`` in spirit; duck typing is all it needs.)
    """

    def __init__(self, images, input_name: str = "image", batch_size: int = 1):
        x = np.asarray(images, dtype=np.float32)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"images must be a non-empty batch (N, ...), got shape {x.shape}.")
        self.batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
        self.input_name = input_name
        self._it = iter(self.batches)

    def get_next(self):
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self):
        self._it = iter(self.batches)


def quantize_onnx(src, dst, calibration, per_channel: bool = True) -> Path:
    """int8 ONNX model from a float one by static post-training quantization (QDQ format, int8 weights per
    channel, uint8 activations calibrated with min-max ranges on ``calibration`` images)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} exists: choose a new path (nothing was overwritten).")
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(src), str(dst), CalibrationReader(calibration, name), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


def ort_session(path, threads: int = 1):
    """An ONNX Runtime session on the CPU provider only (never a remote one), ``threads`` intra-op threads,
    every graph optimisation on."""
    import onnxruntime as ort

    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}.")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------------- OpenVINO
def openvino_int8(ov_model, calibration, subset_size: int | None = None):
    """int8 OpenVINO model through NNCF post-training quantization, calibrated on ``calibration`` images."""
    import nncf

    x = np.asarray(calibration, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nncf.set_log_level(40)  # errors only: no progress bars from NNCF
        return nncf.quantize(ov_model, nncf.Dataset(x, lambda image: image[None]),
                             subset_size=subset_size or len(x))


# -------------------------------------------------------------------------------------------------- TVM
def tvm_status() -> tuple[bool, str]:
    """Whether Apache TVM can be used here: ``(True, version)`` or ``(False, the error measured)``."""
    try:
        import tvm
        from tvm.relax.frontend.onnx import from_onnx  # noqa: F401
    except Exception as exc:  # noqa: BLE001  (ImportError, or a binary that does not load with this numpy)
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"apache-tvm {tvm.__version__}"


def _tvm_compile(onnx_path, batch: int):
    import onnx
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    mod = from_onnx(onnx.load(str(onnx_path)), shape_dict={"image": [batch, 28, 28]})
    target = tvm.target.Target({"kind": "llvm", "mcpu": _llvm_cpu()})
    return tvm.relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cpu())


def _llvm_cpu() -> str:
    try:
        import tvm

        return str(tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName")())
    except Exception:  # noqa: BLE001
        return "generic"


# ------------------------------------------------------------------------------------------------ export
def export_all(model, folder, calibration, tvm: bool | None = None) -> dict:
    """Write every variant of ``model`` into the new folder ``folder``; returns ``{(runtime, precision): path}``.

    ``calibration``: a few hundred training images (raw 0-255 pixels) for the int8 variants.
    ``tvm``: also a TVM variant (``None``: when :func:`tvm_status` says TVM works).
    """
    import openvino as ov

    from mlcourse.compression import to_tflite

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new folder (nothing was overwritten).")
    folder.mkdir(parents=True, exist_ok=True)
    cal = np.asarray(calibration, dtype=np.float32)
    paths = {}
    for mode in ("float32", "dynamic", "int8"):
        p = folder / f"litert_{mode}.tflite"
        p.write_bytes(to_tflite(model, mode, cal if mode == "int8" else None))
        paths[("LiteRT", mode)] = p
    paths[("ONNX Runtime", "float32")] = export_onnx(model, folder / "model.onnx")
    paths[("ONNX Runtime", "int8")] = quantize_onnx(folder / "model.onnx", folder / "model_int8.onnx", cal)
    ov_model = ov.convert_model(str(folder / "model.onnx"))
    ov.save_model(ov_model, str(folder / "openvino_float32" / "model.xml"), compress_to_fp16=False)
    paths[("OpenVINO", "float32")] = folder / "openvino_float32" / "model.xml"
    paths[("OpenVINO", "bf16")] = paths[("OpenVINO", "float32")]  # same IR, compiled with the bf16 hint
    ov.save_model(openvino_int8(ov_model, cal), str(folder / "openvino_int8" / "model.xml"))
    paths[("OpenVINO", "int8")] = folder / "openvino_int8" / "model.xml"
    if tvm is None:
        tvm = tvm_status()[0]
    if tvm:
        paths[TVM_VARIANT] = export_onnx(model, folder / "model_tvm.onnx", batch=1)
    return paths


def size_on_disk(path) -> int:
    """Bytes a variant takes on disk (an OpenVINO IR is the .xml and its .bin)."""
    path = Path(path)
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return sum(f.stat().st_size for f in files if f.exists())


# ------------------------------------------------------------------------------------------------- run
class _Runner:
    """``predict(x) -> probabilities`` for one variant; keeps one compiled program per batch size if needed."""

    def __init__(self, runtime: str, path, threads: int, precision: str = "float32"):
        self.runtime, self.path, self.threads = runtime, Path(path), int(threads)
        self._per_batch = {}
        if runtime == "ONNX Runtime":
            self._sess = ort_session(self.path, threads)
            self._name = self._sess.get_inputs()[0].name
        elif runtime == "OpenVINO":
            self._compiled = openvino_compile(self.path, precision, self.threads)
        elif runtime == "LiteRT":
            self._blob = self.path.read_bytes()
        elif runtime == "TVM":
            pass
        else:
            raise ValueError(f"Unknown runtime {runtime!r}: use one of LiteRT, ONNX Runtime, OpenVINO, TVM.")

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.runtime == "ONNX Runtime":
            return self._sess.run(None, {self._name: x})[0]
        if self.runtime == "OpenVINO":
            return self._compiled(x)[0]
        if self.runtime == "LiteRT":
            from mlcourse.compression import interpreter, run_interpreter

            it = self._per_batch.get(len(x))
            if it is None:
                it = self._per_batch[len(x)] = interpreter(self._blob, threads=self.threads)
            return run_interpreter(it, x, batch_size=len(x))
        return self._tvm(x)

    def _tvm(self, x):
        """The TVM program is compiled for batch 1 (the export fixes it); a batch runs image by image."""
        import tvm

        vm = self._per_batch.get(1)
        if vm is None:
            vm = self._per_batch[1] = _tvm_compile(self.path, 1)
        outs = []
        for i in range(len(x)):
            out = vm["main"](tvm.runtime.tensor(x[i:i + 1]))
            outs.append(out.numpy() if hasattr(out, "numpy") else out[0].numpy())
        return np.concatenate(outs)


def load(variant: tuple[str, str], path, threads: int = 1):
    """Variant ``(runtime, precision)`` stored at ``path`` as a ``predict(x) -> class probabilities`` callable
    with ``threads`` CPU threads (raw 0-255 float pixels in, batches of any size). TVM's program is compiled for
    batch 1 (a batch runs image by image) and its thread pool is sized once per process (``TVM_NUM_THREADS``)."""
    return _Runner(variant[0], path, threads, variant[1])


def openvino_compile(path, precision: str = "float32", threads: int = 1):
    """``ov.Core().compile_model`` of the IR at ``path`` for the CPU with ``threads`` threads, the latency hint and
    the inference precision of variant ``precision`` pinned (:data:`OPENVINO_HINTS`: float32 and int8 -> f32)."""
    import openvino as ov

    if precision not in OPENVINO_HINTS:
        raise ValueError(f"Unknown OpenVINO precision {precision!r}: use one of {sorted(OPENVINO_HINTS)}.")
    return ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                      "PERFORMANCE_HINT": "LATENCY",
                                                      "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision]})


def openvino_inference_precision(compiled) -> str:
    """The inference precision a compiled OpenVINO model reports (``openvino.properties.hint.inference_precision``),
    e.g. ``"f32"`` or ``"bf16"``."""
    import openvino.properties.hint as hints

    return compiled.get_property(hints.inference_precision).get_type_name()


def openvino_bf16_status(path, threads: int = 1) -> dict:
    """What OpenVINO did with the bf16 hint on this CPU: the CPU's native bf16 flags (``avx512_bf16``,
    ``amx_bf16``), the precision the compiled model reports, and how many operations its runtime model runs in each
    precision (bf16 kernels, or f32 where it fell back). A refusal is returned in ``"error"``, not raised."""
    feats = cpu_features()
    out = {"avx512_bf16": feats["AVX-512 BF16"], "amx_bf16": feats["AMX bf16 (matrix tiles)"]}
    try:
        compiled = openvino_compile(path, "bf16", threads)
    except Exception as exc:  # noqa: BLE001  (a plugin refusal is a finding to print)
        return {**out, "reported": None, "operations": {}, "error": f"{type(exc).__name__}: {exc}"}
    ops = _runtime_precisions(compiled)
    return {**out, "reported": openvino_inference_precision(compiled), "operations": {k: int(v) for k, v in
                                                                                       ops.items()}, "error": None}


def first_call_s(variant, path, image, threads: int = 1) -> float:
    """Seconds from nothing to the first answer: load (and compile) the variant, then predict one image."""
    t0 = time.perf_counter()
    load(variant, path, threads)(np.asarray(image, dtype=np.float32)[None])
    return time.perf_counter() - t0


def _predict_all(fn, x, batch: int = 64) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    out, n = [], len(x)
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        if len(xb) < batch:  # one fixed batch shape for every runtime (TVM's program has one)
            xb = np.concatenate([xb, np.repeat(xb[-1:], batch - len(xb), axis=0)])
        out.append(fn(xb)[: min(batch, n - i)])
    return np.concatenate(out)


def benchmark(keras_model, paths: dict, x_test, y_test, rounds: int = 7, number: int = 20,
              threads=(1, None), progress: bool = True) -> pd.DataFrame:
    """One row per variant: size on disk, accuracy and top-1 agreement with the Keras model on ``(x_test,
    y_test)``, first-call seconds, median / p95 latency at batch 1 and images/s at batch 64, for each thread
    count in ``threads`` (``None`` = every core). Variants are timed interleaved on the same inputs."""
    from tqdm.auto import tqdm

    from mlcourse import timing

    x_test = np.asarray(x_test, dtype=np.float32)
    keras_top1 = keras_model.predict(x_test, batch_size=512, verbose=0).argmax(1)
    all_cores = os.cpu_count() or 1
    thread_counts = [all_cores if t is None else int(t) for t in threads]
    thread_counts = list(dict.fromkeys(thread_counts))
    one, batch = x_test[:1], x_test[:64]
    if len(batch) < 64:
        batch = np.resize(x_test, (64,) + x_test.shape[1:])
    rows = {v: {"runtime": v[0], "precision": v[1], "size_kb": size_on_disk(p) / 1024} for v, p in paths.items()}
    steps = tqdm(total=len(paths) + 2 * len(thread_counts), desc="runtimes", **({} if progress else {"disable": True}))
    runners = {}  # (variant, threads) -> loaded once, reused for accuracy and timing
    for v, p in paths.items():
        rows[v]["first_call_s"] = first_call_s(v, p, one[0])
        runners[v, all_cores] = load(v, p, all_cores)
        top1 = _predict_all(runners[v, all_cores], x_test).argmax(1)
        rows[v]["accuracy"] = float((top1 == np.asarray(y_test)).mean())
        rows[v]["agreement"] = float((top1 == keras_top1).mean())
        steps.update()
    for t in thread_counts:
        now = {v: runners.get((v, t)) or load(v, p, t) for v, p in paths.items()}
        for label, xb, col in (("batch 1", one, f"p50_ms_{t}t"), ("batch 64", batch, f"img_s_{t}t")):
            table = timing.interleaved({v: (lambda r=r: r(xb)) for v, r in now.items()}, rounds=rounds,
                                       number=number if label == "batch 1" else max(1, number // 4))
            for v in paths:
                if label == "batch 1":
                    rows[v][col] = table.loc[[v], "median_ms"].iloc[0]
                    rows[v][f"p95_ms_{t}t"] = table.loc[[v], "p95_ms"].iloc[0]
                else:
                    rows[v][col] = 64 / table.loc[[v], "median_ms"].iloc[0] * 1e3
            steps.update()
    steps.close()
    out = pd.DataFrame(list(rows.values()))
    out.attrs["threads"] = thread_counts
    return out


def plot(table: pd.DataFrame, ax=None, title: str = "Runtimes on this CPU"):
    """Latency at batch 1 (one thread; bar) against size on disk, per variant, with accuracy in the label."""
    import matplotlib.pyplot as plt

    ts = table.attrs.get("threads") or [1]
    lat = f"p50_ms_{ts[0]}t"
    if lat not in table:
        raise ValueError(f"the table has no {lat!r} column: pass the table benchmark() returned.")
    ax = ax or plt.subplots(figsize=(9, 5))[1]
    markers = {"LiteRT": "o", "ONNX Runtime": "s", "OpenVINO": "^", "TVM": "D"}
    colors = {"float32": "tab:blue", "dynamic": "tab:orange", "int8": "tab:green"}
    model_col = "model" if "model" in table else None
    for _, r in table.iterrows():
        face = colors.get(r.precision, "tab:gray")
        hollow = model_col and r[model_col] != table[model_col].iloc[0]
        ax.errorbar(r["size_kb"], r[lat], yerr=[[0], [max(0.0, r[f"p95_ms_{ts[0]}t"] - r[lat])]],
                    marker=markers.get(r.runtime, "x"), ms=9, ls="none", color=face,
                    mfc="none" if hollow else face, capsize=3)
        ax.annotate(f"{r.runtime} {r.precision}" + (f" ({r[model_col]})" if model_col else "")
                    + f"\nacc {r.accuracy:.3f}", (r["size_kb"], r[lat]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=m, ls="none", color="k", label=k) for k, m in markers.items()
               if k in set(table.runtime)]
    handles += [Line2D([], [], marker="o", ls="none", color=c, label=k) for k, c in colors.items()
                if k in set(table.precision)]
    if model_col and table[model_col].nunique() > 1:
        handles += [Line2D([], [], marker="o", ls="none", color="k", label=str(m), mfc="k" if i == 0 else "none")
                    for i, m in enumerate(table[model_col].unique())]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set(xscale="log", yscale="log", xlabel="size on disk (KB, log scale)",
           ylabel=f"latency at batch 1, {ts[0]} thread(s) (ms, median; bar to p95)", title=title)
    return ax


# ------------------------------------------------------------------------------------------- hardware
_FLAGS = {"sse4_2": "SSE4.2", "avx": "AVX", "avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "avx512f": "AVX-512",
          "avx512_vnni": "AVX-512 VNNI (int8 dot products)", "avx_vnni": "AVX-VNNI (int8 dot products)",
          "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX bf16 (matrix tiles)", "amx_int8": "AMX int8 (matrix tiles)"}


def cpu_features(cpuinfo: str | None = None) -> dict:
    """What this CPU offers (:mod:`mlcourse.machine`, or the text of a ``/proc/cpuinfo`` passed as ``cpuinfo``):
    model name, cores, and which of the instruction sets runtimes use for inference are present (``True`` /
    ``False`` per flag)."""
    from mlcourse import machine

    info = machine.cpu(cpuinfo)
    flags = info["flags"]
    out = {"cpu": info["model"] if info["model"] != "unknown CPU" else "unknown", "cores": info["cores"]}
    out.update({label: flag in flags for flag, label in _FLAGS.items()})
    out["int8 dot-product instructions"] = machine.has(*machine.INT8_DOT, cpuinfo=cpuinfo)
    return out


def runtime_report() -> pd.DataFrame:
    """What each runtime reports about itself on this machine (version, devices / providers, capabilities)."""
    import ai_edge_litert
    import onnxruntime as ort
    import openvino as ov

    core = ov.Core()
    rows = [
        {"runtime": "LiteRT", "version": getattr(ai_edge_litert, "__version__", "?"),
         "what it reports": "CPU kernels through the XNNPACK delegate (float) and its own int8 kernels"},
        {"runtime": "ONNX Runtime", "version": ort.__version__,
         "what it reports": f"device {ort.get_device()}; providers used here: CPUExecutionProvider "
                            f"(installed: {', '.join(ort.get_available_providers())})"},
        {"runtime": "OpenVINO", "version": ov.get_version().split("-")[0],
         "what it reports": f"{core.get_property('CPU', 'FULL_DEVICE_NAME')}; OPTIMIZATION_CAPABILITIES "
                            f"{core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}"},
    ]
    ok, why = tvm_status()
    rows.append({"runtime": "TVM", "version": why if ok else "not available",
                 "what it reports": f"LLVM target cpu {_llvm_cpu()}" if ok else why})
    return pd.DataFrame(rows)


def openvino_precisions(path, threads: int = 1) -> pd.Series:
    """How many operations the compiled OpenVINO model runs in each precision (its runtime model's
    ``runtimePrecision``): shows whether the int8 IR really runs int8 kernels on this CPU."""
    return _runtime_precisions(openvino_compile(path, "float32", threads))  # float ops pinned to f32


def _runtime_precisions(compiled) -> pd.Series:
    precisions = []
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "runtimePrecision" in info:
            precisions.append(str(info["runtimePrecision"].astype(str)))
    return pd.Series(precisions, dtype=str).value_counts().rename("operations")


def energy_counter() -> tuple[Path | None, str]:
    """The RAPL package-energy counter (``/sys/class/powercap/intel-rapl*/energy_uj``) if one can be read:
    ``(path, "readable")``, else ``(None, the reason)``."""
    base = Path("/sys/class/powercap")
    if not base.exists():
        return None, ("/sys/class/powercap does not exist: this kernel exposes no RAPL energy counter here "
                      "(typical inside a virtual machine or container, and on CPUs or kernels without the "
                      "intel_rapl / amd energy driver).")
    files = sorted(base.glob("intel-rapl*/energy_uj"))
    if not files:
        return None, "/sys/class/powercap has no intel-rapl*/energy_uj: no RAPL domain is exposed."
    for f in files:
        try:
            int(f.read_text())
            return f, "readable"
        except (OSError, ValueError) as exc:
            why = f"{f} is not readable ({type(exc).__name__}: {exc}); since 2020 it needs root (CVE-2020-8694)."
    return None, why


def energy_per_image_mj(fn, x, seconds: float = 2.0, counter: Path | None = None) -> float | None:
    """Millijoules per image of the whole CPU package while ``fn(x)`` runs for about ``seconds`` (RAPL counter),
    or ``None`` when no counter can be read (see :func:`energy_counter`). Includes everything else running."""
    counter = counter or energy_counter()[0]
    if counter is None:
        return None
    n, t0, e0 = 0, time.perf_counter(), int(Path(counter).read_text())
    while time.perf_counter() - t0 < seconds:
        fn(x)
        n += len(x)
    e1 = int(Path(counter).read_text())
    if e1 < e0:  # the counter wrapped
        return None
    return (e1 - e0) / 1e3 / n


# ------------------------------------------------------------------------------------------ decisions
def pick(table: pd.DataFrame, max_latency_ms: float, max_size_kb: float, latency_col: str = "p50_ms_1t"):
    """The most accurate row of ``table`` whose ``latency_col`` is at most ``max_latency_ms`` and whose
    ``size_kb`` is at most ``max_size_kb`` (ties: the faster); ``None`` when no row fits."""
    for col in (latency_col, "size_kb", "accuracy"):
        if col not in table:
            raise KeyError(f"the table needs a {col!r} column; it has {list(table.columns)}.")
    fits = table[(table[latency_col] <= max_latency_ms) & (table["size_kb"] <= max_size_kb)]
    if fits.empty:
        return None
    return fits.sort_values(["accuracy", latency_col], ascending=[False, True]).iloc[0]


def summary(table: pd.DataFrame) -> list[str]:
    """Sentences built from the table's own numbers (fastest variant per setting, int8 speed-ups, thread effect)."""
    ts = table.attrs.get("threads") or [1]
    lines = []

    def label(r):
        return f"{r.runtime} {r.precision}" + (f" ({r.model})" if "model" in table else "")

    for t in ts:
        r = table.loc[table[f"p50_ms_{t}t"].idxmin()]
        lines.append(f"Fastest at batch 1 with {t} thread(s): {label(r)}, {r[f'p50_ms_{t}t']:.3f} ms (median).")
        r = table.loc[table[f"img_s_{t}t"].idxmax()]
        lines.append(f"Highest throughput at batch 64 with {t} thread(s): {label(r)}, "
                     f"{r[f'img_s_{t}t']:,.0f} images/s.")
    groups = [table] if "model" not in table else [g for _, g in table.groupby("model", sort=False)]
    for g in groups:
        for rt in g.runtime.unique():
            f32, i8 = g[(g.runtime == rt) & (g.precision == "float32")], g[(g.runtime == rt) & (g.precision == "int8")]
            if len(f32) and len(i8):
                a, b = f32.iloc[0], i8.iloc[0]
                lat = f"p50_ms_{ts[0]}t"
                where = f" ({a.model})" if "model" in g else ""
                lines.append(f"{rt}{where}: int8 is {a.size_kb / b.size_kb:.1f}x smaller and "
                             f"{a[lat] / b[lat]:.2f}x as fast at batch 1 ({ts[0]} thread) as float32; accuracy "
                             f"{a.accuracy:.4f} -> {b.accuracy:.4f}, agreement with Keras {b.agreement:.1%}.")
    if len(ts) > 1:
        col1, coln = f"img_s_{ts[0]}t", f"img_s_{ts[-1]}t"
        gain = table[coln] / table[col1]
        lines.append(f"Going from {ts[0]} to {ts[-1]} threads changed batch-64 throughput by "
                     f"{gain.min():.2f}x to {gain.max():.2f}x across variants (median {gain.median():.2f}x).")
    return lines


# ----------------------------------------------------------------------------------------------- main
def run(x_train, y_train, x_test, y_test, folder, epochs: int = 4, n_calibration: int = 500, rounds: int = 7,
        number: int = 20, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Train (or load) both models, export every variant into ``folder`` and benchmark them: one table."""
    tables = []
    for kind in MODELS:
        model = trained_model(kind, x_train, y_train, epochs=epochs, seed=seed)
        paths = export_all(model, Path(folder) / kind, x_train[:n_calibration])
        t = benchmark(model, paths, x_test, y_test, rounds=rounds, number=number, progress=progress)
        t.insert(0, "model", kind)
        tables.append(t)
    out = pd.concat(tables, ignore_index=True)
    out.attrs["threads"] = tables[0].attrs["threads"]
    return out


def main(argv=None) -> int:
    """``python -m mlcourse.runtimes [--smoke]``: print the full runtime table of this machine."""
    import argparse
    import tempfile

    from mlcourse import data
    from mlcourse.runtime import is_smoke, quiet_tensorflow

    p = argparse.ArgumentParser(prog="python -m mlcourse.runtimes", description="Runtimes benchmark (08_runtimes)")
    p.add_argument("--smoke", action="store_true", default=is_smoke())
    p.add_argument("--out", default=None, help="folder for the exported models (default: a new temporary one)")
    args = p.parse_args(argv)
    quiet_tensorflow()
    ds = data.load_fashion_mnist()
    s = default_sizes(args.smoke)
    xtr, ytr = data.stratified_subset(ds.x_train, ds.y_train, s["n_train"])
    xte, yte = (ds.x_test[:500], ds.y_test[:500]) if args.smoke else (ds.x_test, ds.y_test)
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="runtimes-"))
    print({k: v for k, v in cpu_features().items()})
    print(runtime_report().to_string(index=False))
    table = run(xtr, ytr, xte, yte, folder, epochs=s["epochs"], rounds=3 if args.smoke else 9,
                number=5 if args.smoke else 50)
    pd.set_option("display.width", 250)
    print(table.round(4).to_string(index=False))
    for line in summary(table):
        print(line)
    print("energy:", energy_counter()[1])
    print(f"models in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
