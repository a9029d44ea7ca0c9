"""Deployment runtimes side by side: one trained model on LiteRT, ONNX Runtime, OpenVINO (+ NNCF), TVM and TFLite Micro.

Serves notebook ``09_runtimes``. The notebook writes the real calls in plain sight (``model.export(...,
format="onnx")``, ``onnxruntime.InferenceSession`` with ``SessionOptions``, ``quantize_static`` with a
``CalibrationDataReader``, ``ov.convert_model``, ``ov.Core().compile_model``, ``nncf.quantize``); this module is
the tested version of those cells plus the plumbing:

* :func:`trained_model`: the course's tuned CNN (``"tuned"``) or a conv-heavy twin (``"conv_heavy"``), trained
  once through :func:`mlcourse.cache.trained_model` (:func:`warm_cache` fills the cache ahead of a session) at the
  sizes of :data:`SIZES` (smoke / lesson / full, read with :func:`sizes`);
* :func:`export_all`: every variant written to disk once (LiteRT float32 / dynamic / int8, ONNX float32 / int8,
  OpenVINO IR float32 / int8 through NNCF, TVM when it is installed);
* :func:`load`: a variant as a ``predict(x) -> probabilities`` callable with a given thread count;
* :func:`benchmark`: one table: size on disk, accuracy, top-1 agreement with Keras, first-call time, median and
  p95 latency at batch 1 and throughput at batch 64, with 1 thread and with every core, all runtimes timed
  interleaved (:func:`mlcourse.timing.interleaved`) on the same inputs;
* :func:`compare_exports`: Keras 3's ``model.export(format="onnx" | "openvino" | "litert")`` next to the converter
  each one wraps (:func:`convert_explicitly`), every file run in its runtime and compared with Keras;
* :func:`tvm_program`, :func:`tvm_tune`, :func:`tvm_tune_child`: TVM (an optional extra) compiled untuned, and tuned
  by MetaSchedule in a child process, with the seconds each step took;
* :func:`wide_mlp`, :func:`int8_latency`: where int8 pays in latency (memory-bound batch-1 Dense layers) and where not;
* :func:`ops_of`, :func:`resolver_code`, :func:`graph_of`, :func:`arena_estimate`, :func:`tflm_min_arena`,
  :func:`mcu_fit`: a microcontroller's view (TFLite Micro: op resolver, tensor arena, flash and SRAM);
* :func:`runtime_report`, :func:`energy_counter`: what each runtime says it used (the CPU's flags come from
  :mod:`mlcourse.machine`), and whether an energy counter (RAPL) can be read;
* :func:`pick`: the most accurate variant that fits a latency and size budget (or ``None``).

Telemetry: OpenVINO's model converter and NNCF send usage statistics through the ``openvino-telemetry`` package
unless told not to. Importing this module blocks that package for the process (both then fall back to their
built-in no-op stubs), before ``openvino`` or ``nncf`` is imported: nothing is sent and no consent file is written.
On your own machine ``opt_in_out --opt_out`` does the same for good.

    python -m mlcourse.runtimes                # the table at MLCOURSE_SIZE (default: lesson)
    python -m mlcourse.runtimes --size full    # the reference sizes (60,000 training images, full test set)
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# ------------------------------------------------------------------------------------------ telemetry off
# ``import openvino_telemetry`` now raises ImportError: openvino.tools.ovc and nncf both catch it and use their stubs.
if "openvino_telemetry" not in sys.modules:
    sys.modules["openvino_telemetry"] = None
os.environ.setdefault("NNCF_CI", "1")  # NNCF's own switch: "running in CI, send nothing" (a second lock)

__all__ = ["headlines", "llvm_cpu",
           "TUNED_HP", "CONV_HEAVY_HP", "MODELS", "VARIANTS", "telemetry_blocked", "trained_model", "warm_cache",
           "SIZES", "sizes", "export_onnx", "CalibrationReader", "quantize_onnx", "ort_session", "openvino_int8",
           "tvm_status", "tvm_target", "tvm_module", "tvm_tune", "tvm_tune_child", "tvm_program", "tvm_run", "EXPORTS",
           "convert_explicitly", "compare_exports", "wide_mlp", "int8_latency", "MCU", "tflm_status", "ops_of",
           "resolver_code", "graph_of", "arena_estimate", "tflm_interpreter", "tflm_predict", "tflm_min_arena",
           "mcu_fit", "export_all", "size_on_disk", "load", "first_call_s", "benchmark", "plot",
           "runtime_report", "openvino_precisions", "openvino_compile", "openvino_inference_precision",
           "openvino_bf16_status", "OPENVINO_HINTS", "energy_counter", "energy_per_image_mj", "pick", "summary", "run",
           "main"]

from mlcourse import cache, data, litert, machine, settings, timing  # noqa: E402  (after the telemetry switch)
from mlcourse.headlines import Headlines, row
from mlcourse.models import flavor_of  # noqa: E402
from mlcourse.processes import ProcessGroup  # noqa: E402
from mlcourse.serving import TUNED_HP  # noqa: E402
from mlcourse.session import quiet_import, quiet_tensorflow, silenced  # noqa: E402

#: A conv-heavy counterpart of the fixed CNN: three wider conv blocks and no big dense layer, several times the
#: multiply-adds: the work moves from a matrix-vector product to convolutions (09 prints both parameter counts).
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
    """True when OpenVINO / NNCF telemetry is off in this process (``openvino_telemetry`` cannot be imported).

    Lesson: 09_runtimes § 09 · Deployment runtimes: one model, four engines, measured side by side.
    """
    return sys.modules.get("openvino_telemetry", 0) is None


# ---------------------------------------------------------------------------------------------- models
def trained_model(kind: str, x, y, epochs: int = 4, seed: int = 0):
    """The ``kind`` model (``"tuned"`` or ``"conv_heavy"``, see :data:`MODELS`) trained on ``(x, y)`` (Keras 3),
    from the workshop cache when the same recipe was trained before.

    Lesson: 09_runtimes § 2 · Two trained models.
    """
    if kind not in MODELS:
        raise ValueError(f"Unknown model kind {kind!r}: use one of {list(MODELS)}.")
    return cache.trained_model(f"runtimes-{kind}", x, y, MODELS[kind], epochs, seed=seed, model_name=kind)


#: 09's sizes, one table (the notebook's parameters cell and :func:`warm_cache` read it): training images and
#: epochs of the two models, test and calibration images, interleaved timing rounds and calls per round, the width of
#: the memory-bound MLP of section 9 (its float32 weights: about ``4 * units**2 * 2`` bytes) and TVM's tuning trials.
SIZES = {
    "smoke": {"N_TRAIN": 1_000, "EPOCHS": 1, "N_TEST": 300, "N_CALIBRATION": 100, "ROUNDS": 3, "NUMBER": 5,
              "WIDE_UNITS": 512, "TVM_TRIALS": 0},
    "lesson": {"N_TRAIN": 10_000, "EPOCHS": 2, "N_TEST": 2_000, "N_CALIBRATION": 300, "ROUNDS": 5, "NUMBER": 20,
               "WIDE_UNITS": 2048, "TVM_TRIALS": 0},
    "full": {"N_TRAIN": 60_000, "EPOCHS": 4, "N_TEST": 10_000, "N_CALIBRATION": 500, "ROUNDS": 9, "NUMBER": 50,
             "WIDE_UNITS": 4096, "TVM_TRIALS": 128},
}


def sizes(size: str | None = None, **given) -> dict:
    """09's sizes for ``size`` (``"smoke"``, ``"lesson"``, ``"full"``; None follows ``MLCOURSE_SIZE``) from
    :data:`SIZES`, with every ``given`` value that is not None put over them (``sizes("lesson", N_TRAIN=None)``).

    Lesson: 09_runtimes § 09 · Deployment runtimes: one model, four engines, measured side by side.
    """
    return settings.pick_sizes(SIZES, settings.size(size), given)


def warm_cache(ds, size: str, seed: int = 0) -> None:
    """Train and cache 09_runtimes' two models at the notebook's sizes for ``size`` (``make workshop``)."""
    if isinstance(size, bool):
        raise TypeError("warm_cache takes a size ('smoke', 'lesson' or 'full'), not True/False.")
    s = sizes(size)
    x, y = data.stratified_subset(ds.x_train, ds.y_train, s["N_TRAIN"], seed=seed)
    for kind in MODELS:
        trained_model(kind, x, y, epochs=s["EPOCHS"], seed=seed)


# ------------------------------------------------------------------------------------------ ONNX Runtime
def export_onnx(model, path, batch: int | None = None) -> Path:
    """Write ``model`` as ONNX. Keras 3 models with a free batch size go through ``model.export(path,
    format="onnx")`` (which calls tf2onnx); tf_keras models, or a fixed ``batch`` (what TVM wants), through
    tf2onnx directly (:func:`_tf2onnx`). Never overwrites an existing file.

    Lesson: 09_runtimes § 7 · TVM: a compiler.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: choose a new path (nothing was overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), silenced():
        warnings.simplefilter("ignore")
        if batch is None and flavor_of(model) == "keras3":
            model.export(str(path), format="onnx", verbose=False)
        else:
            _tf2onnx(model, batch, path)
    return path


