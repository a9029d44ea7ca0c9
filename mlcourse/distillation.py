"""Knowledge distillation: a small *student* learns from a large *teacher*'s soft targets.

Hinton et al. (2015): soften the teacher's output with a temperature ``T`` (``softmax(z / T)``), and train
the student on

    loss = (1 - alpha) * CE(y, student) + alpha * T**2 * KL(softmax(z_teacher / T) || softmax(z_student / T))

The ``T**2`` keeps the soft term's gradients on the same scale whatever ``T`` is. The soft targets say how
alike the classes look to the teacher ("this shirt is a bit like a T-shirt, nothing like a boot"), which is
more information per example than the one-hot label.

The course's models end in a softmax; :class:`logits_output` switches it off while logits are needed
(log-probabilities would do in exact arithmetic, but float32 rounds tiny probabilities to 0, and those are
exactly what a high temperature brings out). Teacher outputs are computed once, up front, and packed
with the labels (:func:`pack`), so a distillation epoch costs what a normal one costs.

* :func:`distillation_loss`, :func:`distill`: the loss and a student trained with it (Keras 3);
* :func:`teacher_logits`, :func:`ensemble_logits`: what a teacher, or an ensemble of teachers, says;
* :func:`gap_closed`: (distilled - scratch) / (teacher - scratch);
* :func:`sweep`, :func:`seed_study`: temperature x alpha, and the headline over several seeds.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["TEACHER", "STUDENT", "logits_output", "teacher_logits", "ensemble_logits", "soften", "pack", "distillation_loss",
           "distill", "accuracy", "gap_closed", "train_teacher", "sweep", "seed_study"]

TEACHER = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.3}
STUDENT = {"arch": "cnn", "filters": [8, 16], "dense_units": 32, "dropout": 0.0}


def _keras():
    from mlcourse.runtime import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


class logits_output:
    """Context manager: inside it, a course model outputs its *logits* (its last layer's softmax is switched
    off); on leaving, the softmax is back. The course's models end in a ``Dense(..., activation="softmax")``
    named ``probs``."""

    def __init__(self, model):
        self.model, self.layer = model, model.get_layer("probs")

    def __enter__(self):
        self.saved = self.layer.activation
        self.layer.activation = _keras().activations.linear
        return self.layer

    def __exit__(self, *exc):
        self.layer.activation = self.saved
        for fn in ("train_function", "test_function", "predict_function"):  # traced with logits: retrace
            if hasattr(self.model, fn):
                setattr(self.model, fn, None)
        return False


def teacher_logits(model, x, batch_size: int = 1024) -> np.ndarray:
    """The logits of a course model for ``x`` (the input of its final softmax), float32 N x classes."""
    x = np.asarray(x)
    with logits_output(model):
        out = [np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype("float32")


def ensemble_logits(models, x, batch_size: int = 1024) -> np.ndarray:
    """The logits of an ensemble: the log of its members' *average probability* (computed in float64)."""
    if not models:
        raise ValueError("ensemble_logits needs at least one model.")
    p = np.mean([soften(teacher_logits(m, x, batch_size), 1.0) for m in models], axis=0)
    return np.log(np.maximum(p, 1e-300)).astype("float32")


def soften(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / T)``: the higher ``T``, the more the small probabilities show."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    z = np.asarray(logits, dtype="float64") / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def pack(y, logits) -> np.ndarray:
    """Labels and teacher logits side by side (N x (1 + classes)), the ``y`` that :func:`distillation_loss` reads."""
    y, logits = np.asarray(y), np.asarray(logits)
    if logits.ndim != 2 or len(y) != len(logits):
        raise ValueError(f"need one row of teacher logits per label: got {len(y)} labels and logits of shape "
                         f"{logits.shape}.")
    return np.concatenate([y.reshape(-1, 1).astype("float32"), logits.astype("float32")], axis=1)


