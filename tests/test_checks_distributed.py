"""The checkers of notebook 06 distributed: each passes a right answer and rejects typical wrong ones with an
explanation (and each runs in seconds)."""
import keras
import pytest
import tensorflow as tf

from mlcourse import checks, pipelines


def _tf_config(hosts, index):
    return {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}


def test_tf_config_checker(capsys):
    checks.check_tf_config(_tf_config)
    assert "✅ Exercise 6.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Only 'task' differs"):
        checks.check_tf_config(lambda h, i: _tf_config(h, 0))
    with pytest.raises(AssertionError, match="all addresses"):
        checks.check_tf_config(lambda h, i: _tf_config(h[i:i + 1], 0))
    with pytest.raises(AssertionError, match="two keys"):
        checks.check_tf_config(lambda h, i: {"cluster": {"worker": h}, "task": {"type": "worker", "index": i},
                                             "rpc_layer": "grpc"})


def _small():
    return keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


def test_strategy_scope_checker(capsys):
    def good(strategy, x, y):
        with strategy.scope():
            model = _small()
            model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        return model

    def built_outside(strategy, x, y):
        model = _small()
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        return model

    def untrained(strategy, x, y):
        with strategy.scope():
            model = _small()
            model.compile("adam", "sparse_categorical_crossentropy")
        return model

    checks.check_strategy_scope(good)
    assert "✅ Exercise 6.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="outside strategy.scope"):
        checks.check_strategy_scope(built_outside)
    with pytest.raises(AssertionError, match="not trained"):
        checks.check_strategy_scope(untrained)


def _pipeline(files, batch_size, cache=True, prefetch=True, cache_at="decoded", prefetch_at="end"):
    from mlcourse.pipelines import augment, decode_example

    auto = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=auto)
    if cache and cache_at == "records":
        ds = ds.cache()
    ds = ds.map(decode_example, num_parallel_calls=auto)
    if cache and cache_at == "decoded":
        ds = ds.cache()
    ds = ds.shuffle(1000).map(augment, num_parallel_calls=auto)
    if cache and cache_at == "augmented":  # the bug the notebook warns about: one augmentation frozen for all epochs
        ds = ds.cache()
    if prefetch and prefetch_at == "before batch":
        return ds.prefetch(auto).batch(batch_size)
    ds = ds.batch(batch_size)
    return ds.prefetch(auto) if prefetch else ds


def test_input_pipeline_checker(capsys):
    checks.check_input_pipeline(_pipeline)
    assert "✅ Exercise 6.3 passed" in capsys.readouterr().out
    # options set at the end (e.g. the course's plain_options) transform nothing: still a right answer
    checks.check_input_pipeline(lambda f, b: _pipeline(f, b).with_options(pipelines.plain_options()))
    assert "✅ Exercise 6.3 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="stores the \\*augmented\\* images"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b, cache_at="augmented"))
    with pytest.raises(AssertionError, match="before the decoding map"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b, cache_at="records"))
    with pytest.raises(AssertionError, match="not prefetch"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b, prefetch_at="before batch"))
    with pytest.raises(AssertionError, match="No PrefetchDataset"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b, prefetch=False))
    with pytest.raises(AssertionError, match="No CacheDataset"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b, cache=False))
    with pytest.raises(AssertionError, match="every image exactly once"):
        checks.check_input_pipeline(lambda f, b: _pipeline(f, b).take(2))


def _mixed(policy, scale=False, out32=True):
    keras.mixed_precision.set_global_policy(policy)
    try:
        layers = [keras.Input((28, 28)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                  keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
        layers.append(keras.layers.Activation("softmax", dtype="float32" if out32 else None))
        model = keras.Sequential(layers)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    opt = keras.optimizers.Adam()
    if scale and policy == "mixed_float16":
        opt = keras.mixed_precision.LossScaleOptimizer(opt)
    model.compile(opt, "sparse_categorical_crossentropy")
    return model


def test_mixed_precision_checker(capsys):
    checks.check_mixed_precision(_mixed)
    assert "✅ Exercise 6.4 passed" in capsys.readouterr().out
    def per_layer_unscaled(policy):  # the model's own policy stays float32, so compile() does not add scaling
        model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(32, activation="relu", dtype=policy),
                                  keras.layers.Dense(10, dtype=policy),
                                  keras.layers.Activation("softmax", dtype="float32")])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    with pytest.raises(AssertionError, match="loss scaling"):
        checks.check_mixed_precision(per_layer_unscaled)
    with pytest.raises(AssertionError, match="float32 softmax"):
        checks.check_mixed_precision(lambda p: _mixed(p, out32=False))
    with pytest.raises(AssertionError, match="should compute in"):
        checks.check_mixed_precision(lambda p: _mixed("float32"))
    assert keras.mixed_precision.global_policy().name == "float32"
