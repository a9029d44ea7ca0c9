"""Checkers of the exercises of notebook 01 training (batch norm, learning rates, debugging a network)."""
from __future__ import annotations

import math

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_overfit_one_batch", "check_lr_range_test", "check_train_fixed", "check_fold_batchnorm"]


def _keras():
    from mlcourse.session import quiet_import

    return quiet_import("keras")


class _traced:
    """Run the checker's training traced (``tf.function``), whatever ``tf.config.run_functions_eagerly`` the
    notebook set: the checker's few hundred steps are faster traced. Restores the setting on exit."""

    def __enter__(self):
        from mlcourse.session import quiet_import

        self.tf = quiet_import("tensorflow")
        self.was = self.tf.config.functions_run_eagerly()
        self.tf.config.run_functions_eagerly(False)

    def __exit__(self, *exc):
        self.tf.config.run_functions_eagerly(self.was)
        return False


def _batch(n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8)).astype("float32")
    return x, rng.integers(0, 10, n)


def _tiny_mlp(keras, dead: bool = False, seed: int = 0):
    """A small MLP on (8, 8) inputs; ``dead=True`` plants dead ReLUs (every hidden bias at -50: no unit fires)."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.Constant(-50.0) if dead else "zeros"
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
                              keras.layers.Dense(64, activation="relu", bias_initializer=init),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


def _loss_on(keras, model, x, y) -> float:
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, model(x, training=False))))


def check_overfit_one_batch(fn) -> None:
    """Exercise 1.3: ``fn(model, x, y, steps) -> (ok, final_loss)``: train the compiled ``model`` on the one batch
    ``(x, y)`` for up to ``steps`` steps and say whether its loss went below 0.05. Given a healthy MLP (it gets
    there in about 30 steps) and one with dead ReLUs, 60 steps each.

    Lesson: 01_training § 4 · Debugging a network that does not train.
    """
    with _traced():
        _check_overfit_one_batch(fn)


def _check_overfit_one_batch(fn) -> None:
    keras = _keras()
    x, y = _batch()
    healthy = _tiny_mlp(keras)
    before = _loss_on(keras, healthy, x, y)
    out = fn(healthy, x, y, 60)
    assert isinstance(out, tuple) and len(out) == 2, (
        f"Return a tuple (ok, final_loss), e.g. (True, 0.012); got {type(out).__name__} {out!r}.")
    ok, loss = out
    assert isinstance(ok, (bool, np.bool_)), f"ok must be True or False, got {type(ok).__name__} {ok!r}."
    after = _loss_on(keras, healthy, x, y)
    assert after < before - 0.5, (
        f"The model you were given still has loss {after:.3f} on the batch (it had {before:.3f}): train *that* "
        "model (model.fit(x, y, ...) or model.train_on_batch(x, y) in a loop), not a new one or a copy.")
    assert ok, (
        f"A healthy MLP on 32 examples: your function says it cannot overfit them (final loss {float(loss):.3f}, "
        f"its loss on the batch now {after:.3f}). Train for the steps you are given and compare the loss "
        "of the last step with 0.05.")
    assert after < 0.1, (
        f"You report success, but the model's loss on the batch is {after:.3f}: train until the loss is below "
        "0.05 (report the loss of the last step, not of the first).")
    assert abs(float(loss) - after) < max(0.05, 0.5 * after), (
        f"You report a final loss of {float(loss):.4f}, but the model's loss on the batch is {after:.4f}: return "
        "the loss of the last training step (model.train_on_batch returns it; fit's history['loss'][-1]).")
    broken = _tiny_mlp(keras, dead=True)
    out = fn(broken, x, y, 60)
    assert not out[0], (
        f"A network whose ReLUs are all dead (hidden biases at -50: its output never changes) passed your check "
        f"with final loss {float(out[1]):.3f}. Decide from the loss: ok = final loss < 0.05.")
    assert float(out[1]) > 1.0, (
        f"The dead network's loss cannot fall, yet you report {float(out[1]):.3f}: report the loss itself.")
    _passed("1.3", "the healthy MLP memorised 32 examples (loss below 0.1); the dead-ReLU one was caught "
                   f"(its loss stays near log(10) = {math.log(10):.2f}).")


def _instrumented(keras, sentinel: float):
    """A compiled, eagerly run model whose optimizer records the learning rate of every update and whose loss
    records every step's own value: the ground truth a range test is compared with."""
    class RecordingSGD(keras.optimizers.SGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen_lrs = []

        def apply(self, grads, trainable_variables=None):
            self.seen_lrs.append(float(self.learning_rate))
            return super().apply(grads, trainable_variables)

    step_losses = []

    def loss(y_true, y_pred):
        v = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        step_losses.append(float(keras.ops.mean(v)))
        return v

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(RecordingSGD(sentinel), loss=loss, run_eagerly=True)
    return model, step_losses


def check_lr_range_test(fn) -> None:
    """Exercise 1.2: ``fn(model, x, y, start_lr, end_lr, steps, batch_size) -> (lrs, losses)``: before each step
    set ``model.optimizer.learning_rate`` to the next of a geometric sequence from ``start_lr`` to ``end_lr``,
    take one training step, record that step's own loss (stopping early on divergence is allowed).

    Lesson: 01_training § The learning-rate range test.
    """
    keras = _keras()
    rng = np.random.default_rng(1)
    x = rng.random((1280, 8, 8)).astype("float32")
    y = (x.reshape(1280, -1)[:, :10].argmax(1)).astype("int64")  # learnable labels
    sentinel, start, end, steps = 0.123456, 1e-4, 10.0, 40
    model, truth = _instrumented(keras, sentinel)
    out = fn(model, x, y, start, end, steps, 32)
    assert isinstance(out, tuple) and len(out) == 2, f"Return (lrs, losses), two lists; got {type(out).__name__}."
    lrs, losses = np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)
    seen = np.asarray(model.optimizer.seen_lrs if hasattr(model.optimizer, "seen_lrs") else [], dtype=float)
    assert hasattr(model.optimizer, "seen_lrs") and len(seen), (
        "The model given to you took no training step with its own optimizer: do not re-compile it (that "
        "replaces the optimizer); change model.optimizer.learning_rate and train with model.fit / train_on_batch.")
    assert lrs.ndim == 1 and len(lrs) == len(losses), (
        f"Return one learning rate per recorded loss: got {lrs.shape} learning rates and {losses.shape} losses.")
    assert 10 <= len(lrs) <= steps, (
        f"{len(lrs)} steps recorded; run up to steps={steps} (stopping early on divergence is fine, but after "
        "at least 10 steps).")
    assert np.isclose(lrs[0], start, rtol=1e-3), f"The first learning rate is {lrs[0]:.3g}; start at start_lr={start}."
    assert np.all(np.diff(lrs) > 0), "The learning rates must increase at every step."
    ratios = lrs[1:] / lrs[:-1]
    expected = (end / start) ** (1 / (steps - 1))
    if np.allclose(np.diff(lrs), np.diff(lrs)[0], rtol=1e-3) and not np.allclose(ratios, ratios[0], rtol=1e-3):
        raise AssertionError(
            "Your learning rates grow linearly (the same step added each time): a linear ramp spends almost all "
            "of its steps at large rates. Multiply by a constant factor instead: "
            "lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1)).")
    assert np.allclose(ratios, expected, rtol=1e-3), (
        f"Each learning rate must be the same factor above the one before (geometric, {expected:.4f} here, so that "
        f"step {steps} reaches end_lr={end}); your factors range from {ratios.min():.4f} to {ratios.max():.4f}.")
    if np.allclose(seen, sentinel, rtol=1e-4):
        raise AssertionError(
            f"The optimizer trained at its own learning rate ({sentinel}) at every step: your learning rates were "
            "recorded but never set. Before each step: model.optimizer.learning_rate.assign(lr).")
    assert len(seen) == len(lrs), (
        f"The optimizer took {len(seen)} steps but you recorded {len(lrs)}: one training step per learning rate, "
        "no more (no extra fit over the whole data).")
    if len(seen) > 1 and np.allclose(seen[1:], lrs[:-1], rtol=1e-4) and not np.allclose(seen, lrs, rtol=1e-4):
        raise AssertionError(
            "Each step trained at the learning rate you recorded for the step before: you set it after the step "
            "(on_train_batch_end). Set it before the step (on_train_batch_begin, or before train_on_batch).")
    assert np.allclose(seen, lrs, rtol=1e-4), (
        f"The learning rates the optimizer used {np.round(seen[:4], 6).tolist()}... differ from the ones you "
        f"recorded {np.round(lrs[:4], 6).tolist()}...: set model.optimizer.learning_rate to lrs[i] before step i.")
    truth = np.asarray(truth[:len(losses)], dtype=float)
    running = np.cumsum(truth) / np.arange(1, len(truth) + 1)
    if not np.allclose(losses, truth, rtol=1e-3, atol=1e-4) and np.allclose(losses, running, rtol=1e-3, atol=1e-4):
        raise AssertionError(
            "Your losses are the running mean since the epoch began: that is what Keras 3 passes in "
            "logs['loss'] of on_train_batch_end. Record each step's own loss: use model.train_on_batch (it returns "
            "that batch's loss), or recover it as (i + 1) * mean_i - i * mean_(i-1).")
    assert np.allclose(losses, truth, rtol=1e-3, atol=1e-4, equal_nan=True), (
        f"The losses you recorded {np.round(losses[:4], 4).tolist()}... are not the training steps' losses "
        f"{np.round(truth[:4], 4).tolist()}...: record the loss of each step, right after it.")
    _passed("1.2", f"{len(lrs)} geometric learning rates from {start:g} (x{expected:.3f} per step), each set on the "
                   "optimizer before its step, and each step's own loss recorded.")


