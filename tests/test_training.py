"""mlcourse.training: the tested versions of what 01_training writes (folding BN, the range test, the
diagnostics), checked on tiny models and data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlcourse import settings, training


def test_sizes_name_the_same_parameters_at_every_size():
    for size in settings.SIZES:
        assert settings.pick_sizes(training.SIZES, size).keys() == training.SIZES["full"].keys()
    assert training.SIZES["smoke"]["EAGER"] and not training.SIZES["lesson"]["EAGER"]


def test_fold_batchnorm_matches_the_formula_and_checks_shapes():
    rng = np.random.default_rng(0)
    k, b = rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)
    g, be, m, v = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.1, 2, 4)
    fk, fb = training.fold_batchnorm(k, b, g, be, m, v, epsilon=0.01)
    s = g / np.sqrt(v + 0.01)
    assert np.allclose(fk, k * s, atol=1e-5) and np.allclose(fb, (b - m) * s + be, atol=1e-5)
    fk0, fb0 = training.fold_batchnorm(k, None, None, None, m, v)  # no bias, no scale, no centre
    assert np.allclose(fb0, -m / np.sqrt(v + 1e-3), atol=1e-5) and np.allclose(fk0, k / np.sqrt(v + 1e-3), atol=1e-5)
    with pytest.raises(ValueError, match="one value per output channel"):
        training.fold_batchnorm(k, b[:3], g, be, m, v)


def _bn_cnn(keras, use_bias=False):
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, padding="same", use_bias=use_bias),
                              L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(6), L.BatchNormalization(),
                              L.Dense(3, activation="softmax")])
    rng = np.random.default_rng(1)
    for bn in (model.layers[1], model.layers[5]):
        n = bn.get_weights()[0].shape[0]
        bn.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.2, 2, n)])
    return model


@pytest.mark.parametrize("use_bias", [False, True])
def test_fold_bn_model_keeps_the_outputs_and_drops_the_bn_layers(use_bias):
    import keras

    model = _bn_cnn(keras, use_bias)
    folded = training.fold_bn_model(model)
    x = np.random.default_rng(2).normal(size=(5, 8, 8, 1)).astype("float32")
    assert np.max(np.abs(np.asarray(model(x, training=False)) - np.asarray(folded(x)))) < 1e-5
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert len(folded.layers) == len(model.layers) - 2
    assert training.count_graph_ops(folded) < training.count_graph_ops(model)


def test_fold_bn_model_refuses_a_bn_that_follows_no_conv_or_dense():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not a Conv2D or Dense"):
        training.fold_bn_model(model)


def test_geometric_lrs_and_suggest_lr():
    lrs = training.geometric_lrs(1e-4, 1.0, 5)
    assert np.allclose(lrs, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    with pytest.raises(ValueError):
        training.geometric_lrs(1.0, 0.1, 5)
    table = pd.DataFrame({"lr": training.geometric_lrs(1e-4, 10, 60)})
    table["loss"] = 2.3 - np.clip(np.log10(table.lr) + 4, 0, 3) * 0.6  # falls from 1e-4 to 0.1 ...
    table.loc[table.lr > 0.3, "loss"] = 5.0  # ... then explodes
    assert 0.005 < training.suggest_lr(table) < 0.04


def _tiny(keras, lr=0.05):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return m


def _data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, x[:, :3].argmax(1)


def test_lr_range_test_loop_and_callback_set_the_rate_and_record_each_step():
    import keras

    x, y = _data()
    m = _tiny(keras)
    table = training.lr_range_test(m, x, y, 1e-4, 100.0, steps=50, batch_size=32)
    assert 5 <= len(table) <= 50 and np.allclose(table.lr.iloc[1] / table.lr.iloc[0], (1e6) ** (1 / 49))
    assert math.isclose(float(m.optimizer.learning_rate), table.lr.iloc[-1], rel_tol=1e-5)
    assert len(table) < 50  # 100 is far too large for SGD here: it stopped on divergence
    cb = training.LRRangeTest(1e-4, 1.0, steps=8, stop_factor=1e9)
    m = _tiny(keras)
    hist = m.fit(x, y, batch_size=32, epochs=1, steps_per_epoch=8, verbose=0, shuffle=False, callbacks=[cb])
    assert len(cb.losses) == 8 and math.isclose(float(m.optimizer.learning_rate), 1.0, rel_tol=1e-5)
    assert np.allclose(cb.lrs_used, training.geometric_lrs(1e-4, 1.0, 8))
    # the per-step losses recovered from Keras' running means average back to the epoch's logged loss
    assert math.isclose(np.mean(cb.losses), hist.history["loss"][-1], rel_tol=1e-4)


def test_diagnose_fit_reads_the_three_shapes():
    assert training.diagnose_fit([1.0, 0.5, 0.2, 0.05], [1.0, 0.6, 0.7, 0.9]) == "over-fitting"
    assert training.diagnose_fit([2.0, 1.5, 1.2], [2.0, 1.5, 1.25]) == "under-fitting"
    assert training.diagnose_fit([1.0, 0.5, 0.3], [1.0, 0.55, 0.35]) == "a good fit"
    with pytest.raises(ValueError):
        training.diagnose_fit([1.0], [1.0, 2.0])


def test_remedy_verdicts():
    rows = []
    for seed, noise in zip(range(3), (0.0, 0.002, -0.002)):
        rows += [{"remedy": "base", "seed": seed, "val_accuracy": 0.70 + noise, "params": 10, "train_s": 1.0},
                 {"remedy": "big gain", "seed": seed, "val_accuracy": 0.80 + noise * 2, "params": 20, "train_s": 2.0},
                 {"remedy": "noise", "seed": seed, "val_accuracy": 0.70 + (0.01, -0.01, 0.004)[seed], "params": 10,
                  "train_s": 1.0},
                 {"remedy": "loss", "seed": seed, "val_accuracy": 0.60 - noise, "params": 5, "train_s": 0.5}]
    v = training.remedy_verdicts(pd.DataFrame(rows), "base").set_index("remedy").verdict
    assert v.to_dict() == {"base": "baseline", "big gain": "helped", "noise": "within the noise", "loss": "hurt"}
    one = training.remedy_verdicts(pd.DataFrame([r for r in rows if r["seed"] == 0]), "base").set_index("remedy")
    assert one.verdict["big gain"] == "one seed: helped?" and one.verdict["loss"] == "one seed: hurt?"
    with pytest.raises(ValueError, match="baseline"):
        training.remedy_verdicts(pd.DataFrame(rows), "missing")
    # a loss: lower is better, so the remedy whose loss fell helped and the one whose loss rose hurt
    losses = pd.DataFrame(rows).assign(val_loss=lambda t: 2.0 - 2 * t.val_accuracy)
    v = training.remedy_verdicts(losses, "base", metric="val_loss", higher_is_better=False).set_index("remedy")
    assert v.verdict.to_dict() == {"base": "baseline", "big gain": "helped", "noise": "within the noise",
                                   "loss": "hurt"}
    assert v.loc["big gain", "diff"] < 0 < v.loc["loss", "diff"]


def test_debugging_diagnostics_tell_a_healthy_net_from_a_dead_one():
    import keras

    x, y = _data(32)
    healthy = _tiny(keras, lr=0.05)
    healthy.compile(keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    assert abs(training.initial_loss(healthy, x, y) - math.log(3)) < 0.5
    norms = training.gradient_norms(healthy, x, y)
    assert list(norms.columns) == ["layer", "weight", "norm"] and (norms.norm > 0).all()
    assert training.overfit_one_batch(healthy, x, y, steps=300)[0]
    keras.utils.set_random_seed(0)
    dead = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu",
                                                                   bias_initializer=keras.initializers.Constant(-50)),
                             keras.layers.Dense(3, activation="softmax")])
    dead.compile(keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    norms = training.gradient_norms(dead, x, y)
    assert norms.norm.iloc[0] == 0.0
    ok, loss = training.overfit_one_batch(dead, x, y, steps=50)
    assert not ok and loss > 0.5
