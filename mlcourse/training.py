"""Training a model well: batch norm (and folding it away), optimizers, learning rates, batch size, under- and
over-fitting, and debugging a network that does not train.

The tested versions of what the notebook writes in plain sight:

* :func:`fold_batchnorm` folds a BatchNormalization into the weights of the Conv2D / Dense before it, and
  :func:`fold_bn_model` does it to a whole Sequential model (same outputs, fewer layers);
  :func:`count_graph_ops` counts the operations of a model's inference graph;
* :class:`LRRangeTest` / :func:`lr_range_test` raise the learning rate geometrically, step by step, and record
  each step's own loss; :func:`suggest_lr` picks a learning rate from that curve;
* :func:`diagnose_fit` reads under- or over-fitting from train and validation loss curves;
  :func:`remedy_verdicts` says, from per-seed differences, which remedies helped;
* the debugging diagnostics: :func:`initial_loss` (against ``log(n_classes)``), :func:`overfit_one_batch`,
  :func:`gradient_norms` (``tf.GradientTape``, per layer);
* :func:`train_broken` (a training function with planted bugs: the subject of Exercise 1.4) and
  :func:`train_fixed` (the course's fix);
* :data:`SIZES`: the notebook's sizes (smoke, lesson, full), read by its parameters cell with
  :func:`mlcourse.settings.pick_sizes`.

Taught in ``solutions/01_training.ipynb``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlcourse.headlines import Headlines
from mlcourse.session import quiet_import

__all__ = ["headlines", "SIZES", "fold_batchnorm", "fold_bn_model", "count_graph_ops", "LRRangeTest", "lr_range_test",
           "geometric_lrs", "suggest_lr", "diagnose_fit", "remedy_verdicts", "initial_loss", "overfit_one_batch",
           "gradient_norms", "train_broken", "train_fixed"]

#: 01_training's sizes (read with ``settings.pick_sizes(training.SIZES, cfg.size, given)``): ``N_TRAIN`` /
#: ``N_VAL`` Fashion-MNIST training / validation images (both from the training set), ``N_BN`` training images of
#: the batch-norm networks, ``EPOCHS`` the budget of the optimizer, schedule and batch-size comparisons,
#: ``BN_EPOCHS`` the batch-norm networks', ``SEEDS`` the seeds every comparison is repeated on, ``REMEDY_SEEDS``
#: those of the remedies table, ``LR_STEPS`` steps of the learning-rate range test, ``BATCH_SIZES`` the batch
#: sizes compared, ``N_SMALL`` the small training set of the over-fitting case, ``OVERFIT_EPOCHS`` /
#: ``UNDERFIT_EPOCHS`` the two cases' budgets, ``DEBUG_EPOCHS`` the planted bugs' training, ``ONE_BATCH_STEPS`` the
#: steps of "overfit one batch", ``TIMING_ROUNDS`` the interleaved timing rounds, ``EAGER`` whether every
#: ``tf.function`` (Keras' train steps included) runs eagerly: at smoke size, where each model trains for a few
#: steps only, tracing a step costs more than running it, so smoke runs eagerly. Every size runs every
#: variant of every comparison.
SIZES = {
    "smoke": {"N_TRAIN": 256, "N_VAL": 128, "N_BN": 256, "EPOCHS": 1, "BN_EPOCHS": 1, "SEEDS": (0,),
              "REMEDY_SEEDS": (0,), "LR_STEPS": 20, "BATCH_SIZES": (32, 128), "N_SMALL": 64, "OVERFIT_EPOCHS": 2,
              "UNDERFIT_EPOCHS": 1, "DEBUG_EPOCHS": 1, "ONE_BATCH_STEPS": 40, "TIMING_ROUNDS": 3, "EAGER": True},
    "lesson": {"N_TRAIN": 4000, "N_VAL": 2000, "N_BN": 4000, "EPOCHS": 4, "BN_EPOCHS": 3, "SEEDS": (0, 1, 2),
               "REMEDY_SEEDS": (0, 1, 2), "LR_STEPS": 200, "BATCH_SIZES": (32, 128, 512), "N_SMALL": 500,
               "OVERFIT_EPOCHS": 20, "UNDERFIT_EPOCHS": 6, "DEBUG_EPOCHS": 3, "ONE_BATCH_STEPS": 250,
               "TIMING_ROUNDS": 7, "EAGER": False},
    "full": {"N_TRAIN": 8000, "N_VAL": 4000, "N_BN": 8000, "EPOCHS": 5, "BN_EPOCHS": 3, "SEEDS": (0, 1, 2, 3),
             "REMEDY_SEEDS": (0, 1, 2, 3), "LR_STEPS": 300, "BATCH_SIZES": (32, 128, 512), "N_SMALL": 500,
             "OVERFIT_EPOCHS": 20, "UNDERFIT_EPOCHS": 8, "DEBUG_EPOCHS": 4, "ONE_BATCH_STEPS": 250,
             "TIMING_ROUNDS": 9, "EAGER": False},
}


# ------------------------------------------------------------------------------------------------- batch norm
def fold_batchnorm(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon: float = 1e-3):
    """Fold an inference-time BatchNormalization into the layer before it: returns ``(kernel, bias)`` such that
    ``conv(x, kernel) + bias == bn(conv(x, kernel_in) + bias_in)``.

    BN computes ``gamma * (z - mean) / sqrt(var + eps) + beta`` per output channel, so with
    ``s = gamma / sqrt(var + eps)`` the folded kernel is ``kernel * s`` (over the **last** axis, the output
    channels of a Conv2D ``(kh, kw, in, out)`` or Dense ``(in, out)`` kernel) and the folded bias
    ``(bias - mean) * s + beta``. ``bias`` None means the layer had none (``use_bias=False``). ``gamma`` /
    ``beta`` None mean BN had ``scale=False`` / ``center=False``.

    Lesson: 01_training § Folding BN into the convolution before it.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    out = kernel.shape[-1]
    bias = np.zeros(out) if bias is None else np.asarray(bias, dtype=np.float64)
    gamma = np.ones(out) if gamma is None else np.asarray(gamma, dtype=np.float64)
    beta = np.zeros(out) if beta is None else np.asarray(beta, dtype=np.float64)
    mean, var = np.asarray(moving_mean, dtype=np.float64), np.asarray(moving_variance, dtype=np.float64)
    for name, v in (("bias", bias), ("gamma", gamma), ("beta", beta), ("moving_mean", mean),
                    ("moving_variance", var)):
        if v.shape != (out,):
            raise ValueError(f"{name} has shape {v.shape}; it must have one value per output channel ({out},).")
    scale = gamma / np.sqrt(var + epsilon)
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def _bn_weights(bn):
    """``(gamma, beta, mean, var)`` of a BatchNormalization layer (None for a disabled scale or centre)."""
    w = list(bn.get_weights())
    gamma = w.pop(0) if bn.scale else None
    beta = w.pop(0) if bn.center else None
    return gamma, beta, w[0], w[1]


