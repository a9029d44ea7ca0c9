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
* a *transfer set* (``distill(..., transfer=...)``): unlabelled images the teacher answers for; the
  student learns from its soft targets there too, which is how a teacher's knowledge reaches data that
  nobody labelled;
* :func:`sweep`, :func:`seed_study`: temperature x alpha, and the headline over several seeds.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["warm_cache", "TEACHER", "STUDENT", "split", "logits_output", "teacher_logits", "ensemble_logits", "soften", "pack", "distillation_loss",
           "distill", "accuracy", "gap_closed", "train_teacher", "cached_teacher", "sweep", "seed_study"]

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


def split(ds, n_train: int, n_val: int, n_transfer: int = 0, seed: int = 0):
    """Disjoint random parts of a dataset's training images: labelled training, validation, and a transfer
    set whose labels are thrown away. Returns ``(x, y), (x_val, y_val), x_transfer``."""
    n = n_train + n_val + n_transfer
    if n > len(ds.x_train):
        raise ValueError(f"{n_train} + {n_val} + {n_transfer} images requested, the dataset has {len(ds.x_train)}.")
    idx = np.random.default_rng(seed).permutation(len(ds.x_train))
    tr, va, tf = idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:n]
    return (ds.x_train[tr], ds.y_train[tr]), (ds.x_train[va], ds.y_train[va]), ds.x_train[tf]


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
    :class:`logits_output`). A label of -1 marks an *unlabelled* example (a transfer-set image that only
    the teacher has seen an answer for): its hard term is dropped and it learns from the soft term alone.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    ops = _keras().ops

    def loss(y_true, y_pred):
        labels = ops.cast(y_true[:, 0], "int32")
        labelled = ops.cast(labels >= 0, y_pred.dtype)
        safe = ops.maximum(labels, 0)
        hard = -ops.take_along_axis(ops.log_softmax(y_pred, axis=-1), safe[:, None], axis=1)[:, 0] * labelled
        if alpha == 0:
            return hard
        log_p_teacher = ops.log_softmax(y_true[:, 1:] / temperature, axis=-1)
        log_p_student = ops.log_softmax(y_pred / temperature, axis=-1)
        kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
        soft_weight = ops.where(labelled > 0, alpha, 1.0)  # unlabelled examples: the soft term only
        return (1 - alpha) * hard + soft_weight * temperature ** 2 * kl

    loss.__name__ = f"distillation_T{temperature:g}_alpha{alpha:g}"
    return loss


def distill(x, y, logits, student_hp: dict | None = None, temperature: float = 4.0, alpha: float = 0.9,
            epochs: int = 5, batch_size: int = 128, seed: int = 0, verbose: int = 0, transfer=None):
    """Train a fresh student (Keras 3) on labels ``y`` and teacher ``logits``; returns the student.

    ``alpha=0`` trains on the labels alone: the student-from-scratch baseline, with the same code path.
    ``transfer=(x_unlabelled, teacher_logits_unlabelled)`` adds a *transfer set*: images without labels
    that the student learns about from the teacher's soft targets only.
    """
    if transfer is not None:
        if alpha == 0:
            raise ValueError("a transfer set needs alpha > 0: with alpha=0 the student ignores the teacher.")
        xu, lu = transfer
        if len(xu) != len(lu):
            raise ValueError(f"transfer set: {len(xu)} images but {len(lu)} rows of teacher logits.")
        x = np.concatenate([np.asarray(x), np.asarray(xu)])
        y = np.concatenate([np.asarray(y), -np.ones(len(xu), dtype=np.asarray(y).dtype)])
        logits = np.concatenate([np.asarray(logits), np.asarray(lu)])
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
        student.compile(optimizer=keras.optimizers.Adam(lr), loss=distillation_loss(temperature, alpha))
        student.fit(x, pack(y, logits), epochs=epochs, batch_size=batch_size, verbose=verbose, shuffle=True,
                    callbacks=[] if verbose else [models.epoch_bar(student, epochs, "student")])
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
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[models.epoch_bar(model, epochs)])
    return model


def cached_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0):
    """:func:`train_teacher`, from the workshop cache when the same recipe was trained before."""
    from mlcourse.cache import cached_model

    hp = {**TEACHER, **(hp or {})}
    return cached_model("teacher", lambda: train_teacher(x, y, hp, epochs, batch_size, seed), x, y, hp=hp,
                        epochs=epochs, batch_size=batch_size, seed=seed)


