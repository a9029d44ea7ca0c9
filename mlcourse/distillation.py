"""Knowledge distillation: a small *student* learns from a large *teacher*'s soft targets.

Notebook: ``06_distillation_ensembles`` writes the loss and a ``Distiller(keras.Model)`` out in its cells;
this module is their tested production version (teacher logits computed once, transfer sets, seed studies).

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
* :func:`sweep`, :func:`seed_study`: temperature x alpha, and the headline over several seeds, with the
  control that separates the soft targets from the extra images (the transfer set with the teacher's
  *hard* argmax labels);
* ``Distiller`` (built on first use, so importing this module needs no Keras): the Keras pattern, a
  ``keras.Model`` whose ``compute_loss`` runs the teacher, the transfer-set mask included;
* :data:`SIZES`: the notebook's parameter defaults, read by its parameters cell and :func:`warm_cache`.
"""
from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

from mlcourse import stats
from mlcourse.runtime import quiet_import

__all__ = ["warm_cache", "SIZES", "sizes", "TEACHER", "STUDENT", "STUDENTS", "teacher_hp", "split", "logits_output",
           "teacher_logits", "ensemble_logits", "soften", "pack", "distillation_loss", "distill",
           "hard_label_control", "accuracy", "gap_closed", "train_teacher", "cached_teacher", "sweep", "seed_study",
           "verdict"]

TEACHER = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.3}
STUDENT = {"arch": "cnn", "filters": [8, 16], "dense_units": 32, "dropout": 0.0}
#: Students of other architectures, for distillation across architectures (a CNN teacher into an MLP, or into
#: a depthwise-separable CNN, MobileNet-style).
STUDENTS = {
    "small CNN": STUDENT,
    "MLP": {"arch": "mlp", "hidden_units": [64], "dropout": 0.0},
    "depthwise-separable CNN": {"arch": "cnn", "filters": [8, 16], "conv": "separable", "dense_units": 32,
                                "dropout": 0.0},
}

#: 06_distillation_ensembles' parameter defaults: one table, read by the notebook's parameters cell and by
#: :func:`warm_cache` (so a prepared room holds exactly the teachers the notebook asks for).
SIZES = {
    "smoke": {"N_TRAIN": 2_000, "TEACHER_EPOCHS": 1, "STUDENT_EPOCHS": 1, "N_TRANSFER": 2_000, "SEEDS": (0,),
              "N_TABULAR": 1_000, "N_ESTIMATORS": 20, "BV_ROUNDS": 3},
    "full": {"N_TRAIN": 10_000, "TEACHER_EPOCHS": 8, "STUDENT_EPOCHS": 10, "N_TRANSFER": 30_000, "SEEDS": (0, 1, 2),
             "N_TABULAR": 6_000, "N_ESTIMATORS": 100, "BV_ROUNDS": 8},
}


def sizes(smoke: bool, **given) -> dict:
    """06's defaults for this mode (:data:`SIZES`), with every value in ``given`` that is not None put over them."""
    from mlcourse.runtime import pick_sizes

    table = pick_sizes(SIZES, smoke, given)
    table["SEEDS"] = tuple(table["SEEDS"])
    return table


def teacher_hp(work_dir=None) -> tuple[dict, str]:
    """The teacher to distil from: the model your own earlier weeks chose (:func:`mlcourse.results.chosen_hp`:
    02_nas's choice, else 01_tuning's best model) when there is one, else :data:`TEACHER`.
    Returns ``(hp, where it came from)``."""
    from mlcourse.results import chosen_hp

    return chosen_hp(work_dir, TEACHER, "mlcourse.distillation.TEACHER (the course's fixed teacher)")


class logits_output:
    """Context manager: inside it, a course model outputs its *logits* (its last layer's softmax is switched
    off); on leaving, the softmax is back. The course's models end in a ``Dense(..., activation="softmax")``
    named ``probs``."""

    def __init__(self, model):
        self.model, self.layer = model, model.get_layer("probs")

    def __enter__(self):
        self.saved = self.layer.activation
        self.layer.activation = quiet_import("keras").activations.linear
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
    ops = quiet_import("keras").ops

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


