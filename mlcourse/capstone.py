"""The capstone: MNIST-1D (Greydanus, 2020) from raw signals to a monitored, compressed model.

Taught in ``solutions/10_capstone.ipynb``, where the learner writes every stage. This module holds the plumbing:

* :func:`make_data`: MNIST-1D generated **offline** by the ``mnist1d`` package's own generator
  (``mnist1d.data.make_dataset`` with ``get_dataset_args()``; never its download path or pickles), with any of
  the generator's knobs changed (``iid_noise_scale``, ``max_translation``, ...): the drifts of the monitoring
  stage are made with them; :func:`split_val` carves a stratified validation set out of the training signals;
* :data:`PAPER`: the published test accuracies (the package README), and :func:`paper_row`;
* :func:`size_row`: one row of the compression table (bytes, gzipped bytes, non-zero weights);
* :func:`summary`: the end-to-end table, this run's numbers beside the paper's;
* :data:`SIZES`: the notebook's sizes (smoke, lesson, full), read with :func:`mlcourse.settings.pick_sizes`.

It also holds the **course's copy** of what each exercise builds (:func:`fit_baselines`, :func:`hypermodel`,
:func:`to_int8`, :func:`magnitude_prune`, :func:`kd_loss`, :func:`build_student`, :func:`validate_signals`,
:func:`make_predictor`, :func:`drift_alarm`): the notebook's later cells run these, never the learner's answer,
so the student copy runs top to bottom while its exercises are still stubs. They are the same code as the
notebook's solutions, tested in ``tests/test_capstone.py``.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlcourse import litert
from mlcourse.headlines import Headlines, Reference
from mlcourse.session import quiet_import

__all__ = ["headlines", "REFERENCES",
           "SIZES", "PAPER", "PAPER_SHUFFLED", "STUDENT_MAX_PARAMS", "STUDENT_MAX_BYTES", "DATASET_ARGS",
           "Data", "make_data", "sample", "unlabelled", "split_val", "paper_row", "fit_baselines", "hypermodel",
           "to_int8", "magnitude_prune", "kernel_sparsity", "kd_loss", "build_student", "validate_signals",
           "make_predictor", "signal_features", "drift_pvalues", "drift_alarm", "size_row", "summary"]

#: 10_capstone's sizes, one table (``settings.pick_sizes(capstone.SIZES, cfg.size, given)``): ``N_SAMPLES``
#: signals generated (80 % train, 20 % test: the generator's own split; 5000 is the published dataset),
#: ``N_VAL`` of the training signals held out for validation, ``MLP_ITER`` the scikit-learn MLP's iterations,
#: ``TRIALS`` / ``TUNE_EPOCHS`` the tuner's budget, ``EPOCHS`` the winner's retraining, ``SEEDS`` the seeds of
#: every comparison, ``FINETUNE_EPOCHS`` the pruned model's fine-tuning (the gradual schedule ramps over the
#: first 60 % of it), ``STUDENT_EPOCHS`` each student's training in passes over the labelled set (every student
#: takes the same number of steps), ``N_TRANSFER`` the unlabelled transfer set of distillation (new signals from
#: the generator), ``KD_TEMPERATURES`` / ``KD_ALPHAS`` the grid chosen on validation, ``N_MONITOR`` signals per
#: monitoring batch, ``LATENCY_ROUNDS`` the interleaved timing rounds.
SIZES = {
    "smoke": {"N_SAMPLES": 1000, "N_VAL": 200, "MLP_ITER": 30, "TRIALS": 2, "TUNE_EPOCHS": 1, "EPOCHS": 1,
              "SEEDS": 2, "FINETUNE_EPOCHS": 1, "STUDENT_EPOCHS": 1, "N_TRANSFER": 500,
              "KD_TEMPERATURES": (1.0,), "KD_ALPHAS": (0.9,), "N_MONITOR": 300, "LATENCY_ROUNDS": 3},
    "lesson": {"N_SAMPLES": 5000, "N_VAL": 500, "MLP_ITER": 200, "TRIALS": 6, "TUNE_EPOCHS": 12, "EPOCHS": 40,
               "SEEDS": 3, "FINETUNE_EPOCHS": 10, "STUDENT_EPOCHS": 30, "N_TRANSFER": 15_000,
               "KD_TEMPERATURES": (1.0, 2.0, 4.0), "KD_ALPHAS": (0.5, 0.9), "N_MONITOR": 1000, "LATENCY_ROUNDS": 7},
    "full": {"N_SAMPLES": 5000, "N_VAL": 500, "MLP_ITER": 500, "TRIALS": 16, "TUNE_EPOCHS": 20, "EPOCHS": 80,
             "SEEDS": 5, "FINETUNE_EPOCHS": 16, "STUDENT_EPOCHS": 40, "N_TRANSFER": 20_000,
             "KD_TEMPERATURES": (1.0, 2.0, 4.0), "KD_ALPHAS": (0.5, 0.9), "N_MONITOR": 1000, "LATENCY_ROUNDS": 9},
}

#: Test accuracy published for MNIST-1D (the ``mnist1d`` README: Greydanus, 2020), and with the 40 positions of
#: every signal shuffled by one fixed permutation (a CNN's spatial prior no longer helps).
PAPER = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91, "human expert": 0.96}
PAPER_SHUFFLED = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.56, "GRU": 0.57, "human expert": 0.30}

#: The microcontroller budget of the distilled student: at most this many parameters (int8: one byte each) ...
STUDENT_MAX_PARAMS = 3_000
#: ... and at most this many bytes of int8 ``.tflite`` file (weights, graph and metadata together).
STUDENT_MAX_BYTES = 20_000

#: The generator's knobs (``mnist1d.data.get_dataset_args``) that :func:`make_data` lets you change.
DATASET_ARGS = ("template_len", "padding", "scale_coeff", "max_translation", "corr_noise_scale", "iid_noise_scale",
                "shear_scale", "shuffle_seq", "final_seq_length")


@dataclass
class Data:
    """MNIST-1D signals as float32 ``(N, 40, 1)`` (a channel axis for Conv1D) and int labels, with the settings."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    args: dict

    def flat(self, x) -> np.ndarray:
        """``x`` as ``(N, 40)``: what scikit-learn models take."""
        return np.asarray(x).reshape(len(x), -1)


