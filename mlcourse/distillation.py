"""Knowledge distillation: a small *student* learns from a large *teacher*'s soft targets.

Notebook: ``07_distillation_ensembles`` writes the loss and a ``Distiller(keras.Model)`` out in its cells;
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
* :func:`train_teacher` / :func:`cached_teacher` / :func:`prepared_teachers`: a strong, regularised teacher
  (dropout, batch normalisation, random flips and shifts of every training image), trained once and cached;
* :func:`cached_distill`: a student through the model cache, keyed by its teacher's weights (``make workshop``
  precomputes the students of the sweep);
* :data:`SIZES`: the notebook's parameter defaults at each size (smoke, lesson, full), read by its parameters
  cell and :func:`warm_cache`.
"""
from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

from mlcourse import cache, models, results, settings, stats
from mlcourse.headlines import Figure, Headlines, Reference
from mlcourse.session import quiet_import, set_seed, work_dir

__all__ = ["headlines", "FIGURES", "REFERENCES",
           "warm_cache", "SIZES", "sizes", "TEACHER", "STUDENT", "STUDENTS", "STUDENT_BATCH", "AUGMENT", "teacher_hp",
           "split", "logits_output", "teacher_logits", "ensemble_logits", "soften", "pack", "distillation_loss",
           "distill", "cached_distill", "equal_steps", "hard_label_control", "accuracy", "gap_closed", "augmenter",
           "train_teacher", "cached_teacher", "prepared_teachers", "room_teacher", "NotCached", "sweep", "seed_study",
           "verdict"]

#: The course's fixed teacher: regularised (dropout, batch normalisation) and trained on augmented images.
TEACHER = {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.3, "batch_norm": True}
#: The teacher's data augmentation: a random horizontal flip and a random shift of up to 8 % of the image's
#: height and width (about 2 pixels), drawn anew for every image in every epoch (:func:`augmenter`).
AUGMENT = {"flip": "horizontal", "translate": 0.08}
#: Batch size of every student. With 64 a student on 5,000 images takes 625 steps in 8 epochs, for about the
#: time 256 takes for 160 (a small network's step costs little more than its images), and the steps are what a
#: student needs: measured on 1,000 labelled + 4,000 transfer images with a 0.89 teacher, 3 seeds, at batch 256
#: and learning rate 1e-3 the hard pseudo-labels beat the soft targets by 0.8 points in every seed and distillation
#: on the labelled images lost 0.7 points to the student from scratch (students undertrained: the soft targets'
#: extra information unused);
#: at batch 64 and 3e-3 every student gained about 5 points, distillation on the labelled images beat scratch by
#: 3.7 to 5.0 points in every seed, and soft against hard pseudo-labels became a tie (-0.8 to +0.8 points).
STUDENT_BATCH = 64
#: The student: a small CNN (26,698 parameters), Adam at 3e-3 (its few hundred steps need the larger rate).
STUDENT = {"arch": "cnn", "filters": [8, 16], "dense_units": 32, "dropout": 0.0, "learning_rate": 3e-3}
#: Students of other architectures, for distillation across architectures (a CNN teacher into an MLP, or into
#: a depthwise-separable CNN, MobileNet-style).
STUDENTS = {
    "small CNN": STUDENT,
    "MLP": {"arch": "mlp", "hidden_units": [64], "dropout": 0.0},
    "depthwise-separable CNN": {"arch": "cnn", "filters": [8, 16], "conv": "separable", "dense_units": 32,
                                "dropout": 0.0},
}

