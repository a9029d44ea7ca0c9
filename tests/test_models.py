"""One model API across two Kerases: build from a dict, convert both ways, save/load, feed tfmot."""
import numpy as np
import pytest

from mlcourse import models

HP = {"arch": "cnn", "filters": [4, 8], "dense_units": 16, "dropout": 0.1, "batch_norm": True}
X = np.random.default_rng(0).integers(0, 256, (8, 28, 28)).astype("float32")


@pytest.fixture(scope="module")
def trained():
    m = models.build_model(HP)
    y = np.arange(8) % 10
    m.fit(X, y, epochs=1, verbose=0)  # moves weights and BatchNorm statistics off their initial values
    return m


@pytest.mark.parametrize("hp", [HP, {"arch": "mlp", "hidden_units": [32, 16]}, {"conv": "separable", "filters": [4]}])
def test_conversion_round_trip_keeps_predictions(hp):
    m3 = models.build_model(hp)
    mt = models.convert(m3, "tf_keras")
    assert models.flavor_of(m3) == "keras3" and models.flavor_of(mt) == "tf_keras"
    assert models.count_params(m3) == models.count_params(mt)
    np.testing.assert_allclose(m3.predict(X, verbose=0), mt.predict(X, verbose=0), atol=1e-5)
    back = models.convert(mt, "keras3")
    np.testing.assert_allclose(back.predict(X, verbose=0), m3.predict(X, verbose=0), atol=1e-5)
    assert models.get_hp(back) == models.get_hp(m3)


def test_trained_weights_carry_over(trained):
    mt = models.convert(trained, "tf_keras")
    np.testing.assert_allclose(trained.predict(X, verbose=0), mt.predict(X, verbose=0), atol=1e-5)