def make_data(n_samples: int = 5000, seed: int = 42, **knobs) -> Data:
    """MNIST-1D from the ``mnist1d`` generator, offline: ``make_dataset(get_dataset_args())`` with ``num_samples``,
    ``seed`` and any of :data:`DATASET_ARGS` set. The defaults give the published dataset (4000 train, 1000 test).

    The generator seeds NumPy's *global* random state; it is put back afterwards, so generating data never changes
    the notebook's other random draws. Nothing here downloads (``get_dataset`` would: it is never called).

    Lesson: 10_capstone § 1 · The use case, the one metric, the split, the baselines.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    unknown = set(knobs) - set(DATASET_ARGS)
    if unknown:
        raise ValueError(f"unknown generator setting(s) {sorted(unknown)}; the generator's knobs are {DATASET_ARGS}.")
    if n_samples < 20:
        raise ValueError(f"n_samples={n_samples}: generate at least 20 signals (2 per class and a test split).")
    args = get_dataset_args()
    args.num_samples, args.seed = int(n_samples), int(seed)
    for name, value in knobs.items():
        setattr(args, name, value)
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    settings = {k: v for k, v in vars(args).items() if k != "url"}
    as_x = lambda a: np.asarray(a, dtype=np.float32)[..., None]  # noqa: E731
    return Data(as_x(d["x"]), np.asarray(d["y"], dtype=np.int64), as_x(d["x_test"]),
                np.asarray(d["y_test"], dtype=np.int64), settings)


def sample(n: int, seed: int, **knobs):
    """``(x, y)``: ``n`` fresh signals from the generator (train and test parts together), with any knobs changed:
    a batch of "production" traffic for the monitoring stage.

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    d = make_data(max(20, int(np.ceil(n / 0.8)) + 1), seed=seed, **knobs)
    x, y = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])
    return x[:n], y[:n]


def unlabelled(n: int, seed: int, data_seed: int = 42, **knobs) -> np.ndarray:
    """``n`` new signals ``(n, 40, 1)`` from the generator with the same settings and another seed, **labels
    dropped**: a transfer set for distillation (the teacher labels it). ``seed`` must differ from ``data_seed``, the
    seed of the dataset whose test signals the transfer set must never contain.

    Lesson: 10_capstone § ✏️ Exercise 10.4: the distillation loss and the student.
    """
    if int(seed) == int(data_seed):
        raise ValueError(f"seed={seed} is the dataset's own seed: the transfer set would repeat its (test) signals; "
                         "draw it with another seed.")
    return sample(n, seed, **knobs)[0]