def _traced(model, batch: int | None = None):
    """``(fn, spec)``: ``model`` as a ``tf.function`` of one float32 input ``image`` (batch ``batch``) and that
    input's ``TensorSpec``. Converters get this, not the model: tf2onnx's ``from_keras`` and OpenVINO's
    ``convert_model`` recognise a Keras model by ``tf.keras.Model``, which turns into tf_keras's once
    tensorflow_model_optimization is imported (a Keras 3 model then fails); a traced function converts the same
    whichever Keras built it."""
    tf = quiet_import("tensorflow")

    spec = tf.TensorSpec((batch,) + tuple(model.input_shape[1:]), tf.float32, name="image")
    return tf.function(lambda image: model(image, training=False)), spec


def _tf2onnx(model, batch: int | None, path: Path) -> None:
    """``tf2onnx.convert.from_function`` on :func:`_traced` ``model`` (input ``image``, batch ``batch``, opset 17)."""
    import tf2onnx

    fn, spec = _traced(model, batch)
    tf2onnx.convert.from_function(fn, input_signature=(spec,), opset=17, output_path=str(path))


class CalibrationReader:
    """An ONNX Runtime calibration data reader: hands ``images`` to ``quantize_static`` one batch at a time.

    ``quantize_static`` calls ``get_next()`` until it returns ``None``; each call returns ``{input name: batch}``.
    (A subclass of ``onnxruntime.quantization.CalibrationDataReader`` in spirit; duck typing is all it needs.)

    Lesson: 09_runtimes § ✏️ Exercise 9.2: static int8 quantization with a calibration reader.
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
    channel, uint8 activations calibrated with min-max ranges on ``calibration`` images).

    Lesson: 09_runtimes § ✏️ Exercise 9.2: static int8 quantization with a calibration reader.
    """
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
    every graph optimisation on.

    Lesson: 09_runtimes § ✏️ Exercise 9.2: static int8 quantization with a calibration reader.
    """
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
    """Whether Apache TVM can be used here: ``(True, version)`` or ``(False, the error measured)``.

    Lesson: 09_runtimes § 7 · TVM: a compiler.
    """
    try:
        import tvm
        from tvm.relax.frontend.onnx import from_onnx  # noqa: F401
    except Exception as exc:  # noqa: BLE001  (ImportError, or a binary that does not load with this numpy)
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"apache-tvm {tvm.__version__}"


def tvm_target():
    """The LLVM target of this CPU (its name as LLVM knows it, e.g. ``znver5``, and its core count)."""
    import tvm

    return tvm.target.Target({"kind": "llvm", "mcpu": llvm_cpu(), "num-cores": os.cpu_count() or 1})


def tvm_module(onnx_path, batch: int = 1):
    """The Relax module of an ONNX file exported with a fixed ``batch`` (``export_onnx(model, path, batch=1)``)."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    return from_onnx(onnx.load(str(onnx_path)), shape_dict={"image": [batch, 28, 28]})