def test_save_load_across_flavors_and_no_silent_overwrite(trained, tmp_path):
    models.save(trained, tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        models.save(trained, tmp_path / "m")
    loaded = models.load(tmp_path / "m", flavor="tf_keras")
    np.testing.assert_allclose(trained.predict(X, verbose=0), loaded.predict(X, verbose=0), atol=1e-5)
    models.save(trained, tmp_path / "m", overwrite=True)


def test_load_errors(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="holds no saved model"):
        models.load(tmp_path)
    models.save(trained, tmp_path / "m")
    weights = (tmp_path / "m" / "weights.npz").read_bytes()
    for damaged in (b"garbage", b"", weights[: len(weights) // 2]):   # not a zip, empty, truncated
        (tmp_path / "m" / "weights.npz").write_bytes(damaged)
        with pytest.raises(ValueError, match="corrupt"):
            models.load(tmp_path / "m")


def test_bad_hyperparameters_are_explained():
    with pytest.raises(ValueError, match="Unknown hyperparameters"):
        models.build_model({"layers": 3})
    with pytest.raises(ValueError, match="dropout"):
        models.build_model({"dropout": 1.5})
    with pytest.raises(ValueError, match="flavor"):
        models.build_model({}, flavor="pytorch")
    with pytest.raises(TypeError, match="dict"):
        models.build_model([1, 2])


def test_copy_weights_names_the_mismatch():
    a = models.build_model({"arch": "mlp", "hidden_units": [8]})
    b = models.build_model({"arch": "mlp", "hidden_units": [9]}, flavor="tf_keras")
    with pytest.raises(ValueError, match="shape"):
        models.copy_weights(a, b)


def test_foreign_model_has_no_hp():
    import keras

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="build_model"):
        models.get_hp(plain)


def test_converted_model_is_accepted_by_tfmot(trained):
    """The reason tf_keras exists here: tfmot prunes the converted model (prunable layers wrapped)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    mt = models.convert(trained, "tf_keras")

    def wrap(layer):
        if isinstance(layer, (tf_keras.layers.Dense, tf_keras.layers.Conv2D)):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    pruned = tf_keras.models.clone_model(mt, clone_function=wrap)
    assert any("prune_low_magnitude" in layer.name for layer in pruned.layers)


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_epoch_bar_follows_fit_in_either_flavor(flavor):
    m = models.build_model({"arch": "mlp", "hidden_units": [8]}, flavor=flavor)
    x, y = np.zeros((64, 28, 28), "float32"), np.arange(64) % 10
    bar = models.epoch_bar(m, 3, "test")
    hist = m.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[bar])
    assert len(hist.history["loss"]) == 3 and bar.epochs_done == 3 and "loss" in bar.last


@pytest.mark.parametrize("hp,msg", [
    ({"filters": "3264"}, r"filters must be a list of positive integers.*'3264'"),
    ({"filters": [32.7]}, r"filters must be a list of positive integers.*32.7"),
    ({"filters": ["32"]}, r"filters.*'32'"),
    ({"filters": [True, 8]}, "filters"),
    ({"hidden_units": 128, "arch": "mlp"}, "hidden_units must be a list"),
    ({"batch_norm": "false"}, r"batch_norm must be True or False.*'false'"),
    ({"batch_norm": 1}, "batch_norm must be True or False"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite positive number"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite positive number"),
    ({"learning_rate": "0.001"}, r"learning_rate must be a finite positive number.*'0.001'"),
    ({"dropout": float("nan")}, "dropout"),
    ({"dropout": "0.2"}, "dropout"),
    ({"num_classes": 1}, "num_classes must be an integer >= 2"),
    ({"num_classes": 10.0}, "num_classes must be an integer >= 2"),
    ({"dense_units": "128"}, "dense_units must be an integer >= 0"),
    ({"dense_units": -1}, "dense_units must be an integer >= 0"),
    ({"kernel_size": True}, "kernel_size"),
    ({"kernel_size": "3"}, "kernel_size"),
    ({"input_shape": [28, "28"]}, "input_shape must be"),
    ({"input_shape": [28]}, "input_shape must be"),
    ({"optimizer": "adamw"}, "optimizer must be one of"),
    ({"activation": 3}, "activation must be"),
    ({"arch": ["cnn"]}, "arch must be"),
])
def test_nonsense_hyperparameters_are_refused_with_what_was_expected(hp, msg):
    with pytest.raises(ValueError, match=msg):
        models.build_model(hp)


def test_sensible_hyperparameter_types_still_pass():
    m = models.build_model({"filters": (np.int64(4), 8), "kernel_size": [3, 5], "conv": ["standard", "separable"],
                            "batch_norm": np.bool_(True), "learning_rate": np.float32(1e-3), "dropout": 0,
                            "dense_units": 0, "num_classes": np.int64(3), "input_shape": (28, 28)}, compile=True)
    assert m.output_shape == (None, 3)
    hp = models.get_hp(m)
    assert hp["filters"] == [4, 8] and hp["batch_norm"] is True and hp["num_classes"] == 3
    assert models.build_model({"kernel_size": 5, "conv": "separable"}).count_params() > 0


def test_flavor_of_a_subclass_is_its_base_keras():
    """A model class a learner writes (``class Distiller(keras.Model)``) lives in ``__main__``: its Keras is
    its base class's, so epoch_bar and convert work on it."""
    import keras
    import tf_keras

    class Mine(keras.Model):
        pass

    class Theirs(tf_keras.Model):
        pass

    assert models.flavor_of(Mine()) == "keras3" and models.flavor_of(Theirs()) == "tf_keras"
    with pytest.raises(TypeError, match="not a Keras model"):
        models.flavor_of(object())


@pytest.mark.parametrize("flavor", models.FLAVORS)
def test_jit_compile_and_tf_data_options_train_the_same_network(flavor):
    """The speed options of build_model / train (measured by tools/bench_training.py) change how fit runs, not what
    is trained: same weights count, a working model, and Keras' own default when left at None."""
    y = np.arange(8) % 10
    assert models.build_model(HP, flavor=flavor, jit_compile=True).jit_compile is True
    assert models.build_model(HP, flavor=flavor, jit_compile=False).jit_compile is False
    assert not models.build_model(HP, flavor=flavor).jit_compile  # None: Keras' default, off on a CPU
    with pytest.raises(ValueError, match="jit_compile"):
        models.build_model(HP, flavor=flavor, jit_compile="yes")
    seen = []
    clock = models.get_keras(flavor).callbacks.LambdaCallback(on_epoch_end=lambda e, logs=None: seen.append(e))
    plain = models.train(HP, X, y, epochs=2, batch_size=4, flavor=flavor)
    piped = models.train(HP, X, y, epochs=2, batch_size=4, flavor=flavor, inputs="tf.data", callbacks=[clock])
    assert seen == [0, 1] and models.count_params(piped) == models.count_params(plain)
    assert models.get_hp(piped) == models.get_hp(plain)
    assert piped.predict(X, verbose=0).shape == (8, 10)
    with pytest.raises(ValueError, match="inputs"):
        models.train(HP, X, y, epochs=1, flavor=flavor, inputs="generator")


def test_input_pipeline_batches_every_example_once_per_epoch_and_reshuffles():
    y = np.arange(8)
    ds = models.input_pipeline(X, y, batch_size=3, seed=0)
    epochs = [np.concatenate([b[1].numpy() for b in ds]) for _ in range(3)]
    assert len(list(ds)) == 3 and all(sorted(e.tolist()) == list(range(8)) for e in epochs)
    assert any(not np.array_equal(epochs[0], e) for e in epochs[1:])  # reshuffled from epoch to epoch
    xb, _ = next(iter(ds))
    assert xb.shape[1:] == X.shape[1:] and xb.dtype.name == X.dtype.name
    with pytest.raises(ValueError, match="length"):
        models.input_pipeline(X, y[:5])
    with pytest.raises(ValueError, match="batch_size"):
        models.input_pipeline(X, y, batch_size=0)