def split_val(x, y, n_val: int, seed: int = 0):
    """``(x_train, y_train, x_val, y_val)``: ``n_val`` signals held out, stratified by class, deterministic.

    Lesson: 10_capstone § 1 · The use case, the one metric, the split, the baselines.
    """
    from sklearn.model_selection import train_test_split

    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=n_val, stratify=y, random_state=seed)
    return x_tr, y_tr, x_val, y_val


def paper_row(name: str) -> float:
    """The published test accuracy of ``name`` (a key of :data:`PAPER`).

    Lesson: 10_capstone § ✏️ Exercise 10.1: the baselines.
    """
    if name not in PAPER:
        raise KeyError(f"the paper reports {sorted(PAPER)}, not {name!r}.")
    return PAPER[name]


# ---- the course's copy of the exercises' solutions (the notebook's later cells run these) -------------------------

def fit_baselines(x, y, seed: int = 0, mlp_iter: int = 200) -> dict:
    """Exercise 10.1: ``{"logistic regression": fitted, "MLP": fitted}``, scikit-learn, on ``(N, 40)`` signals.

    Lesson: 10_capstone § ✏️ Exercise 10.1: the baselines.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x = np.asarray(x).reshape(len(x), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logreg = LogisticRegression(max_iter=1000).fit(x, y)
        mlp = MLPClassifier(hidden_layer_sizes=(100,), max_iter=mlp_iter, random_state=seed).fit(x, y)
    return {"logistic regression": logreg, "MLP": mlp}


def hypermodel(hp):
    """Exercise 10.2: a keras-tuner hypermodel over a Conv1D space (``conv_layers``, ``filters``, ``kernel_size``,
    ``dense_units``, ``dropout``, ``learning_rate``): a compiled Keras 3 model, (40, 1) signals in, 10 logits out.

    Lesson: 10_capstone § ✏️ Exercise 10.2: the hypermodel.
    """
    keras = quiet_import("keras")

    conv_layers = hp.Int("conv_layers", 2, 3)
    filters = hp.Int("filters", 16, 48, step=16)
    kernel_size = hp.Choice("kernel_size", [3, 5, 7])
    dense_units = hp.Choice("dense_units", [32, 64, 128])
    dropout = hp.Float("dropout", 0.0, 0.3, step=0.1)
    learning_rate = hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")
    model = keras.Sequential([keras.Input((40, 1))], name="cnn1d")
    for _ in range(conv_layers):
        model.add(keras.layers.Conv1D(filters, kernel_size, strides=2, padding="same", activation="relu"))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(dense_units, activation="relu"))
    model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(10))  # logits
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def to_int8(model, representative) -> bytes:
    """Exercise 10.3's answer: full-integer int8 (int8 in and out, calibrated on ``representative`` signals, one
    per yield). The notebook writes the ``tf.lite.TFLiteConverter`` calls; the tested converter behind this is
    :func:`mlcourse.litert.to_tflite`, which also refuses calibration data that cannot calibrate.

    Lesson: 10_capstone § ✏️ Exercise 10.3: the int8 converter and magnitude pruning.
    """
    return litert.to_tflite(model, "int8", representative, io_type="int8")


def _prunable(layer) -> bool:
    return type(layer).__name__ in ("Conv1D", "Dense")


def magnitude_prune(model, sparsity: float):
    """Exercise 10.3: a Keras 3 copy of ``model`` in which each Conv1D / Dense kernel has its ``sparsity`` share of
    smallest-magnitude weights set to 0 (one-shot, per layer; biases kept). The input model is left as it is.

    Lesson: 10_capstone § ✏️ Exercise 10.3: the int8 converter and magnitude pruning.
    """
    keras = quiet_import("keras")

    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}.")
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    for layer in pruned.layers:
        if not _prunable(layer):
            continue
        kernel, *rest = layer.get_weights()
        k = int(round(sparsity * kernel.size))
        if k:
            flat = kernel.copy().ravel()
            flat[np.argsort(np.abs(flat), kind="stable")[:k]] = 0.0
            kernel = flat.reshape(kernel.shape)
        layer.set_weights([kernel, *rest])
    return pruned


def kernel_sparsity(model) -> float:
    """Share of exactly-zero weights among the Conv1D / Dense kernels of a Keras model.

    Lesson: 10_capstone § ✏️ Exercise 10.3: the int8 converter and magnitude pruning.
    """
    kernels = [layer.get_weights()[0] for layer in model.layers if _prunable(layer)]
    if not kernels:
        raise ValueError("the model has no Conv1D or Dense layer: nothing to measure.")
    return float(sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels))


def kd_loss(labels, teacher_logits, student_logits, temperature: float, alpha: float):
    """Exercise 10.4: per-example ``(1 - alpha) * CE(labels, student) + alpha * T**2 * KL(softmax(teacher / T) ||
    softmax(student / T))``, in ``keras.ops`` (NumPy arrays and tensors alike). ``alpha`` may also be one value per
    example: 1 for an unlabelled transfer signal (soft targets only), 0 for a hard (pseudo-)label.

    Lesson: 10_capstone § ✏️ Exercise 10.4: the distillation loss and the student.
    """
    ops = quiet_import("keras").ops

    s = ops.convert_to_tensor(student_logits, dtype="float32")
    t = ops.convert_to_tensor(teacher_logits, dtype="float32")
    onehot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), ops.shape(s)[-1])
    hard = -ops.sum(onehot * ops.log_softmax(s, axis=-1), axis=-1)
    p_t = ops.softmax(t / temperature, axis=-1)
    soft = ops.sum(p_t * (ops.log_softmax(t / temperature, axis=-1) - ops.log_softmax(s / temperature, axis=-1)),
                   axis=-1)
    alpha = ops.cast(alpha, "float32")
    return (1.0 - alpha) * hard + alpha * temperature ** 2 * soft


def build_student(seed: int = 0):
    """Exercise 10.4: a Conv1D student for a microcontroller: under :data:`STUDENT_MAX_PARAMS` parameters, (40, 1)
    signals in, 10 logits out (not compiled: its loss is chosen by the caller).

    Lesson: 10_capstone § ✏️ Exercise 10.4: the distillation loss and the student.
    """
    keras = quiet_import("keras")

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((40, 1)),
        keras.layers.Conv1D(8, 5, strides=2, padding="same", activation="relu"),
        keras.layers.Conv1D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv1D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ], name="student")


def validate_signals(x, length: int = 40) -> np.ndarray:
    """Exercise 10.5: a request as a float32 ``(N, length, 1)`` batch (one ``(length,)`` signal becomes a batch of
    one); TypeError for a non-float dtype, ValueError for a wrong shape, an empty batch, NaN or infinity."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"signals must be floating point (float32 or float64), got dtype {x.dtype}: send the raw "
                        "real-valued samples, not labels, strings or integer codes.")
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 2 or x.shape[1] != length:
        raise ValueError(f"wrong shape {x.shape}: send one signal of shape ({length},) or a batch of shape "
                         f"(N, {length}) or (N, {length}, 1).")
    if len(x) == 0:
        raise ValueError(f"empty batch (shape {x.shape}): send at least one signal.")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])[:5].tolist()
        raise ValueError(f"{int(bad.sum())} value(s) are NaN or infinite (in signal(s) {rows}): fix or drop those "
                         "signals before asking for a prediction.")
    return x.astype(np.float32)[..., None]