#: 07_distillation_ensembles' parameter defaults at each size: one table, read by the notebook's parameters cell
#: and by :func:`warm_cache` (so a prepared room holds exactly the teachers and sweep students the notebook asks for).
#: ``N_TEACHER`` images train each of ``N_TEACHERS`` teachers for ``TEACHER_EPOCHS``; at lesson size, when no room
#: prepared them, ``QUICK_EPOCHS`` (> 0) trains quicker ones instead (0: always the full recipe). Each seed draws
#: ``N_LABELLED`` labelled, ``N_VAL`` validation and ``N_TRANSFER`` unlabelled images; a student trains
#: ``STUDENT_EPOCHS`` over labelled + transfer images, and the students of the labelled images alone get the same
#: number of steps (:func:`equal_steps`).
#: ``DEMO_EPOCHS`` trains the students of section 2's comparison of Distillers (four of which run the teacher in
#: every batch) on the labelled images; 0: as many epochs as the labelled-only students (:func:`equal_steps`).
SIZES = {
    "smoke": {"N_TEACHER": 2_000, "TEACHER_EPOCHS": 1, "QUICK_EPOCHS": 0, "N_TEACHERS": 2, "N_LABELLED": 500,
              "N_VAL": 500, "N_TRANSFER": 1_000, "STUDENT_EPOCHS": 1, "DEMO_EPOCHS": 0, "SEEDS": (0,),
              "TEMPERATURES": (1, 4), "ALPHAS": (0.5,), "N_TABULAR": 1_000, "N_ESTIMATORS": 20, "BV_ROUNDS": 3,
              "LATENCY_ROUNDS": 5},
    "lesson": {"N_TEACHER": 60_000, "TEACHER_EPOCHS": 15, "QUICK_EPOCHS": 1, "N_TEACHERS": 2, "N_LABELLED": 1_000,
               "N_VAL": 2_000, "N_TRANSFER": 3_000, "STUDENT_EPOCHS": 8, "DEMO_EPOCHS": 10, "SEEDS": (0, 1, 2),
               "TEMPERATURES": (2, 4), "ALPHAS": (0.7,), "N_TABULAR": 2_000, "N_ESTIMATORS": 40, "BV_ROUNDS": 4,
               "LATENCY_ROUNDS": 10},
    "full": {"N_TEACHER": 60_000, "TEACHER_EPOCHS": 15, "QUICK_EPOCHS": 0, "N_TEACHERS": 3, "N_LABELLED": 2_000,
             "N_VAL": 5_000, "N_TRANSFER": 20_000, "STUDENT_EPOCHS": 12, "DEMO_EPOCHS": 0, "SEEDS": (0, 1, 2, 3, 4),
             "TEMPERATURES": (1, 2, 4, 8), "ALPHAS": (0.5, 0.9), "N_TABULAR": 6_000, "N_ESTIMATORS": 100,
             "BV_ROUNDS": 8, "LATENCY_ROUNDS": 15},
}


def sizes(size: str, **given) -> dict:
    """07's defaults at ``size`` (``"smoke"``, ``"lesson"`` or ``"full"``, :data:`SIZES`), with every value in
    ``given`` that is not None put over them; sequences come back as tuples.

    Lesson: 07_distillation_ensembles § 07 · Knowledge distillation and ensembles.
    """
    table = settings.pick_sizes(SIZES, size, given)
    for k in ("SEEDS", "TEMPERATURES", "ALPHAS"):
        table[k] = tuple(table[k])
    return table


def teacher_hp(work_dir=None) -> tuple[dict, str]:
    """The teacher to distil from: the model your own earlier weeks chose (:func:`mlcourse.results.chosen_hp`:
    03_nas's choice, else 02_tuning's best model) when there is one, else :data:`TEACHER`.
    Returns ``(hp, where it came from)``.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    return results.chosen_hp(work_dir, TEACHER, "mlcourse.distillation.TEACHER (the course's fixed teacher)")


class logits_output:
    """Context manager: inside it, a course model outputs its *logits* (its last layer's softmax is switched
    off); on leaving, the softmax is back. The course's models end in a ``Dense(..., activation="softmax")``
    named ``probs``.

    Lesson: 07_distillation_ensembles § 2 · The Keras pattern: a `Distiller` model.
    """

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
    set whose labels are thrown away. Returns ``(x, y), (x_val, y_val), x_transfer``.

    Lesson: 07_distillation_ensembles § 07 · Knowledge distillation and ensembles.
    """
    n = n_train + n_val + n_transfer
    if n > len(ds.x_train):
        raise ValueError(f"{n_train} + {n_val} + {n_transfer} images requested, the dataset has {len(ds.x_train)}.")
    idx = np.random.default_rng(seed).permutation(len(ds.x_train))
    tr, va, tf = idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:n]
    return (ds.x_train[tr], ds.y_train[tr]), (ds.x_train[va], ds.y_train[va]), ds.x_train[tf]