def tvm_tune(mod, work_dir, trials: int, per_task: int | None = None) -> tuple[object, dict]:
    """``mod`` tuned by MetaSchedule (``relax.pipeline.static_shape_tuning_pipeline``) for :func:`tvm_target`
    with ``trials`` measured candidates in all (``per_task`` at most per kernel), logs in ``work_dir``. Returns the
    tuned module and the seconds spent: ``import_s`` (MetaSchedule and its tensor intrinsics, once per process)
    and ``tune_s`` (the search: build and time each candidate on this CPU).

    Lesson: 09_runtimes § 7 · TVM: a compiler.
    """
    from tvm import relax

    t0 = time.perf_counter()
    import tvm.s_tir.meta_schedule  # noqa: F401
    import tvm.s_tir.tensor_intrin  # noqa: F401  (parsed on first use: minutes on a loaded 2-core CPU)

    t1 = time.perf_counter()
    target = tvm_target()
    tuned = relax.pipeline.static_shape_tuning_pipeline(total_trials=int(trials), target=target, work_dir=str(work_dir),
                                                        max_trials_per_task=per_task)(mod)  # its log: the child's
    return tuned, {"import_s": t1 - t0, "tune_s": time.perf_counter() - t1}


def tvm_program(mod):
    """``mod`` compiled for :func:`tvm_target` as a Relax virtual machine on the CPU (call ``vm["main"](x)``)."""
    import tvm

    return tvm.relax.VirtualMachine(tvm.compile(mod, target=tvm_target()), tvm.cpu())


def tvm_run(vm, x) -> np.ndarray:
    """Run a batch-1 TVM program on ``x`` image by image; class probabilities."""
    import tvm

    outs = []
    for i in range(len(x)):
        out = vm["main"](tvm.runtime.tensor(np.ascontiguousarray(x[i:i + 1], dtype=np.float32)))
        outs.append(out.numpy() if hasattr(out, "numpy") else out[0].numpy())
    return np.concatenate(outs)