def distillation_loss(temperature: float = 4.0, alpha: float = 0.9):
    """The loss ``(1 - alpha) * CE(y, student) + alpha * T^2 * KL(teacher_T || student_T)`` as a Keras loss.

    Its ``y_true`` is :func:`pack` (labels, teacher logits); ``y_pred`` is the student's *logits* (see
    :class:`logits_output`).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    ops = _keras().ops

    def loss(y_true, y_pred):
        labels = ops.cast(y_true[:, 0], "int32")
        hard = -ops.take_along_axis(ops.log_softmax(y_pred, axis=-1), labels[:, None], axis=1)[:, 0]
        if alpha == 0:
            return hard
        log_p_teacher = ops.log_softmax(y_true[:, 1:] / temperature, axis=-1)
        log_p_student = ops.log_softmax(y_pred / temperature, axis=-1)
        kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
        return (1 - alpha) * hard + alpha * temperature ** 2 * kl

    loss.__name__ = f"distillation_T{temperature:g}_alpha{alpha:g}"
    return loss


def _label_accuracy(y_true, y_pred):  # y_pred: logits (argmax is the same)
    ops = _keras().ops
    return ops.cast(ops.equal(ops.cast(y_true[:, 0], "int64"), ops.argmax(y_pred, axis=-1)), "float32")


def distill(x, y, logits, student_hp: dict | None = None, temperature: float = 4.0, alpha: float = 0.9,
            epochs: int = 5, batch_size: int = 128, seed: int = 0, verbose: int = 0):
    """Train a fresh student (Keras 3) on labels ``y`` and teacher ``logits``; returns the student.

    ``alpha=0`` trains on the labels alone: the student-from-scratch baseline, with the same code path.
    """
    from mlcourse import models
    from mlcourse.runtime import set_seed

    x = np.asarray(x)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")
    set_seed(seed)
    keras = _keras()
    student = models.build_model({**STUDENT, **(student_hp or {})}, compile=False, name="student")
    lr = models.get_hp(student)["learning_rate"]
    with logits_output(student):  # train on logits: no clipping of tiny probabilities, exact gradients
        student.compile(optimizer=keras.optimizers.Adam(lr), loss=distillation_loss(temperature, alpha),
                        metrics=[_label_accuracy])
        student.fit(x, pack(y, logits), epochs=epochs, batch_size=batch_size, verbose=verbose)
    models.compile_model(student)  # softmax back, ordinary loss: evaluate / predict / convert as usual
    return student


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Test accuracy of a softmax classifier."""
    return float(np.mean(np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1) == np.asarray(y)))


def gap_closed(distilled: float, scratch: float, teacher: float) -> float:
    """The share of the teacher-student gap that distillation closes: ``(distilled - scratch) / (teacher - scratch)``."""
    if teacher <= scratch:
        return float("nan")  # no gap to close
    return (distilled - scratch) / (teacher - scratch)


def train_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0):
    """Train a teacher network (default :data:`TEACHER`, Keras 3); returns the model."""
    from mlcourse import models
    from mlcourse.runtime import set_seed

    set_seed(seed)
    model = models.build_model({**TEACHER, **(hp or {})}, name=f"teacher_{seed}")
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def sweep(x, y, logits, x_val, y_val, temperatures=(1, 2, 4, 8), alphas=(0.5, 0.9), epochs: int = 5,
          student_hp: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """Validation accuracy of a distilled student for every temperature x alpha (one row each).

    Pick T and alpha on *validation* data held out of the training set, never on the test set: the test
    accuracy of the chosen pair would otherwise be optimistic.
    """
    from tqdm.auto import tqdm

    rows = []
    grid = [(t, a) for t in temperatures for a in alphas]
    for t, a in tqdm(grid, desc="T x alpha"):
        s = distill(x, y, logits, student_hp, temperature=t, alpha=a, epochs=epochs, seed=seed)
        rows.append({"temperature": t, "alpha": a, "val accuracy": accuracy(s, x_val, y_val)})
    return pd.DataFrame(rows)


def seed_study(x, y, x_test, y_test, seeds=(0, 1, 2), temperature: float = 4.0, alpha: float = 0.9,
               teacher_epochs: int = 5, student_epochs: int = 5, teacher_hp: dict | None = None,
               student_hp: dict | None = None, teachers: list | None = None) -> pd.DataFrame:
    """For each seed: a teacher, a student from scratch and a distilled student; accuracy and gap closed.

    ``teachers`` (one per seed) reuses teachers already trained; otherwise each seed trains its own.
    Returns one row per seed with teacher, scratch and distilled test accuracy, the gap closed, and the
    seconds each took to train (teacher seconds are 0 for reused teachers).
    """
    if teachers is not None and len(teachers) != len(seeds):
        raise ValueError(f"give one teacher per seed: {len(teachers)} teachers for {len(seeds)} seeds.")
    from tqdm.auto import tqdm

    rows = []
    for i, seed in enumerate(tqdm(seeds, desc="seeds")):
        t0 = time.perf_counter()
        teacher = teachers[i] if teachers is not None else train_teacher(x, y, teacher_hp, teacher_epochs, seed=seed)
        t1 = time.perf_counter()
        logits = teacher_logits(teacher, x)
        scratch = distill(x, y, logits, student_hp, alpha=0.0, epochs=student_epochs, seed=seed)
        t2 = time.perf_counter()
        distilled = distill(x, y, logits, student_hp, temperature=temperature, alpha=alpha, epochs=student_epochs,
                            seed=seed)
        t3 = time.perf_counter()
        acc = {k: accuracy(m, x_test, y_test) for k, m in
               (("teacher", teacher), ("scratch", scratch), ("distilled", distilled))}
        rows.append({"seed": seed, **acc, "gap closed": gap_closed(acc["distilled"], acc["scratch"], acc["teacher"]),
                     "teacher s": t1 - t0, "scratch s": t2 - t1, "distilled s": t3 - t2})
    return pd.DataFrame(rows)