def teacher_logits(model, x, batch_size: int = 1024) -> np.ndarray:
    """The logits of a course model for ``x`` (the input of its final softmax), float32 N x classes.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    x = np.asarray(x)
    with logits_output(model):
        out = [np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype("float32")


def ensemble_logits(models, x, batch_size: int = 1024) -> np.ndarray:
    """The logits of an ensemble: the log of its members' *average probability* (computed in float64).

    Lesson: 07_distillation_ensembles § 6 · Distilling an ensemble into one small model.
    """
    if not models:
        raise ValueError("ensemble_logits needs at least one model.")
    p = np.mean([soften(teacher_logits(m, x, batch_size), 1.0) for m in models], axis=0)
    return np.log(np.maximum(p, 1e-300)).astype("float32")


def soften(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / T)``: the higher ``T``, the more the small probabilities show.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    z = np.asarray(logits, dtype="float64") / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def pack(y, logits) -> np.ndarray:
    """Labels and teacher logits side by side (N x (1 + classes)), the ``y`` that :func:`distillation_loss` reads.

    Lesson: 07_distillation_ensembles § Keras 3's own `keras.distillation.Distiller`.
    """
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

    Lesson: 07_distillation_ensembles § Keras 3's own `keras.distillation.Distiller`.
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


def equal_steps(epochs: int, n_labelled: int, n_transfer: int) -> int:
    """Epochs on the labelled images alone that take as many gradient steps as ``epochs`` over labelled +
    transfer images: the students of the labelled set get the same training budget as those of the transfer set.

    Lesson: 07_distillation_ensembles § 07 · Knowledge distillation and ensembles.
    """
    if n_labelled <= 0:
        raise ValueError(f"n_labelled must be positive, got {n_labelled}.")
    return max(1, round(epochs * (n_labelled + n_transfer) / n_labelled))


def hard_label_control(x, y, logits, transfer, **kwargs):
    """The control for a transfer set: a student trained on the labelled images *and* the transfer set, where the
    transfer images carry the teacher's **hard** answer (argmax) as an ordinary label, no soft targets.

    Set against ``distill(..., transfer=...)`` with the same epochs it separates what the extra images give from
    what the soft targets give, at equal steps. ``kwargs`` go to :func:`distill` (``alpha`` is 0: labels only).
    """
    xu, lu = transfer
    if len(xu) != len(lu):
        raise ValueError(f"transfer set: {len(xu)} images but {len(lu)} rows of teacher logits.")
    kwargs.pop("alpha", None), kwargs.pop("temperature", None)
    y_all = np.concatenate([np.asarray(y), np.argmax(lu, axis=1).astype(np.asarray(y).dtype)])
    return distill(np.concatenate([np.asarray(x), np.asarray(xu)]), y_all,
                   np.concatenate([np.asarray(logits), np.asarray(lu)]), alpha=0.0, **kwargs)


def distill(x, y, logits, student_hp: dict | None = None, temperature: float = 4.0, alpha: float = 0.9,
            epochs: int = 5, batch_size: int = STUDENT_BATCH, seed: int = 0, verbose: int = 0, transfer=None):
    """Train a fresh student (Keras 3) on labels ``y`` and teacher ``logits``; returns the student.

    ``alpha=0`` trains on the labels alone: the student-from-scratch baseline, with the same code path.
    ``transfer=(x_unlabelled, teacher_logits_unlabelled)`` adds a *transfer set*: images without labels
    that the student learns about from the teacher's soft targets only.

    Lesson: 07_distillation_ensembles § Keras 3's own `keras.distillation.Distiller`.
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


def cached_distill(teacher, x, y, logits, transfer=None, control: bool = False, verbose: bool = False, **kwargs):
    """:func:`distill` (or, with ``control=True``, :func:`hard_label_control`) through the model cache.

    The entry is keyed by the teacher's *weights* (a fingerprint of them, so the same teacher loaded on another
    machine finds the same entry), the labelled data, the transfer images and every argument in ``kwargs``;
    ``make workshop`` fills it for the sweep's students. ``verbose`` says each load / training on its own line.
    """
    recipe = {"teacher": cache.fingerprint(*teacher.get_weights()), "control": control,
              "transfer": cache.fingerprint(None if transfer is None else transfer[0]),
              "batch_size": STUDENT_BATCH, **kwargs}  # the batch is part of the recipe, given or not
    train = (lambda: hard_label_control(x, y, logits, transfer, **kwargs)) if control else \
        (lambda: distill(x, y, logits, transfer=transfer, **kwargs))
    return cache.cached_model("student", train, x, y, verbose=verbose, **recipe)


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Test accuracy of a softmax classifier.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    return float(np.mean(np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1) == np.asarray(y)))