def fold_bn_model(model):
    """A new ``keras.Sequential`` with every BatchNormalization that follows a Conv2D or Dense folded into it
    (:func:`fold_batchnorm`); every other layer is copied with its weights. Its outputs equal ``model``'s at
    inference (``training=False``) up to float rounding. A BatchNormalization after anything else is a
    ValueError that names it.

    Lesson: 01_training § Folding BN into the convolution before it.
    """
    keras = quiet_import("keras")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    new, weights, i = [keras.Input(model.input_shape[1:])], [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(f"{layer.name} follows {layers[i - 1].name if i else 'the input'}, not a Conv2D or "
                             "Dense: only a BatchNormalization right after one can be folded.")
        config = layer.get_config()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and \
                isinstance(nxt, keras.layers.BatchNormalization):
            if nxt.axis not in (-1, [-1], len(layer.output.shape) - 1, [len(layer.output.shape) - 1]):
                raise ValueError(f"{nxt.name} normalises axis {nxt.axis}, not the channels: cannot fold it.")
            w = layer.get_weights()
            kernel, bias = fold_batchnorm(w[0], w[1] if layer.use_bias else None, *_bn_weights(nxt),
                                          epsilon=nxt.epsilon)
            config.update(use_bias=True, name=layer.name + "_folded")
            new.append(type(layer).from_config(config))
            weights.append([kernel, bias])
            i += 2
            continue
        new.append(type(layer).from_config(config))
        weights.append(layer.get_weights())
        i += 1
    folded = keras.Sequential(new, name=f"{model.name}_folded")
    for layer, w in zip(folded.layers, weights):
        layer.set_weights(w)
    return folded


def count_graph_ops(model, input_shape=None) -> int:
    """The number of operations in the traced inference graph of ``model`` (``training=False``), one batch of
    ``input_shape`` (default: the model's own, batch 1).

    Lesson: 01_training § Folding BN into the convolution before it.
    """
    tf = quiet_import("tensorflow")
    shape = tuple(input_shape) if input_shape is not None else (1,) + tuple(model.input_shape[1:])
    fn = tf.function(lambda x: model(x, training=False))
    return len(fn.get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph.get_operations())


# --------------------------------------------------------------------------------------- learning-rate range test
def geometric_lrs(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` learning rates from ``start_lr`` to ``end_lr``, each a constant factor above the one before."""
    if not (start_lr > 0 and end_lr > start_lr and steps >= 2):
        raise ValueError(f"need 0 < start_lr < end_lr and steps >= 2; got {start_lr}, {end_lr}, {steps}.")
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))


def _lr_callback_base():
    return quiet_import("keras").callbacks.Callback


class LRRangeTest:
    """The learning-rate range test as a Keras callback, for ``model.fit(..., epochs=1, steps_per_epoch=steps)``.

    Before step ``i`` it sets ``model.optimizer.learning_rate`` to ``lrs[i]`` (geometric, :func:`geometric_lrs`);
    after it, it records that step's **own** loss. Keras 3's ``logs["loss"]`` in ``on_train_batch_end`` is the
    running mean since the epoch began, so the step's loss is recovered from two successive means
    (``(i + 1) * mean_i - i * mean_(i-1)``). It stops training once the loss is not finite or exceeds
    ``stop_factor`` times the best loss so far (divergence). ``lrs_used`` and ``losses`` hold what was run.

    Built lazily (``LRRangeTest(...)`` returns an instance of a ``keras.callbacks.Callback`` subclass), so that
    importing this module does not import Keras.

    Lesson: 01_training § The learning-rate range test.
    """

    def __new__(cls, start_lr: float = 1e-5, end_lr: float = 1.0, steps: int = 100, stop_factor: float = 4.0):
        base = _lr_callback_base()

        class _LRRangeTest(base):
            def __init__(self):
                super().__init__()
                self.lrs = geometric_lrs(start_lr, end_lr, steps)
                self.lrs_used, self.losses, self._mean = [], [], 0.0

            def on_train_batch_begin(self, batch, logs=None):
                self.model.optimizer.learning_rate.assign(float(self.lrs[batch]))

            def on_train_batch_end(self, batch, logs=None):
                mean = float(logs["loss"])
                loss = (batch + 1) * mean - batch * self._mean  # this step's loss, from the running means
                self._mean = mean
                self.lrs_used.append(float(self.lrs[batch]))
                self.losses.append(loss)
                best = min(self.losses)
                if not math.isfinite(loss) or loss > stop_factor * best or batch + 1 >= len(self.lrs):
                    self.model.stop_training = True

        return _LRRangeTest()


def lr_range_test(model, x, y, start_lr: float = 1e-5, end_lr: float = 1.0, steps: int = 100,
                  batch_size: int = 32, seed: int = 0, stop_factor: float = 4.0) -> pd.DataFrame:
    """Run the range test on a compiled ``model`` (whose weights it changes: pass a fresh one) and return
    ``DataFrame(lr, loss)`` with one row per step run. The batches are drawn from ``(x, y)`` in a shuffled
    order (with repetition when ``steps * batch_size`` exceeds ``len(x)``); the loop is the one a learner
    writes::

        for lr, (xb, yb) in zip(lrs, batches):
            model.optimizer.learning_rate.assign(lr)
            loss = float(model.train_on_batch(xb, yb)[0])   # this batch's loss (not a running mean)

    Lesson: 01_training § The learning-rate range test.
    """
    lrs = geometric_lrs(start_lr, end_lr, steps)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(steps * batch_size // len(x) + 1)])
    rows, best = [], math.inf
    for i, lr in enumerate(lrs):
        idx = order[i * batch_size:(i + 1) * batch_size]
        model.optimizer.learning_rate.assign(float(lr))
        out = model.train_on_batch(x[idx], y[idx])
        loss = float(np.ravel(out)[0])
        rows.append({"lr": float(lr), "loss": loss})
        best = min(best, loss)
        if not math.isfinite(loss) or loss > stop_factor * best:
            break
    return pd.DataFrame(rows)


def suggest_lr(table: pd.DataFrame, smooth: float = 0.9, divide: float = 10.0) -> float:
    """The learning rate the range test suggests: where the smoothed loss (an exponential moving average with
    weight ``smooth``, bias-corrected) is lowest, divided by ``divide`` (the loss is lowest just before it
    diverges; a tenth of that is a safe rate, Smith 2017).

    Lesson: 01_training § The learning-rate range test.
    """
    loss = np.asarray(table["loss"], dtype=float)
    if len(loss) < 2:
        raise ValueError("the range test ran fewer than 2 steps: nothing to read.")
    loss = np.where(np.isfinite(loss), loss, np.inf)
    avg, ema = 0.0, []
    for i, v in enumerate(loss):
        avg = smooth * avg + (1 - smooth) * v
        ema.append(avg / (1 - smooth ** (i + 1)))
    return float(np.asarray(table["lr"])[int(np.nanargmin(ema))] / divide)


# ---------------------------------------------------------------------------------- under- and over-fitting
def diagnose_fit(train_loss, val_loss, high_loss: float = 0.5, rise: float = 0.1, gap: float = 0.25) -> str:
    """Read the learning curves of one run (per-epoch train and validation losses):

    * ``"over-fitting"`` when the validation loss ended more than ``rise`` (relative) above its minimum **and**
      more than ``gap`` (relative) above the final training loss: the model learns the training set, not the task;
    * ``"under-fitting"`` when not, and the final training loss is still above ``high_loss``: the model cannot
      even fit the training set (10-class Fashion-MNIST: a model that fits reaches 0.3 or less);
    * ``"a good fit"`` otherwise.
    The thresholds are rules of thumb for cross-entropy on this data, printed with the verdicts.

    Lesson: 01_training § 3 · Under-fitting and over-fitting, diagnosed from learning curves, and the remedies
    measured.
    """
    tr, va = np.asarray(train_loss, dtype=float), np.asarray(val_loss, dtype=float)
    if len(tr) == 0 or len(tr) != len(va):
        raise ValueError(f"give one train and one validation loss per epoch; got {len(tr)} and {len(va)}.")
    if va[-1] > (1 + rise) * va.min() and va[-1] > (1 + gap) * tr[-1]:
        return "over-fitting"
    if tr[-1] > high_loss:
        return "under-fitting"
    return "a good fit"


def remedy_verdicts(table: pd.DataFrame, baseline: str, metric: str = "val_accuracy",
                    higher_is_better: bool = True) -> pd.DataFrame:
    """One row per remedy of ``table`` (columns ``remedy``, ``seed``, ``metric``, ``params``, ``train_s``): its
    mean ``metric``, the mean paired difference to ``baseline`` (same seed) with its 95 % t-interval, and a
    ``verdict``: ``"helped"`` / ``"hurt"`` when the interval excludes 0, ``"within the noise"`` when it does not,
    ``"one seed: helped?"`` / ``"one seed: hurt?"`` when there is a single seed (no spread measured).
    ``higher_is_better=False`` for a metric such as a loss: a negative difference then helped.

    Lesson: 01_training § 3 · Under-fitting and over-fitting, diagnosed from learning curves, and the remedies
    measured.
    """
    from mlcourse import stats

    base = table[table.remedy == baseline].set_index("seed")[metric]
    if base.empty:
        raise ValueError(f"no rows of the baseline {baseline!r}; remedies: {sorted(table.remedy.unique())}.")
    rows = []
    for name, part in table.groupby("remedy", sort=False):
        part = part.set_index("seed")
        row = {"remedy": name, metric: float(part[metric].mean()), "params": int(part["params"].iloc[0]),
               "train_s": float(part["train_s"].mean())}
        if name == baseline:
            row.update(diff=0.0, lo=float("nan"), hi=float("nan"), verdict="baseline")
        else:
            common = part.index.intersection(base.index)
            if len(common) == 0:
                raise ValueError(f"{name!r} shares no seed with the baseline {baseline!r}.")
            iv = stats.seed_interval((part.loc[common, metric] - base.loc[common]).to_numpy())
            gain = iv.mean if higher_is_better else -iv.mean
            if iv.n < 2:
                verdict = ("one seed: helped?" if gain > 0 else "one seed: hurt?" if gain < 0
                           else "one seed: no change")
            elif iv.excludes_zero:
                verdict = "helped" if gain > 0 else "hurt"
            else:
                verdict = "within the noise"
            row.update(diff=iv.mean, lo=iv.lo, hi=iv.hi, verdict=verdict)
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- debugging
def initial_loss(model, x, y, from_logits: bool = False) -> float:
    """The mean sparse cross-entropy of ``model`` on ``(x, y)`` as it is (before training): a healthy classifier
    over ``k`` balanced classes starts near ``log(k)`` (2.30 for 10), since it predicts about ``1/k`` each."""
    keras = quiet_import("keras")
    out = model(np.asarray(x), training=False)
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        np.asarray(y), out, from_logits=from_logits)))


def overfit_one_batch(model, x, y, steps: int = 100, target: float = 0.05) -> tuple[bool, float]:
    """Train the compiled ``model`` on the one small batch ``(x, y)`` (e.g. 32 examples) for up to ``steps``
    steps; ``(True, loss)`` as soon as its loss on that batch is below ``target``, else ``(False, last loss)``.

    A healthy network memorises a handful of examples, whatever their labels; one that cannot has a bug in the
    model, the loss or the optimisation (not in the data).

    Lesson: 01_training § 4 · Debugging a network that does not train.
    """
    loss = math.inf
    for _ in range(steps):
        loss = float(np.ravel(model.train_on_batch(x, y))[0])
        if loss < target or not math.isfinite(loss):
            break
    return bool(loss < target), loss


def gradient_norms(model, x, y, loss_fn=None) -> pd.DataFrame:
    """The L2 norm of the loss gradient of each trainable weight of ``model`` on ``(x, y)`` (``tf.GradientTape``),
    one row per weight: ``layer``, ``weight``, ``norm``. A layer whose norms are 0 learns nothing (dead ReLUs);
    norms that grow by orders of magnitude from layer to layer explode. ``loss_fn`` default: sparse cross-entropy
    on probabilities.

    Lesson: 01_training § 4 · Debugging a network that does not train.
    """
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    loss_fn = loss_fn or keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(loss_fn(np.asarray(y), model(np.asarray(x), training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    rows = []
    for v, g in zip(model.trainable_variables, grads):
        path = getattr(v, "path", v.name)
        layer, _, weight = path.rpartition("/")
        rows.append({"layer": layer or path, "weight": weight or path,
                     "norm": 0.0 if g is None else float(tf.norm(g))})
    return pd.DataFrame(rows)


def _mlp(keras, scale: bool, softmax: bool):
    L = keras.layers
    layers = [keras.Input((28, 28))] + ([L.Rescaling(1 / 255)] if scale else [])
    layers += [L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax" if softmax else None)]
    return keras.Sequential(layers)


def train_broken(x_train, y_train, x_val, y_val, epochs: int = 3, seed: int = 0):
    """A training function with **two planted bugs** (Exercise 1.4: find them, write ``train_fixed``)::

        model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(),
                                  layers.Dense(128, activation="relu"), layers.Dense(10)])
        model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train, epochs=epochs, batch_size=64, validation_data=(x_val, y_val))

    ``x_*`` are raw uint8 images (0..255). Returns ``(model, history)``.

    Lesson: 01_training § Find and fix the planted bugs.
    """
    keras = quiet_import("keras")
    keras.utils.set_random_seed(seed)
    model = _mlp(keras, scale=False, softmax=False)
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=64, validation_data=(x_val, y_val), verbose=0)
    return model, history


def train_fixed(x_train, y_train, x_val, y_val, epochs: int = 3, seed: int = 0):
    """:func:`train_broken` with both bugs fixed: the model rescales its raw 0..255 inputs itself
    (``Rescaling(1/255)``, so what is deployed takes raw images), and the loss reads its outputs for what they
    are (here a softmax layer and ``from_logits=False``; logits with ``from_logits=True`` is the other right
    pair). Returns ``(model, history)``."""
    keras = quiet_import("keras")
    keras.utils.set_random_seed(seed)
    model = _mlp(keras, scale=True, softmax=True)
    model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=64, validation_data=(x_val, y_val), verbose=0)
    return model, history


# ------------------------------------------------------------------------------------------------ headlines
def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``01_training`` recorded (see :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    for case, sentence in (h.value("batch norm: verdicts", dict) or {}).items():
        h.add(f"batch norm ({case}): validation accuracy with vs without", str(sentence))
    diff, latency = h.value("batch norm folded: max output difference", (int, float)), h.value(
        "batch norm folded: latency verdict", str)
    if diff is not None:
        h.add("batch norm folded into the layer before it (deployment)",
              f"largest output difference {diff:.1e}" + (f"; {latency}" if latency else ""))
    best = h.value("optimizers: best vs SGD", str)
    if best:
        h.add("optimizers on one budget: the best against plain SGD", best)
    for case, sentence in (h.value("schedule vs constant LR: verdicts", dict) or {}).items():
        h.add(f"cosine schedule vs constant learning rate ({case})", str(sentence))
    h.add_dict("the linear scaling rule at a large batch", "linear scaling rule",
               lambda r: f"{r['scaled vs same LR at the large batch']}; 8x beyond the rule: "
               f"{'unstable' if r['8x beyond the rule unstable'] else 'stable'}")
    for case, verdicts in (h.value("remedies: which helped", dict) or {}).items():
        if isinstance(verdicts, dict):
            helped = [r for r, v in verdicts.items() if str(v).endswith(("helped", "helped?"))]
            tried = [r for r, v in verdicts.items() if v != "baseline"]
            h.add(f"{case} remedies that lowered the validation loss beyond the seed noise",
                  f"{', '.join(helped) or 'none'} (of {len(tried)} tried: {', '.join(tried)})")
    h.add_dict("planted bugs found by a diagnostic (overfit one batch, initial loss, gradient norms, LR test)",
               "planted bugs: caught by a diagnostic",
               lambda r: f"{sum(bool(v) for k, v in r.items() if k != 'healthy run raises no alarm')} of "
               f"{len(r) - 1} bugs caught; the healthy run raises no alarm: "
               f"{'yes' if r['healthy run raises no alarm'] else 'no'}")
    return h.out