def make_predictor(tflite: bytes):
    """Exercise 10.5: ``predict(signals) -> int labels``, one LiteRT interpreter (``ai_edge_litert``) behind
    :func:`validate_signals`, quantizing the input and reading the argmax of the output.

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=bytes(tflite), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    length = int(inp["shape"][1])

    def predict(signals) -> np.ndarray:
        x = validate_signals(signals, length)
        if inp["dtype"] in (np.int8, np.uint8):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        labels = []
        for row in x:  # one signal per invoke: what a device does
            it.set_tensor(inp["index"], row[None])
            it.invoke()
            labels.append(int(np.argmax(it.get_tensor(out["index"])[0])))
        return np.asarray(labels, dtype=np.int64)

    return predict


def signal_features(x) -> pd.DataFrame:
    """Per-signal statistics worth monitoring, one row per signal of ``(N, 40)`` or ``(N, 40, 1)``: ``roughness``
    (mean absolute step: noise), ``peak position`` (where the largest absolute value sits: translation) and
    ``peak height`` (the largest absolute value: scale).

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return pd.DataFrame({"roughness": np.abs(np.diff(x, axis=1)).mean(axis=1),
                         "peak position": np.abs(x).argmax(axis=1).astype(np.float64),
                         "peak height": np.abs(x).max(axis=1)})