def gap_closed(distilled: float, scratch: float, teacher: float) -> float:
    """The share of the teacher-student gap that distillation closes:
    ``(distilled - scratch) / (teacher - scratch)``.

    Lesson: 07_distillation_ensembles § 5 · Distillation across architectures.
    """
    if teacher <= scratch:
        return float("nan")  # no gap to close
    return (distilled - scratch) / (teacher - scratch)


def augmenter(seed: int = 0):
    """The teacher's data augmentation (:data:`AUGMENT`) as Keras 3 preprocessing layers: ``RandomFlip`` and
    ``RandomTranslation``, applied to batches of ``(N, 28, 28)`` images (a channel is added and removed).

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    keras = quiet_import("keras")
    ops = keras.ops
    flip_shift = keras.Sequential([keras.layers.RandomFlip(AUGMENT["flip"], seed=seed),
                                   keras.layers.RandomTranslation(AUGMENT["translate"], AUGMENT["translate"],
                                                                  fill_mode="constant", seed=seed + 1)])

    def augment(images, labels):
        out = flip_shift(ops.expand_dims(ops.cast(images, "float32"), -1), training=True)
        return ops.squeeze(out, -1), labels

    return augment


def train_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0,
                  augment: bool = True):
    """Train a teacher network (default :data:`TEACHER`, Keras 3) on ``(x, y)``. With ``augment`` every image is
    flipped and shifted at random in every epoch (:func:`augmenter`, in a ``tf.data`` pipeline), and the learning
    rate follows a cosine decay to 0 over the run (the last epochs settle instead of jumping about)::

        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size)
        data = data.map(augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        lr = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=epochs * len(data))
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(data, epochs=epochs)

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    if not augment:
        return models.train({**TEACHER, **(hp or {})}, x, y, epochs, batch_size=batch_size, seed=seed,
                            name=f"teacher_{seed}")
    tf, keras = quiet_import("tensorflow"), quiet_import("keras")
    set_seed(seed)
    model = models.build_model({**TEACHER, **(hp or {})}, compile=False, name=f"teacher_{seed}")
    data = tf.data.Dataset.from_tensor_slices((np.asarray(x), np.asarray(y))).shuffle(len(x), seed=seed)
    data = data.batch(batch_size).map(augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    lr = keras.optimizers.schedules.CosineDecay(models.get_hp(model)["learning_rate"], epochs * len(data))
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data, epochs=epochs, verbose=0, shuffle=False,  # the pipeline shuffles, anew in every epoch
              callbacks=[models.epoch_bar(model, epochs, f"teacher {seed}")])
    return model


class NotCached(LookupError):
    """Raised by :func:`cached_teacher` with ``cache_only=True`` when the recipe is in no cache."""


def cached_teacher(x, y, hp: dict | None = None, epochs: int = 5, batch_size: int = 128, seed: int = 0,
                   augment: bool = True, cache_only: bool = False):
    """:func:`train_teacher`, from the model cache (your own, or a room's prepared by ``make workshop``) when the
    same recipe was trained before. ``cache_only``: raise :class:`NotCached` instead of training."""
    hp = {**TEACHER, **(hp or {})}

    def train():
        if cache_only:
            raise NotCached(f"no cached teacher for {hp}, {epochs} epochs, seed {seed}")
        return train_teacher(x, y, hp, epochs, batch_size=batch_size, seed=seed, augment=augment)

    recipe = {"hp": hp, "epochs": epochs, "seed": seed, "batch_size": batch_size}
    if augment:
        recipe.update(augment=AUGMENT, schedule="cosine decay")
    return cache.cached_model("teacher", train, x, y, **recipe)


