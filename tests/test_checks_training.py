"""The checkers of 01_training accept the course's answers and reject the plausible wrong ones, with a message
that says what is wrong."""
from __future__ import annotations

import numpy as np
import pytest

from mlcourse import training
from mlcourse.checks import training as checks


# ------------------------------------------------------------------------------------ 1.3 overfit one batch
def test_overfit_one_batch_accepts_the_course_version(capsys):
    checks.check_overfit_one_batch(training.overfit_one_batch)
    assert "Exercise 1.3 passed" in capsys.readouterr().out


def _always_true(model, x, y, steps):
    for _ in range(steps):
        loss = float(model.train_on_batch(x, y))
    return True, loss


def _no_training(model, x, y, steps):
    loss = float(model.evaluate(x, y, verbose=0))
    return loss < 0.05, loss


def _trains_a_copy(model, x, y, steps):
    import keras

    twin = keras.models.clone_model(model)
    twin.compile(keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return training.overfit_one_batch(twin, x, y, steps)


def _first_loss(model, x, y, steps):
    losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    return losses[-1] < 0.05, losses[0]


@pytest.mark.parametrize("wrong, message", [
    (_always_true, "dead"),
    (_no_training, "train \\*that\\* model"),
    (_trains_a_copy, "not a new one or a copy"),
    (_first_loss, "loss of the last training step"),
])
def test_overfit_one_batch_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_overfit_one_batch(wrong)


# ------------------------------------------------------------------------------- 1.2 learning-rate range test
def _loop(model, x, y, start, end, steps, batch_size, lrs=None, set_lr=True, running=False, after=False):
    lrs = training.geometric_lrs(start, end, steps) if lrs is None else lrs
    losses, total = [], 0.0
    for i, lr in enumerate(lrs):
        if set_lr and not after:
            model.optimizer.learning_rate.assign(float(lr))
        xb, yb = x[i * batch_size % len(x):][:batch_size], y[i * batch_size % len(x):][:batch_size]
        loss = float(np.ravel(model.train_on_batch(xb, yb))[0])
        if set_lr and after:
            model.optimizer.learning_rate.assign(float(lr))
        total += loss
        losses.append(total / (i + 1) if running else loss)
    return list(lrs), losses


def _callback_version(model, x, y, start, end, steps, batch_size):
    cb = training.LRRangeTest(start, end, steps, stop_factor=1e9)
    model.fit(x, y, epochs=1, batch_size=batch_size, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[cb])
    return cb.lrs_used, cb.losses


def test_lr_range_test_accepts_a_loop_and_the_course_callback(capsys):
    checks.check_lr_range_test(_loop)
    checks.check_lr_range_test(_callback_version)
    checks.check_lr_range_test(lambda m, x, y, s, e, n, b: tuple(
        training.lr_range_test(m, x, y, s, e, n, b).T.values))
    assert capsys.readouterr().out.count("Exercise 1.2 passed") == 3


@pytest.mark.parametrize("wrong, message", [
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s, e, n, b, lrs=np.linspace(s, e, n)), "linearly"),
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s, e, n, b, set_lr=False), "never set"),
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s, e, n, b, after=True), "set it after the step"),
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s, e, n, b, running=True), "running mean"),
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s * 10, e, n, b), "start at start_lr"),
    (lambda m, x, y, s, e, n, b: _loop(m, x, y, s, e * 100, n, b), "geometric"),
])
def test_lr_range_test_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_lr_range_test(wrong)


def test_lr_range_test_rejects_a_recompiled_model():
    import keras

    def recompile(model, x, y, s, e, n, b):
        model.compile(keras.optimizers.SGD(s), loss="sparse_categorical_crossentropy")
        return _loop(model, x, y, s, e, n, b)

    with pytest.raises(AssertionError, match="do not re-compile"):
        checks.check_lr_range_test(recompile)


# ------------------------------------------------------------------------------------- 1.4 fix the planted bugs
def test_train_fixed_accepts_the_course_fix(capsys):
    checks.check_train_fixed(training.train_fixed)
    assert "Exercise 1.4 passed" in capsys.readouterr().out


def _variant(scale: bool, softmax: bool, from_logits: bool, prescale: bool = False):
    def fn(x, y, xv, yv, epochs):
        import keras

        keras.utils.set_random_seed(0)
        model = training._mlp(keras, scale=scale, softmax=softmax)
        model.compile(keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), metrics=["accuracy"])
        f = (lambda a: a / 255.0) if prescale else (lambda a: a)
        return model, model.fit(f(x), y, epochs=epochs, batch_size=64, verbose=0)
    return fn


def test_train_fixed_accepts_logits_with_from_logits(capsys):
    checks.check_train_fixed(_variant(scale=True, softmax=False, from_logits=True))
    assert "Exercise 1.4 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, messages", [
    (training.train_broken, ["inputs not scaled", "wrong loss"]),
    (_variant(scale=True, softmax=False, from_logits=False), ["wrong loss"]),
    (_variant(scale=False, softmax=True, from_logits=False), ["inputs not scaled"]),
    (_variant(scale=False, softmax=True, from_logits=False, prescale=True), ["inputs not scaled"]),
])
def test_train_fixed_names_the_remaining_symptoms(wrong, messages):
    with pytest.raises(AssertionError) as err:
        checks.check_train_fixed(wrong)
    for m in messages:
        assert m in str(err.value)


# -------------------------------------------------------------------------------------- 1.1 fold batch norm
def test_fold_batchnorm_accepts_the_course_version(capsys):
    checks.check_fold_batchnorm(training.fold_batchnorm)
    assert "Exercise 1.1 passed" in capsys.readouterr().out


def _no_eps(k, b, g, be, m, v, eps):
    s = g / np.sqrt(v)
    return k * s, (b - m) * s + be


def _variance(k, b, g, be, m, v, eps):
    s = g / (v + eps)
    return k * s, (b - m) * s + be


def _bias_unchanged(k, b, g, be, m, v, eps):
    return k * (g / np.sqrt(v + eps)), b


def _bias_without_mean(k, b, g, be, m, v, eps):
    s = g / np.sqrt(v + eps)
    return k * s, b * s + be


@pytest.mark.parametrize("wrong, message", [
    (_no_eps, "epsilon is missing"),
    (_variance, "standard deviation"),
    (_bias_unchanged, "the bias must be"),
    (_bias_without_mean, "the bias must be"),
])
def test_fold_batchnorm_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_fold_batchnorm(wrong)