def drift_pvalues(reference, current) -> pd.Series:
    """Two-sample Kolmogorov-Smirnov p-value of each :func:`signal_features` column, ``current`` against
    ``reference`` (signals as ``(N, 40)`` or ``(N, 40, 1)`` arrays).

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    from scipy.stats import ks_2samp

    ref, cur = signal_features(reference), signal_features(current)
    return pd.Series({name: float(ks_2samp(ref[name], cur[name]).pvalue) for name in ref}, name="p-value")


def drift_alarm(reference, current, alpha: float = 0.001) -> bool:
    """Exercise 10.5: True when any of :func:`drift_pvalues` is below ``alpha`` divided by the number of tests
    (Bonferroni: several tests at ``alpha`` each raise more false alarms than ``alpha`` says).

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    p = drift_pvalues(reference, current)
    return bool((p < alpha / len(p)).any())


# ---- tables ---------------------------------------------------------------------------------------------------------

def size_row(name: str, blob: bytes, accuracy: float, nonzero: int | None = None) -> dict:
    """One row of the compression table: file bytes, gzipped bytes (pruning's zeros only show compressed),
    non-zero kernel weights and test accuracy.

    Lesson: 10_capstone § ✏️ Exercise 10.3: the int8 converter and magnitude pruning.
    """
    return {"variant": name, "bytes": len(blob), "gzipped bytes": len(gzip.compress(bytes(blob), 9)),
            "nonzero kernel weights": nonzero, "test accuracy": float(accuracy)}


def summary(ours: dict, size: str) -> pd.DataFrame:
    """The end-to-end table: one row per model this run measured (``{name: test accuracy}``; names of
    :data:`PAPER` are set beside the paper's number, others get none), with the difference in points.

    Lesson: 10_capstone § End to end: this run beside the paper.
    """
    rows = []
    for name, acc in ours.items():
        paper = next((v for k, v in PAPER.items() if name == k or name.startswith(k + " ")), None)
        rows.append({"model": name, "paper": paper, f"this run ({size})": float(acc),
                     "difference (points)": None if paper is None else round(100 * (float(acc) - paper), 1)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ headlines
#: The published figure the capstone's tuned CNN is set beside.
REFERENCES = {
    "MNIST-1D CNN": Reference("CNN 94 % test accuracy on MNIST-1D (Greydanus 2020, the mnist1d README; logistic "
                              "regression 32 %, MLP 68 %, GRU 91 %, human 96 %)", PAPER["CNN"], " pp", 100),
}


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``10_capstone`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    h.add_rows("MNIST-1D (capstone): baselines, test accuracy beside the paper's", "capstone: baselines vs paper",
               lambda r: f"{r['model']} {r['test']:.3f} (paper {r['paper (test)']:.2f})")
    cnn = h.value("capstone: tuned CNN over seeds vs paper", dict)
    if cnn and cnn.get("mean") is not None:
        h.add("MNIST-1D (capstone): tuned Conv1D CNN (keras-tuner), test accuracy over seeds",
              f"{cnn['mean']:.3f}, 95 % interval [{cnn['lo']:.3f}, {cnn['hi']:.3f}] over {cnn['n']} seeds",
              REFERENCES["MNIST-1D CNN"], cnn["mean"])
    h.add_dict("MNIST-1D (capstone): pruning + int8 (LiteRT)", "capstone: compression verdicts", lambda r: r["verdict"])
    h.add_dict("MNIST-1D (capstone): distilled student vs the same student from scratch",
               "capstone: distillation vs scratch", lambda r: r["verdict"])
    h.add_dict("MNIST-1D (capstone): drift alarm on the generator's noise and translation knobs",
               "capstone: drift alarm", lambda r: r["verdict"])
    return h.out