@functools.lru_cache(maxsize=1)
def _distiller_class():
    keras = quiet_import("keras")
    ops = keras.ops

    class Distiller(keras.Model):
        """The Keras pattern for distillation: a model that holds a frozen teacher and a student, and whose
        ``compute_loss`` runs the teacher on the batch and mixes the two terms. Both models must output
        *logits* while it trains (wrap the fit in :class:`logits_output` for the course's models).

        ``y`` is the label, or -1 for an unlabelled transfer-set image (soft term only, weight 1). The loss
        per example is :func:`distillation_loss`'s; ``compute_loss`` returns its batch mean.
        """

        def __init__(self, student, teacher, temperature: float = 4.0, alpha: float = 0.9, **kwargs):
            super().__init__(**kwargs)
            if temperature <= 0:
                raise ValueError(f"temperature must be positive, got {temperature}.")
            if not 0 <= alpha <= 1:
                raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
            self.student, self.teacher = student, teacher
            self.temperature, self.alpha = float(temperature), float(alpha)
            self.teacher.trainable = False

        def call(self, x, training=False):
            return self.student(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            T, a = self.temperature, self.alpha
            teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
            labels = ops.cast(ops.reshape(y, (-1,)), "int32")
            labelled = ops.cast(labels >= 0, y_pred.dtype)
            log_p = ops.log_softmax(y_pred, axis=-1)
            hard = -ops.take_along_axis(log_p, ops.maximum(labels, 0)[:, None], axis=1)[:, 0] * labelled
            log_pt = ops.log_softmax(teacher_logits / T, axis=-1)
            log_ps = ops.log_softmax(y_pred / T, axis=-1)
            kl = ops.sum(ops.exp(log_pt) * (log_pt - log_ps), axis=-1)
            soft_weight = labelled * a + (1 - labelled)
            return ops.mean((1 - a) * hard + soft_weight * T ** 2 * kl)

    return Distiller


def __getattr__(name):  # the Distiller class is built on first use, so importing this module needs no Keras
    if name == "Distiller":
        return _distiller_class()
    raise AttributeError(name)


def hard_label_control(x, y, logits, transfer, **kwargs):
    """The control for a transfer set: a student trained on the labelled images *and* the transfer set, where the
    transfer images carry the teacher's **hard** answer (argmax) as an ordinary label, no soft targets.

    Set against ``distill(..., transfer=...)`` it separates what the extra images give from what the soft targets
    give. ``kwargs`` go to :func:`distill` (``alpha`` is 0: labels only).
    """
    xu, lu = transfer
    if len(xu) != len(lu):
        raise ValueError(f"transfer set: {len(xu)} images but {len(lu)} rows of teacher logits.")
    kwargs.pop("alpha", None), kwargs.pop("temperature", None)
    y_all = np.concatenate([np.asarray(y), np.argmax(lu, axis=1).astype(np.asarray(y).dtype)])
    return distill(np.concatenate([np.asarray(x), np.asarray(xu)]), y_all,
                   np.concatenate([np.asarray(logits), np.asarray(lu)]), alpha=0.0, **kwargs)


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
    keras = quiet_import("keras")
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
    """The share of the teacher-student gap that distillation closes:
    ``(distilled - scratch) / (teacher - scratch)``."""
    if teacher <= scratch:
        return float("nan")  # no gap to close
    return (distilled - scratch) / (teacher - scratch)


def train_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0):
    """Train a teacher network (default :data:`TEACHER`, Keras 3) with :func:`mlcourse.models.train`."""
    from mlcourse import models

    return models.train({**TEACHER, **(hp or {})}, x, y, epochs, batch_size=batch_size, seed=seed,
                        name=f"teacher_{seed}")