def tvm_tune_child(onnx_path, work_dir, trials: int, per_task: int | None = None, timeout: float = 1800,
                   rounds: int = 5, number: int = 20) -> dict:
    """:func:`tvm_tune` in a child process (``processes.ProcessGroup``), so that a crash of the tuner is an exit
    code to print, not a dead kernel; a progress bar shows the elapsed time meanwhile. Returns ``returncode``,
    ``log`` (the child's last lines) and, when it finished, what it measured on one image: ``import_s``,
    ``tune_s``, ``compile_s``, ``untuned_ms``, ``tuned_ms`` (medians, interleaved), ``max_abs_diff`` (tuned vs
    untuned output) and ``verdict`` (:func:`mlcourse.timing.compare`, tuned vs untuned).

    Lesson: 09_runtimes § 7 · TVM: a compiler.
    """
    import json

    work_dir = Path(work_dir)
    out = work_dir / "tvm_tune.json"
    cmd = [sys.executable, "-m", "mlcourse.runtimes", "--tvm-tune", str(onnx_path), str(work_dir), str(int(trials)),
           str(int(per_task or 0)), str(int(rounds)), str(int(number))]
    bar = tqdm(desc=f"TVM tuning, {trials} trials (child process; seconds)", unit="s", total=None)
    t0 = time.perf_counter()

    def tick():
        bar.n = int(time.perf_counter() - t0)
        bar.refresh()

    with ProcessGroup(work_dir) as group:
        group.start("tvm-tune", cmd)
        code = group.wait(["tvm-tune"], timeout=timeout, on_poll=tick)["tvm-tune"]
        log = group.log("tvm-tune", tail=8)
    bar.close()
    result = json.loads(out.read_text()) if code == 0 and out.exists() else {}
    return {"returncode": code, "log": log, "wall_s": time.perf_counter() - t0, **result}


def _tvm_tune_main(onnx_path, work_dir, trials, per_task, rounds, number) -> int:
    """The child of :func:`tvm_tune_child`: compile untuned, tune, compile tuned, time both, write JSON."""
    import json

    image = np.random.default_rng(0).uniform(0, 255, (1, 28, 28)).astype(np.float32)
    mod = tvm_module(onnx_path, 1)
    untuned = tvm_program(mod)
    tuned_mod, secs = tvm_tune(mod, Path(work_dir) / "logs", int(trials), int(per_task) or None)
    t0 = time.perf_counter()
    tuned = tvm_program(tuned_mod)
    secs["compile_s"] = time.perf_counter() - t0
    table = timing.interleaved({"tuned": lambda: tvm_run(tuned, image), "untuned": lambda: tvm_run(untuned, image)},
                               rounds=int(rounds), number=int(number))
    secs.update(untuned_ms=float(table.loc["untuned", "median_ms"]), tuned_ms=float(table.loc["tuned", "median_ms"]),
                max_abs_diff=float(np.abs(tvm_run(tuned, image) - tvm_run(untuned, image)).max()),
                verdict=timing.compare(table, "tuned", "untuned"))
    (Path(work_dir) / "tvm_tune.json").write_text(json.dumps(secs))
    return 0