def prepared_teachers(ds, size: dict, hp: dict | None = None) -> tuple[list, str]:
    """The ``N_TEACHERS`` teachers of a size table (:func:`sizes`), trained on the first ``N_TEACHER`` training
    images, and a sentence that says which recipe they are. With ``QUICK_EPOCHS`` > 0 (lesson size) the full
    recipe is taken only from a cache (a room prepared by ``make workshop``, or an earlier run); otherwise
    teachers of ``QUICK_EPOCHS`` epochs are trained (and cached) instead, and the sentence says so.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    n, full, quick = size["N_TEACHER"], size["TEACHER_EPOCHS"], size["QUICK_EPOCHS"]
    x, y = ds.x_train[:n], ds.y_train[:n]
    seeds = range(size["N_TEACHERS"])
    what = f"{size['N_TEACHERS']} teacher(s) on {n:,} augmented images"
    if quick:
        try:
            teachers = [cached_teacher(x, y, hp, full, seed=s, cache_only=True) for s in seeds]
            return teachers, f"{what}, {full} epochs each (the full recipe, from the cache a room prepared)"
        except NotCached:
            teachers = [cached_teacher(x, y, hp, quick, seed=s) for s in seeds]
            return teachers, (f"{what}, {quick} epoch(s) each: QUICKER teachers, since no cache holds the full "
                              f"recipe ({full} epochs; `make workshop` prepares it, or pass SIZE='full')")
    return [cached_teacher(x, y, hp, full, seed=s) for s in seeds], f"{what}, {full} epochs each"


def room_teacher(ds, size: dict, hp: dict, source: str) -> tuple[dict, str]:
    """The teacher's hyperparameters to train from, given your weeks' choice ``hp`` (from ``source``, as
    :func:`teacher_hp` returns them): ``hp`` itself, except in a lesson-size run (``QUICK_EPOCHS`` > 0) whose cache
    holds the full recipe of the course's fixed :data:`TEACHER` but not of ``hp``. That is a room that
    ``make workshop`` prepared before your weeks chose: its strong teacher beats a quicker one of your choice, so
    :data:`TEACHER` is returned, with a source that says why.

    Lesson: 07_distillation_ensembles § 1 · Teacher and student.
    """
    if not size["QUICK_EPOCHS"] or hp == TEACHER:
        return hp, source
    n, full = size["N_TEACHER"], size["TEACHER_EPOCHS"]
    x, y = ds.x_train[:n], ds.y_train[:n]

    def prepared(h):
        try:
            cached_teacher(x, y, h, full, seed=0, cache_only=True)
            return True
        except NotCached:
            return False

    if prepared(hp) or not prepared(TEACHER):
        return hp, source
    return TEACHER, (f"mlcourse.distillation.TEACHER, the room's prepared teacher ({full} epochs): your weeks' "
                     f"choice ({source}) was made after the room was prepared, and only a quicker teacher of it "
                     "could be trained in a lesson")


def sweep(x, y, logits, x_val, y_val, temperatures=(1, 2, 4, 8), alphas=(0.5, 0.9), epochs: int = 5,
          student_hp: dict | None = None, seed: int = 0, transfer=None, teacher=None) -> pd.DataFrame:
    """Validation accuracy of a distilled student for every temperature x alpha (one row each).

    Pick T and alpha on *validation* data held out of the training set, never on the test set: the test
    accuracy of the chosen pair would otherwise be optimistic. ``transfer`` is passed on to :func:`distill`.
    With ``teacher`` (the model that gave ``logits``) the students go through the model cache
    (:func:`cached_distill`): a room prepared by ``make workshop`` has them all; one line says how many were
    loaded and how many trained.

    Lesson: 07_distillation_ensembles § 3 · Temperature and alpha, chosen on validation data.
    """
    from tqdm.auto import tqdm

    rows, before = [], len(cache.entries())
    grid = [(t, a) for t in temperatures for a in alphas]
    for t, a in tqdm(grid, desc="T x alpha (students)"):
        kw = dict(student_hp=student_hp, temperature=t, alpha=a, epochs=epochs, seed=seed)
        s = distill(x, y, logits, transfer=transfer, **kw) if teacher is None else \
            cached_distill(teacher, x, y, logits, transfer=transfer, **kw)
        rows.append({"temperature": t, "alpha": a, "val accuracy": accuracy(s, x_val, y_val)})
    if teacher is not None:
        trained = len(cache.entries()) - before
        print(f"T x alpha: {len(grid) - trained} of {len(grid)} students loaded from the workshop cache"
              + (f", {trained} trained and cached in {cache.cache_dir()}" if trained else ""))
    return pd.DataFrame(rows)


#: The students of :func:`seed_study`, in the order trained; the study's columns are these names.
STUDY = ("scratch", "distilled", "hard labels + transfer", "distilled + transfer", "distilled + transfer, T = 1")
_GAPS = {"distilled": "gap closed", "distilled + transfer": "gap closed + transfer",
         "hard labels + transfer": "gap closed (hard labels + transfer)"}


def _study_recipes(x, y, logits, transfer, student_hp, epochs, seed, t, a, t_lab, a_lab) -> dict:
    """The five students of one seed of :func:`seed_study`, as functions that train them (equal steps)."""
    lab_epochs = equal_steps(epochs, len(x), len(transfer[0]))
    kw = dict(student_hp=student_hp, seed=seed)
    return {
        "scratch": lambda: distill(x, y, logits, alpha=0.0, epochs=lab_epochs, **kw),
        "distilled": lambda: distill(x, y, logits, temperature=t_lab, alpha=a_lab, epochs=lab_epochs, **kw),
        "hard labels + transfer": lambda: hard_label_control(x, y, logits, transfer, epochs=epochs, **kw),
        "distilled + transfer": lambda: distill(x, y, logits, temperature=t, alpha=a, epochs=epochs,
                                                transfer=transfer, **kw),
        "distilled + transfer, T = 1": lambda: distill(x, y, logits, temperature=1.0, alpha=a, epochs=epochs,
                                                       transfer=transfer, **kw),
    }


def seed_study(ds, teacher, x_test, y_test, seeds=(0, 1, 2), n_labelled: int = 1_000, n_val: int = 2_000,
               n_transfer: int = 5_000, epochs: int = 5, temperature: float = 4.0, alpha: float = 0.9,
               temperature_labelled: float | None = None, alpha_labelled: float | None = None,
               student_hp: dict | None = None, keep: dict | None = None) -> pd.DataFrame:
    """For each seed, a fresh draw of ``n_labelled`` labelled and ``n_transfer`` unlabelled images (:func:`split`,
    as the sweep drew them for that seed) and five students of :data:`STUDY`, all with the same number of steps:

    * ``scratch``: the labelled images alone; ``distilled``: the same with the teacher's soft targets
      (``temperature_labelled`` / ``alpha_labelled``, default ``temperature`` / ``alpha``);
    * ``hard labels + transfer``: the **control**, labelled + transfer images with the teacher's argmax labels;
    * ``distilled + transfer``: the same images with the teacher's soft targets (``temperature`` / ``alpha``);
    * ``distilled + transfer, T = 1``: as above at T = 1, where the soft targets are nearly the argmax.

    The teacher is the same for every seed. ``keep`` (a dict) receives the first seed's students by name.
    Returns one row per seed: test accuracies, the gaps closed, and the seconds each student took to train.

    Lesson: 07_distillation_ensembles § 4 · The headline: soft targets or hard pseudo-labels?
    """
    from tqdm.auto import tqdm

    t_lab = temperature if temperature_labelled is None else temperature_labelled
    a_lab = alpha if alpha_labelled is None else alpha_labelled
    t_acc = accuracy(teacher, x_test, y_test)
    rows = []
    bar = tqdm(total=len(seeds) * len(STUDY), desc="seed study (students)")
    for i, seed in enumerate(seeds):
        (x, y), _, xu = split(ds, n_labelled, n_val, n_transfer, seed=seed)
        logits, transfer = teacher_logits(teacher, x), (xu, teacher_logits(teacher, xu))
        row, seconds = {"seed": seed, "teacher": t_acc}, {}
        for name, train in _study_recipes(x, y, logits, transfer, student_hp, epochs, seed, temperature, alpha,
                                          t_lab, a_lab).items():
            bar.set_postfix_str(f"seed {seed}: {name}")
            t0 = time.perf_counter()
            student = train()
            seconds[f"{name} s"] = time.perf_counter() - t0
            row[name] = accuracy(student, x_test, y_test)
            if name in _GAPS:
                row[_GAPS[name]] = gap_closed(row[name], row["scratch"], t_acc)
            if keep is not None and i == 0:
                keep[name] = student
            bar.update()
        rows.append({**row, **seconds})
    bar.close()
    return pd.DataFrame(rows)


def verdict(study: pd.DataFrame, a: str, b: str) -> str:
    """A sentence built from a :func:`seed_study` table: does column ``a`` beat column ``b`` (test accuracy), by
    how many points on average, in how many seeds, and does the 95 % t-interval of the per-seed differences
    exclude 0 (:func:`mlcourse.stats.difference_verdict`)? With one seed it says that no spread was measured.

    Lesson: 07_distillation_ensembles § 4 · The headline: soft targets or hard pseudo-labels?
    """
    for c in (a, b):
        if c not in study.columns:
            raise KeyError(f"{c!r} is not a column of the study; columns: {list(study.columns)}.")
    return stats.difference_verdict((study[a] - study[b]).to_numpy(dtype=float), a, b)


def warm_cache(ds, size: str, seed: int = 0) -> None:
    """Train and cache what 07 trains that does not depend on a learner's exercise (``make workshop``), at
    ``size``'s defaults (:data:`SIZES`): the teachers, with the full recipe, of the teacher 07 would pick (your
    own earlier weeks' choice when there is one), and the students of both T x alpha sweeps (seed ``seed``'s
    split). At smoke size the fixed :data:`TEACHER` is prepared as well when a choice was found (cheap there; a
    test may run the notebook with an empty work folder)."""
    sz = sizes(size)
    hp, _ = teacher_hp(work_dir(size))
    full_recipe = {**sz, "QUICK_EPOCHS": 0}
    for h in [hp] + ([TEACHER] if size == "smoke" and hp != TEACHER else []):
        teacher = prepared_teachers(ds, full_recipe, h)[0][0]
        (x, y), (x_val, y_val), xu = split(ds, sz["N_LABELLED"], sz["N_VAL"], sz["N_TRANSFER"], seed=seed)
        logits, transfer = teacher_logits(teacher, x), (xu, teacher_logits(teacher, xu))
        grid = dict(temperatures=sz["TEMPERATURES"], alphas=sz["ALPHAS"], seed=seed, teacher=teacher)
        sweep(x, y, logits, x_val, y_val, epochs=equal_steps(sz["STUDENT_EPOCHS"], len(x), len(xu)), **grid)
        sweep(x, y, logits, x_val, y_val, epochs=sz["STUDENT_EPOCHS"], transfer=transfer, **grid)

# ------------------------------------------------------------------------------------------------ headlines
#: The public figures 07's headlines are judged against.
#: The report's figure of this week: student from scratch, distilled students and teacher, one line per seed.
FIGURES = (Figure("distillation over seeds (test accuracy)", "distillation.png",
                  "Distillation: student from scratch, distilled student, teacher", "Distillation, per seed",
                  "series", series=("scratch", "distilled", "distilled + transfer", "teacher"), label="seed",
                  label_prefix="seed ", xlabel="model", ylabel="test accuracy"),)

REFERENCES = {
    "knowledge distillation": Reference("91 % of the gap (Hinton et al. 2015, MNIST errors: small net 146, distilled "
                                        "74, teacher 67)", (146 - 74) / (146 - 67), " pp", 100),
}


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``07_distillation_ensembles`` recorded (see
    :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    gap = h.value("distillation gap closed (mean over seeds)", dict)
    if gap and gap.get("gap closed") is not None:
        how = ""
        if gap.get("transfer"):
            how = f" with a transfer set of {gap['transfer']:,} unlabelled images"
            if gap.get("gap closed (labelled only)") is not None:
                how += f" ({gap['gap closed (labelled only)']:.0%} on the labelled images alone)"
        if gap.get("gap closed (hard-label control)") is not None:
            how += f"; hard-label control {gap['gap closed (hard-label control)']:.0%}"
        ref = REFERENCES["knowledge distillation"]
        h.add("distillation: share of the teacher-student gap closed",
              f"{gap['gap closed']:.0%}{how}, mean of {gap['seeds']} seed(s) (teacher {gap['teacher']:.4f}, "
              f"scratch {gap['scratch']:.4f}, distilled {gap['distilled']:.4f})",
              Reference(ref.figure + " (a different set-up: MNIST, a large net, no transfer set)", ref.target,
                        ref.unit, ref.scale), gap["gap closed"])
    ens = h.rows("ensembles on Fashion-MNIST (40 PCA components)")
    if ens:
        best = max(ens, key=lambda r: r["test accuracy"])
        h.add("best scikit-learn ensemble",
              f"{best['model']}: {best['test accuracy']:.4f} (train {best['train time (s)']:.1f} s)")
    h.add_rows("Distillers: same teacher, student, data and steps (test accuracy)",
               "Distillers: same teacher, student, data and steps",
               lambda r: f"{r['distiller']} {r['test accuracy']:.4f}")
    return h.out