def cached_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0):
    """:func:`train_teacher`, from the workshop cache when the same recipe was trained before."""
    from mlcourse.cache import trained_model

    return trained_model("teacher", x, y, {**TEACHER, **(hp or {})}, epochs, seed=seed, batch_size=batch_size,
                         model_name=f"teacher_{seed}")


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
               student_hp: dict | None = None, teachers: list | None = None, x_transfer=None,
               temperature_labelled: float | None = None, alpha_labelled: float | None = None,
               keep: dict | None = None) -> pd.DataFrame:
    """For each seed: a teacher, a student from scratch and a distilled student; accuracy and gap closed.

    ``teachers`` (one per seed) reuses teachers already trained; otherwise each seed trains its own.
    The labelled-only student uses ``temperature_labelled`` / ``alpha_labelled`` (tuned on its own; default:
    ``temperature`` / ``alpha``). ``x_transfer`` (unlabelled images) adds two students: one that also learns
    the teacher's soft targets on them (``distilled + transfer``, with ``temperature`` / ``alpha``) and the
    **control** that gets the same images with the teacher's hard argmax labels (``hard labels + transfer``):
    the difference between the two is what the soft targets add beyond the extra images.
    ``keep`` (a dict) receives the first seed's students by column name, for later use.
    Returns one row per seed: test accuracies, the gaps closed, and the seconds each student took to train.
    """
    from tqdm.auto import tqdm

    if teachers is not None and len(teachers) != len(seeds):
        raise ValueError(f"give one teacher per seed: {len(teachers)} teachers for {len(seeds)} seeds.")
    t_lab = temperature if temperature_labelled is None else temperature_labelled
    a_lab = alpha if alpha_labelled is None else alpha_labelled
    gaps = {"distilled": "gap closed", "distilled + transfer": "gap closed + transfer",
            "hard labels + transfer": "gap closed (hard labels + transfer)"}
    rows = []
    per_seed = 2 + (teachers is None) + 2 * (x_transfer is not None)  # trainings per seed, for the progress bar
    bar = tqdm(total=len(seeds) * per_seed, desc="seed study (trainings)")

    for i, seed in enumerate(seeds):
        if teachers is None:
            teacher = train_teacher(x, y, teacher_hp, teacher_epochs, seed=seed)
            bar.update()
        else:
            teacher = teachers[i]
        logits = teacher_logits(teacher, x)
        row = {"seed": seed, "teacher": accuracy(teacher, x_test, y_test)}
        recipes = {"scratch": lambda: distill(x, y, logits, student_hp, alpha=0.0, epochs=student_epochs, seed=seed),
                   "distilled": lambda: distill(x, y, logits, student_hp, temperature=t_lab, alpha=a_lab,
                                                epochs=student_epochs, seed=seed)}
        if x_transfer is not None:
            transfer = (x_transfer, teacher_logits(teacher, x_transfer))
            recipes["distilled + transfer"] = lambda: distill(x, y, logits, student_hp, temperature=temperature,
                                                              alpha=alpha, epochs=student_epochs, seed=seed,
                                                              transfer=transfer)
            recipes["hard labels + transfer"] = lambda: hard_label_control(x, y, logits, transfer,
                                                                           student_hp=student_hp,
                                                                           epochs=student_epochs, seed=seed)
        seconds = {}
        for name, train in recipes.items():
            bar.set_postfix_str(f"seed {seed}: {name}")
            t0 = time.perf_counter()
            student = train()
            seconds[f"{name} s"] = time.perf_counter() - t0
            row[name] = accuracy(student, x_test, y_test)
            if name in gaps:
                row[gaps[name]] = gap_closed(row[name], row["scratch"], row["teacher"])
            if keep is not None and i == 0:
                keep[name] = student
            bar.update()
        rows.append({**row, **seconds})
    bar.close()
    return pd.DataFrame(rows)


def verdict(study: pd.DataFrame, a: str, b: str) -> str:
    """A sentence built from a :func:`seed_study` table: does column ``a`` beat column ``b`` (test accuracy), by
    how many points on average, in how many seeds, and does the 95 % t-interval of the per-seed differences
    exclude 0 (:func:`mlcourse.stats.difference_verdict`)? With one seed it says that no spread was measured."""
    for c in (a, b):
        if c not in study.columns:
            raise KeyError(f"{c!r} is not a column of the study; columns: {list(study.columns)}.")
    return stats.difference_verdict((study[a] - study[b]).to_numpy(dtype=float), a, b)


def warm_cache(ds, smoke: bool, seed: int = 0) -> None:
    """Train and cache 06's teachers at the notebook's default sizes (:data:`SIZES`), with the teacher 06 would
    pick (your own earlier weeks' choice when there is one) (``make workshop``). In smoke mode the fixed
    :data:`TEACHER` is cached as well when a choice was found (cheap there; a test may run the notebook with an
    empty work folder)."""
    from mlcourse.runtime import work_dir

    size = sizes(smoke)
    (x, y), _, _ = split(ds, size["N_TRAIN"], size["N_TRAIN"] // 5, size["N_TRANSFER"], seed=seed)
    hp, _ = teacher_hp(work_dir(smoke))
    # smoke (tests, CI): the fixed teacher too, since a test may run the notebook with an empty work folder
    recipes = [hp] + ([TEACHER] if smoke and hp != TEACHER else [])
    for h in recipes:
        for s in size["SEEDS"]:
            cached_teacher(x, y, hp=h, epochs=size["TEACHER_EPOCHS"], seed=s)