def _scales_inputs(keras, model) -> bool:
    kinds = (keras.layers.Rescaling, keras.layers.Normalization, keras.layers.Lambda)
    return any(isinstance(layer, kinds) for layer in model.layers)


def _loss_from_logits(keras, model):
    """``from_logits`` of the model's compiled sparse cross-entropy (None for another loss)."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return False if "crossentropy" in loss else None
    if loss is None:
        return None
    if hasattr(loss, "get_config"):
        return bool(loss.get_config().get("from_logits", False))
    return None


def check_train_fixed(fn) -> None:
    """Exercise 1.4: ``fn(x_train, y_train, x_val, y_val, epochs) -> (model, history)``, ``training.train_broken``
    with its planted bugs fixed; the model must take raw 0..255 images. Run on 2,000 + 500 real images.

    Lesson: 01_training § Find and fix the planted bugs.
    """
    with _traced():
        _check_train_fixed(fn)


def _check_train_fixed(fn) -> None:
    from mlcourse import data

    keras = _keras()
    ds = data.load_fashion_mnist(source="embedded")
    x, y = data.stratified_subset(ds.x_train, ds.y_train, 2000, seed=0)
    xv, yv = data.stratified_subset(ds.x_test, ds.y_test, 500, seed=0)
    out = fn(x, y, xv, yv, 4)
    assert isinstance(out, tuple) and len(out) == 2, "Return (model, history), as train_broken does."
    model, _ = out
    assert isinstance(model, keras.Model), f"The first value must be the trained Keras model, got {type(model)}."
    probs = np.asarray(model(xv[:64], training=False))
    is_prob = bool(np.all(probs >= -1e-6) and np.allclose(probs.sum(1), 1, atol=1e-3))
    symptoms = []
    if not _scales_inputs(keras, model):
        symptoms.append("inputs not scaled: the model feeds raw 0..255 pixels to its first Dense layer (an initial "
                        "loss far above log(10) = 2.30). Put keras.layers.Rescaling(1 / 255) first in the model, so "
                        "that it takes raw images as deployed")
    from_logits = _loss_from_logits(keras, model)
    if from_logits is None:
        symptoms.append(f"the loss {getattr(model, 'loss', None)!r} is not a sparse categorical cross-entropy, yet "
                        "the labels are integers 0..9")
    elif not is_prob and not from_logits:
        symptoms.append("wrong loss for the outputs: the last Dense layer gives logits (rows do not sum to 1) but "
                        "the loss reads them as probabilities (from_logits=False). Either add "
                        "activation='softmax' or use SparseCategoricalCrossentropy(from_logits=True)")
    acc = float(np.mean(np.asarray(model.predict(xv, verbose=0)).argmax(1) == yv))
    if acc < 0.70:
        symptoms.append(f"validation accuracy {acc:.3f} on raw validation images after 4 epochs, below 0.70 (the "
                        "fixed MLP reaches about 0.75): if you scaled x outside the model, the model gets raw "
                        "images here")
    assert not symptoms, "Not fixed yet; what remains:\n- " + "\n- ".join(symptoms)
    _passed("1.4", "inputs rescaled inside the model, loss matched to the outputs; validation accuracy of at least "
                   "0.70 on raw images.")


def check_fold_batchnorm(fn) -> None:
    """Exercise 1.1: ``fn(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon) -> (kernel, bias)``
    folded, checked on a Conv2D + BatchNormalization with non-trivial statistics against Keras' own outputs.

    Lesson: 01_training § Folding BN into the convolution before it.
    """
    keras = _keras()
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    conv, bn = keras.layers.Conv2D(6, 3, padding="same"), keras.layers.BatchNormalization(epsilon=0.5)
    model = keras.Sequential([keras.Input((7, 7, 3)), conv, bn])
    conv.set_weights([rng.normal(size=(3, 3, 3, 6)).astype("float32"), rng.normal(size=6).astype("float32")])
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(size=6), rng.normal(size=6) * 2,
                    rng.uniform(0.1, 3, 6)])  # gamma, beta, moving mean, moving variance
    x = rng.normal(size=(4, 7, 7, 3)).astype("float32")
    want = np.asarray(model(x, training=False))
    gamma, beta, mean, var = bn.get_weights()
    out = fn(conv.get_weights()[0], conv.get_weights()[1], gamma, beta, mean, var, bn.epsilon)
    assert isinstance(out, tuple) and len(out) == 2, "Return (kernel, bias)."
    k, b = np.asarray(out[0], dtype="float32"), np.asarray(out[1], dtype="float32")
    assert k.shape == (3, 3, 3, 6) and b.shape == (6,), (
        f"Return the kernel in the conv's shape (3, 3, 3, 6) and one bias per output channel (6,); got "
        f"{k.shape} and {b.shape}.")
    folded = keras.layers.Conv2D(6, 3, padding="same")
    keras.Sequential([keras.Input((7, 7, 3)), folded])
    folded.set_weights([k, b])
    got = np.asarray(folded(x))
    err = float(np.max(np.abs(got - want)))
    if err > 1e-3:
        kw = conv.get_weights()[0]
        scale = gamma / np.sqrt(var + bn.epsilon)
        hints = []
        if np.allclose(k, kw * (gamma / np.sqrt(var)), rtol=1e-4):
            hints.append("epsilon is missing: divide by sqrt(moving_variance + epsilon)")
        if np.allclose(k, kw * (gamma / (var + bn.epsilon)), rtol=1e-4):
            hints.append("divide by the standard deviation sqrt(var + eps), not by the variance")
        if np.allclose(k, kw * scale, rtol=1e-4):
            hints.append("the kernel is right; the bias must be (bias - moving_mean) * scale + beta")
        raise AssertionError(
            f"The folded conv's outputs differ from Conv2D + BatchNormalization by up to {err:.3g}"
            + (": " + "; ".join(hints) if hints else ": scale = gamma / sqrt(var + eps) per output channel; kernel "
               "* scale (over the last axis); bias = (bias - mean) * scale + beta") + ".")
    _passed("1.1", f"the folded Conv2D reproduces Conv2D + BatchNormalization (max difference {err:.1e}).")