def llvm_cpu() -> str:
    """The host CPU as LLVM names it (e.g. ``znver4``), for the ``mcpu`` of TVM's ``llvm`` target: code tuned for
    this CPU's vector units; ``"generic"`` when TVM is absent or cannot tell.

    Lesson: 09_runtimes § 7 · TVM: a compiler.
    """
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

    Lesson: 09_runtimes § ✍️ Predict, then measure.
    """
    import openvino as ov

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new folder (nothing was overwritten).")
    folder.mkdir(parents=True, exist_ok=True)
    cal = np.asarray(calibration, dtype=np.float32)
    paths = {}
    for mode in ("float32", "dynamic", "int8"):
        p = folder / f"litert_{mode}.tflite"
        p.write_bytes(litert.to_tflite(model, mode, cal if mode == "int8" else None))
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
    """Bytes a variant takes on disk (an OpenVINO IR is the .xml and its .bin).

    Lesson: 09_runtimes § 4 · Keras 3 exports itself, and the converters it wraps.
    """
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
            it = self._per_batch.get(len(x))
            if it is None:
                it = self._per_batch[len(x)] = litert.interpreter(self._blob, threads=self.threads)
            return litert.run_interpreter(it, x, batch_size=len(x))
        return self._tvm(x)

    def _tvm(self, x):
        """The TVM program is compiled for batch 1 (the export fixes it); a batch runs image by image."""
        vm = self._per_batch.get(1)
        if vm is None:
            vm = self._per_batch[1] = tvm_program(tvm_module(self.path, 1))
        return tvm_run(vm, x)


def load(variant: tuple[str, str], path, threads: int = 1):
    """Variant ``(runtime, precision)`` stored at ``path`` as a ``predict(x) -> class probabilities`` callable
    with ``threads`` CPU threads (raw 0-255 float pixels in, batches of any size). TVM's program is compiled for
    batch 1 (a batch runs image by image) and its thread pool is sized once per process (``TVM_NUM_THREADS``).

    Lesson: 09_runtimes § 4 · Keras 3 exports itself, and the converters it wraps.
    """
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
    precision (bf16 kernels, or f32 where it fell back). A refusal is returned in ``"error"``, not raised.

    Lesson: 09_runtimes § 6 · OpenVINO and NNCF.
    """
    out = {"avx512_bf16": machine.has("avx512_bf16"), "amx_bf16": machine.has("amx_bf16")}
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
    count in ``threads`` (``None`` = every core). Variants are timed interleaved on the same inputs.

    Lesson: 09_runtimes § ✍️ Predict, then measure.
    """
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
    """Latency at batch 1 (one thread; bar) against size on disk, per variant, with accuracy in the label.

    Lesson: 09_runtimes § ✍️ Predict, then measure.
    """
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
def runtime_report() -> pd.DataFrame:
    """What each runtime reports about itself on this machine (version, devices / providers, capabilities).

    Lesson: 09_runtimes § 1 · This CPU.
    """
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
                 "what it reports": f"LLVM target cpu {llvm_cpu()}" if ok else why})
    return pd.DataFrame(rows)


def openvino_precisions(path, threads: int = 1) -> pd.Series:
    """How many operations the compiled OpenVINO model runs in each precision (its runtime model's
    ``runtimePrecision``): shows whether the int8 IR really runs int8 kernels on this CPU.

    Lesson: 09_runtimes § 6 · OpenVINO and NNCF.
    """
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
    ``(path, "readable")``, else ``(None, the reason)``.

    Lesson: 09_runtimes § 11 · Energy.
    """
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
    or ``None`` when no counter can be read (see :func:`energy_counter`). Includes everything else running.

    Lesson: 09_runtimes § 11 · Energy.
    """
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


# ------------------------------------------------------------------------------------ Keras 3's export
#: Keras 3's ``model.export(path, format=...)`` formats, each with its file name and the runtime that reads it.
EXPORTS = {"onnx": ("model.onnx", "ONNX Runtime"), "openvino": ("model.xml", "OpenVINO"),
           "litert": ("model.tflite", "LiteRT")}


def convert_explicitly(model, fmt: str, path) -> Path:
    """Write ``model`` in format ``fmt`` with the converter that ``model.export(format=fmt)`` wraps, called
    directly, on the model traced as a ``tf.function`` (whichever Keras built it): ``tf2onnx.convert.from_function``
    (onnx, opset 17, free batch size), ``ov.convert_model`` then ``ov.save_model(..., compress_to_fp16=False)``
    (openvino) or ``tf.lite.TFLiteConverter.from_keras_model`` (litert, no optimisation).

    Lesson: 09_runtimes § 4 · Keras 3 exports itself, and the converters it wraps.
    """
    path = Path(path)
    if fmt not in EXPORTS:
        raise ValueError(f"Unknown format {fmt!r}: use one of {list(EXPORTS)}.")
    if path.exists():
        raise FileExistsError(f"{path} exists: choose a new path (nothing was overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), silenced():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            _tf2onnx(model, None, path)
        elif fmt == "openvino":
            import openvino as ov

            fn, spec = _traced(model)  # the traced function, not the model (see _traced)
            ov.save_model(ov.convert_model(fn.get_concrete_function(spec)), str(path), compress_to_fp16=False)
        else:
            path.write_bytes(litert.to_tflite(model, "float32"))
    return path


def compare_exports(model, folder, x) -> pd.DataFrame:
    """Each format of :data:`EXPORTS` written twice, by ``model.export(path, format=...)`` and by
    :func:`convert_explicitly`, run on ``x`` in its runtime: one row per (format, route) with the file's bytes, the
    seconds the export took, the largest absolute difference from Keras's probabilities and top-1 agreement. An
    export or a run that fails is a row with its error (type and message), not an exception."""
    folder = Path(folder)
    x = np.asarray(x, dtype=np.float32)
    ref = model.predict(x, verbose=0)
    rows = []
    for fmt, (name, rt) in EXPORTS.items():
        for route in ("model.export", "converter"):
            path = folder / route.replace(".", "_") / name
            row = {"format": fmt, "route": route, "runtime": rt}
            t0 = time.perf_counter()
            try:
                if route == "model.export":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with warnings.catch_warnings(), silenced():
                        warnings.simplefilter("ignore")
                        model.export(str(path), format=fmt, verbose=False)
                else:
                    convert_explicitly(model, fmt, path)
                row["export_s"] = time.perf_counter() - t0
                out = load((rt, "float32"), path, threads=1)(x)
                row.update(bytes=size_on_disk(path), max_abs_diff=float(np.abs(out - ref).max()),
                           agreement=float((out.argmax(1) == ref.argmax(1)).mean()), error="")
            except Exception as exc:  # noqa: BLE001  (a failing export is a finding to print)
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ where int8 pays: memory
def wide_mlp(units: int, depth: int = 2, seed: int = 0):
    """An untrained Keras 3 MLP on flattened 28x28 raw pixels: ``Rescaling(1/255)``, ``depth`` Dense layers of
    ``units`` (ReLU), 10 softmax outputs. At batch 1 each Dense layer is a matrix-vector product that reads every
    weight once per image: with ``units=2048`` its float32 weights (about 23 MB) are ten times the 2 MB L2 cache,
    so the time goes to reading memory, which int8 weights cut four times. Only latency is measured on it.

    Lesson: 09_runtimes § 9 · Where int8 pays in latency, and where it does not.
    """
    keras = quiet_import("keras")

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((784,), name="image"), keras.layers.Rescaling(1 / 255)]
    layers += [keras.layers.Dense(units, activation="relu") for _ in range(depth)]
    return keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")], name=f"wide_mlp_{units}")


def int8_latency(models_: dict, calibration, rounds: int = 7, number: int = 10) -> pd.DataFrame:
    """For each ``{name: Keras model}``, its LiteRT float32 and int8 files (``litert.to_tflite``, int8
    calibrated on ``calibration``) timed at batch 1, one thread, interleaved: one row per model with the float32
    weight bytes, both files' bytes, both medians, the int8 / float32 ratio and :func:`mlcourse.timing.compare`'s
    verdict."""
    rows = []
    for name, m in tqdm(models_.items(), desc="int8 vs float32", leave=False):
        x = np.asarray(calibration, dtype=np.float32)
        blobs = {"float32": litert.to_tflite(m, "float32"), "int8": litert.to_tflite(m, "int8", x)}
        its = {k: litert.interpreter(b, threads=1) for k, b in blobs.items()}
        one = x[:1]
        table = timing.interleaved({k: (lambda it=it: litert.run_interpreter(it, one, 1))
                                    for k, it in its.items()}, rounds=rounds, number=number)
        rows.append({"model": name, "float32 weights MB": m.count_params() * 4 / 1e6,
                     "float32 file MB": len(blobs["float32"]) / 1e6, "int8 file MB": len(blobs["int8"]) / 1e6,
                     "float32 ms": table.loc["float32", "median_ms"], "int8 ms": table.loc["int8", "median_ms"],
                     "int8 / float32": table.loc["int8", "median_ms"] / table.loc["float32", "median_ms"],
                     "verdict": timing.compare(table, "int8", "float32")})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------- TFLite Micro
#: A typical small microcontroller (a Cortex-M4F board such as the Arduino Nano 33 BLE): SRAM and flash bytes.
MCU = {"sram": 256 * 1024, "flash": 1024 * 1024}


def tflm_status() -> tuple[bool, str]:
    """Whether the TFLite Micro interpreter for Python (``tflite-micro``) can be used here: ``(True, version)``
    or ``(False, the error measured)``.

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    try:
        from importlib.metadata import version

        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"tflite-micro {version('tflite-micro')}"