def sweep(x, y, logits, x_val, y_val, temperatures=(1, 2, 4, 8), alphas=(0.5, 0.9), epochs: int = 5,
          student_hp: dict | None = None, seed: int = 0, transfer=None) -> pd.DataFrame:
    """Validation accuracy of a distilled student for every temperature x alpha (one row each).

    Pick T and alpha on *validation* data held out of the training set, never on the test set: the test
    accuracy of the chosen pair would otherwise be optimistic. ``transfer`` is passed on to :func:`distill`.
    """
    from tqdm.auto import tqdm

    rows = []
    grid = [(t, a) for t in temperatures for a in alphas]
    for t, a in tqdm(grid, desc="T x alpha"):
        s = distill(x, y, logits, student_hp, temperature=t, alpha=a, epochs=epochs, seed=seed, transfer=transfer)
        rows.append({"temperature": t, "alpha": a, "val accuracy": accuracy(s, x_val, y_val)})
    return pd.DataFrame(rows)


def seed_study(x, y, x_test, y_test, seeds=(0, 1, 2), temperature: float = 4.0, alpha: float = 0.9,
               teacher_epochs: int = 5, student_epochs: int = 5, teacher_hp: dict | None = None,
               student_hp: dict | None = None, teachers: list | None = None, x_transfer=None) -> pd.DataFrame:
    """For each seed: a teacher, a student from scratch and a distilled student; accuracy and gap closed.

    ``teachers`` (one per seed) reuses teachers already trained; otherwise each seed trains its own.
    ``x_transfer`` (unlabelled images) adds a second distilled student that also learns from the teacher's
    soft targets on them (columns ``distilled + transfer`` and ``gap closed + transfer``).
    Returns one row per seed: teacher, scratch and distilled test accuracy, the gap closed, and the seconds
    each student took to train.
    """
    from tqdm.auto import tqdm

    if teachers is not None and len(teachers) != len(seeds):
        raise ValueError(f"give one teacher per seed: {len(teachers)} teachers for {len(seeds)} seeds.")
    rows = []
    per_seed = 2 + (teachers is None) + (x_transfer is not None)  # trainings per seed, for the progress bar
    bar = tqdm(total=len(seeds) * per_seed, desc="seed study (trainings)")

    def step(what):
        bar.set_postfix_str(f"seed {seed}: {what}")
        bar.update()

    for i, seed in enumerate(seeds):
        if teachers is None:
            teacher = train_teacher(x, y, teacher_hp, teacher_epochs, seed=seed)
            step("teacher")
        else:
            teacher = teachers[i]
        logits = teacher_logits(teacher, x)
        row = {"seed": seed, "teacher": accuracy(teacher, x_test, y_test)}
        t0 = time.perf_counter()
        row["scratch"] = accuracy(distill(x, y, logits, student_hp, alpha=0.0, epochs=student_epochs, seed=seed),
                                  x_test, y_test)
        step("scratch")
        t1 = time.perf_counter()
        row["distilled"] = accuracy(distill(x, y, logits, student_hp, temperature=temperature, alpha=alpha,
                                            epochs=student_epochs, seed=seed), x_test, y_test)
        step("distilled")
        t2 = time.perf_counter()
        row["gap closed"] = gap_closed(row["distilled"], row["scratch"], row["teacher"])
        row.update({"scratch s": t1 - t0, "distilled s": t2 - t1})
        if x_transfer is not None:
            transfer = (x_transfer, teacher_logits(teacher, x_transfer))
            row["distilled + transfer"] = accuracy(distill(x, y, logits, student_hp, temperature=temperature,
                                                           alpha=alpha, epochs=student_epochs, seed=seed,
                                                           transfer=transfer), x_test, y_test)
            row["gap closed + transfer"] = gap_closed(row["distilled + transfer"], row["scratch"], row["teacher"])
            row["distilled + transfer s"] = time.perf_counter() - t2
            step("distilled + transfer")
        rows.append(row)
    bar.close()
    return pd.DataFrame(rows)


def warm_cache(ds, smoke: bool, seed: int = 0) -> None:
    """Train and cache 06's teachers at the notebook's default sizes (``make workshop``)."""
    n = 2_000 if smoke else 10_000
    (x, y), _, _ = split(ds, n, n // 5, 2_000 if smoke else 30_000, seed=seed)
    for s in (0,) if smoke else (0, 1, 2):
        cached_teacher(x, y, epochs=1 if smoke else 8, seed=s)