def ops_of(tflite: bytes) -> list[str]:
    """The operations of a LiteRT model in execution order (``CONV_2D``, ``FULLY_CONNECTED``, ...), read with
    the LiteRT interpreter's op details.

    Lesson: 09_runtimes § 10 · A microcontroller: TFLite Micro and its tensor arena.
    """
    return [op["op_name"] for op in _plain_interpreter(tflite)._get_ops_details()]


def _plain_interpreter(tflite: bytes):
    """A LiteRT interpreter without its default (XNNPACK) delegate: the model's own graph, op by op."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with silenced():
        it = Interpreter(model_content=tflite,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    return it


def resolver_code(tflite: bytes) -> str:
    """The C++ lines of a ``tflite::MicroMutableOpResolver`` that registers exactly the model's operations
    (``AddConv2D()``, ...): the firmware links only these kernels.

    Lesson: 09_runtimes § 10 · A microcontroller: TFLite Micro and its tensor arena.
    """
    ops = list(dict.fromkeys(ops_of(tflite)))
    names = ["".join(p if p[0].isdigit() else p.capitalize() for p in op.split("_")) for op in ops]
    lines = [f"static tflite::MicroMutableOpResolver<{len(ops)}> resolver;"]
    lines += [f"resolver.Add{n}();" for n in names]
    return "\n".join(lines)


def graph_of(tflite: bytes) -> tuple[list[tuple[list[int], list[int]]], dict[int, int]]:
    """The model as ``(ops, activation_bytes)``: ``ops`` in execution order, each ``(input tensor ids, output
    tensor ids)``; ``activation_bytes`` the bytes of every tensor that lives in RAM (the graph's inputs and every
    op's outputs). Tensors not in ``activation_bytes`` are constants (weights, biases): they stay in flash.

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    it = _plain_interpreter(tflite)
    details = {d["index"]: d for d in it.get_tensor_details()}
    ops = [([int(i) for i in op["inputs"] if i >= 0], [int(o) for o in op["outputs"]]) for op in it._get_ops_details()]
    live = {int(d["index"]) for d in it.get_input_details()} | {o for _, outs in ops for o in outs}
    nbytes = {t: int(np.prod(details[t]["shape"])) * np.dtype(details[t]["dtype"]).itemsize for t in live}
    return ops, nbytes


def arena_estimate(ops, activation_bytes: dict) -> int:
    """Peak bytes of activations alive at once (a lower bound of a tensor arena): a tensor is alive from the op
    that writes it (the graph's inputs: from the start) to the last op that reads it (the graph's outputs, never
    read: to the end). Weights (tensors not in ``activation_bytes``) are not counted.

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    last = {}
    for k, (ins, outs) in enumerate(ops):
        for t in ins + outs:
            if t in activation_bytes:
                last[t] = k
    read = {t for ins, _ in ops for t in ins}
    written = {t for _, outs in ops for t in outs}
    born = {t: -1 for t in activation_bytes if t not in written}
    for k, (_, outs) in enumerate(ops):
        born.update({t: k for t in outs if t in activation_bytes})
    end = {t: (last.get(t, -1) if t in read else len(ops)) for t in activation_bytes}
    peak = 0
    for k in range(len(ops)):
        peak = max(peak, sum(b for t, b in activation_bytes.items() if born[t] <= k <= end[t]))
    return peak


def tflm_interpreter(tflite: bytes, arena_bytes: int):
    """A TFLite Micro interpreter for the model with a tensor arena of ``arena_bytes`` (raises when too small)."""
    from tflite_micro.python.tflite_micro import runtime as tflm

    return tflm.Interpreter.from_bytes(tflite, arena_size=int(arena_bytes))


def tflm_predict(it, x) -> np.ndarray:
    """Class probabilities from a TFLite Micro interpreter, one image at a time (quantized as its input asks).

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    inp, out = it.get_input_details(0), it.get_output_details(0)
    (scale,), (zero,) = inp["quantization_parameters"]["scales"], inp["quantization_parameters"]["zero_points"]
    (oscale,), (ozero,) = out["quantization_parameters"]["scales"], out["quantization_parameters"]["zero_points"]
    info, probs = np.iinfo(inp["dtype"]), []
    for image in np.asarray(x, dtype=np.float32):
        q = np.clip(np.round(image / scale + zero), info.min, info.max).astype(inp["dtype"])
        it.set_input(q.reshape(inp["shape"]), 0)
        it.invoke()
        probs.append((it.get_output(0).astype(np.float32).reshape(-1) - ozero) * oscale)
    return np.stack(probs)


def tflm_min_arena(tflite: bytes, image, step: int = 256) -> int:
    """The smallest tensor arena (bytes, to ``step``) with which TFLite Micro runs the model on ``image``:
    a binary search over arena sizes (its allocation errors are silenced).

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    def runs(n):
        try:
            with silenced():
                tflm_predict(tflm_interpreter(tflite, n), np.asarray(image)[None])
            return True
        except Exception:  # noqa: BLE001  (too small an arena: the interpreter refuses)
            return False

    lo, hi = step, max(4 * step, 4 * len(tflite))
    while not runs(hi):
        lo, hi = hi, hi * 2
    while hi - lo > step:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if runs(mid) else (mid, hi)
    return hi


def mcu_fit(model_bytes: int, arena_bytes: int, sram: int = MCU["sram"], flash: int = MCU["flash"]) -> pd.DataFrame:
    """Whether a model fits a microcontroller: the model in flash, the tensor arena in SRAM; per memory the bytes
    needed, the bytes there, the share used and how many times smaller the need must become (1.0 when it fits).

    Lesson: 09_runtimes § ✏️ Exercise 9.4: the smallest arena the activations need.
    """
    rows = [{"memory": "flash (model)", "needed": int(model_bytes), "available": int(flash)},
            {"memory": "SRAM (tensor arena)", "needed": int(arena_bytes), "available": int(sram)}]
    out = pd.DataFrame(rows)
    out["used"] = out.needed / out.available
    out["fits"] = out.needed <= out.available
    out["shrink_by"] = np.maximum(1.0, out.needed / out.available)
    return out


# ------------------------------------------------------------------------------------------ decisions
def pick(table: pd.DataFrame, max_latency_ms: float, max_size_kb: float, latency_col: str = "p50_ms_1t"):
    """The most accurate row of ``table`` whose ``latency_col`` is at most ``max_latency_ms`` and whose
    ``size_kb`` is at most ``max_size_kb`` (ties: the faster); ``None`` when no row fits.

    Lesson: 09_runtimes § ✏️ Exercise 9.3: pick the runtime for a budget.
    """
    for col in (latency_col, "size_kb", "accuracy"):
        if col not in table:
            raise KeyError(f"the table needs a {col!r} column; it has {list(table.columns)}.")
    fits = table[(table[latency_col] <= max_latency_ms) & (table["size_kb"] <= max_size_kb)]
    if fits.empty:
        return None
    return fits.sort_values(["accuracy", latency_col], ascending=[False, True]).iloc[0]


def summary(table: pd.DataFrame) -> list[str]:
    """Sentences built from the table's own numbers (fastest variant per setting, int8 speed-ups, thread effect).

    Lesson: 09_runtimes § ✍️ Predict, then measure.
    """
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
    """``python -m mlcourse.runtimes [--size smoke|lesson|full]``: print the runtime table of this machine."""
    import argparse
    import tempfile

    p = argparse.ArgumentParser(prog="python -m mlcourse.runtimes", description="Runtimes benchmark (09_runtimes)")
    p.add_argument("--size", choices=settings.SIZES, default=None, help="default: MLCOURSE_SIZE, else lesson")
    p.add_argument("--out", default=None, help="folder for the exported models (default: a new temporary one)")
    p.add_argument("--tvm-tune", nargs=6, default=None, help=argparse.SUPPRESS)  # tvm_tune_child's child
    args = p.parse_args(argv)
    if args.tvm_tune:
        return _tvm_tune_main(*args.tvm_tune)
    quiet_tensorflow()
    ds = data.load_fashion_mnist()
    s = sizes(args.size)
    xtr, ytr = data.stratified_subset(ds.x_train, ds.y_train, s["N_TRAIN"])
    xte, yte = ds.x_test[:s["N_TEST"]], ds.y_test[:s["N_TEST"]]
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="runtimes-"))
    print(machine.describe())
    print(runtime_report().to_string(index=False))
    table = run(xtr, ytr, xte, yte, folder, epochs=s["EPOCHS"], n_calibration=s["N_CALIBRATION"],
                rounds=s["ROUNDS"], number=s["NUMBER"])
    pd.set_option("display.width", 250)
    print(table.round(4).to_string(index=False))
    for line in summary(table):
        print(line)
    print("energy:", energy_counter()[1])
    print(f"models in {folder}")
    return 0

# ------------------------------------------------------------------------------------------------ headlines
def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``09_runtimes`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    rt = h.rows("runtimes: headline per runtime (tuned CNN)")
    lite = row(rt, runtime="LiteRT", precision="float32")
    for r in (rt or []) if lite else []:
        if r is not lite:
            h.add(f"runtime: {r['runtime']} {r['precision']} vs LiteRT float32 (tuned CNN, batch 1, 1 thread)",
                  f"{r['p50_ms_1t']:.3f} vs {lite['p50_ms_1t']:.3f} ms (p95 {r['p95_ms_1t']:.3f}), "
                  f"{r['size_kb']:.0f} vs {lite['size_kb']:.0f} KB, accuracy {r['accuracy']:.4f} vs "
                  f"{lite['accuracy']:.4f}, agreement with Keras {r['agreement']:.1%}")
    h.add_rows("Keras 3 model.export vs the converters it wraps: top-1 agreement with Keras",
               "runtimes: Keras 3 export vs converters",
               lambda r: f"{r['format']} via {r['route']}: " + (f"{r['agreement']:.1%}" if not r.get("error") else
                                                                f"failed ({r['error'][:60]})"))
    h.add_dict("TFLite Micro: the int8 model on a microcontroller", "runtimes: microcontroller",
               lambda r: f"{r['model bytes']:,} model bytes, arena lower bound {r['arena lower bound']:,} bytes; "
               f"fits 256 KB / 1 MB: {'yes' if r['fits 256 KB / 1 MB'] else 'no'}")
    return h.out


if __name__ == "__main__":
    raise SystemExit(main())
