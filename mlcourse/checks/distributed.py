"""Checkers of the exercises of notebook 06 distributed training (``solutions/06_distributed_training.ipynb``).

Each runs the learner's code with the real library on tiny data in seconds: ``TF_CONFIG`` is parsed by
TensorFlow's own ``TFConfigClusterResolver``, the strategy-scope model is trained under a real
``MirroredStrategy``, the ``tf.data`` pipeline's steps and their order are read from its dataset graph (no
timing: a busy machine would fail a right answer), and the mixed-precision model is trained one step.
"""
from __future__ import annotations

import json
import os

import numpy as np

from mlcourse import data, pipelines
from mlcourse.checks._common import _passed
from mlcourse.session import quiet_import, silenced

__all__ = ["check_tf_config", "check_strategy_scope", "check_input_pipeline", "check_mixed_precision"]


def check_tf_config(fn) -> None:
    """Exercise 6.1: ``fn(hosts, index) -> dict``: the ``TF_CONFIG`` of worker ``index`` of a cluster whose
    workers are the ``"host:port"`` strings ``hosts`` (one per machine), read back by TensorFlow's resolver.

    Lesson: 06_distributed_training § ✏️ Exercise 6.1: TF_CONFIG for a 3-machine cluster.
    """

    tf = quiet_import("tensorflow")

    cases = ((["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"], 0),
             (["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"], 2),
             (["gpu-a.lab:12345", "gpu-b.lab:12345"], 1))
    for hosts, index in cases:
        got = fn(list(hosts), index)
        assert isinstance(got, dict), f"Return a dict (json.dumps of it goes into TF_CONFIG); got {type(got).__name__}."
        assert set(got) == {"cluster", "task"}, f"TF_CONFIG has two keys, 'cluster' and 'task'; got {sorted(got)}."
        try:
            text = json.dumps(got)
        except TypeError as exc:
            raise AssertionError(f"TF_CONFIG must be plain JSON (dicts, lists, str, int): {exc}") from None
        saved = os.environ.get("TF_CONFIG")
        os.environ["TF_CONFIG"] = text
        try:
            r = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            spec, task_type, task_id = r.cluster_spec().as_dict(), r.task_type, r.task_id
        except Exception as exc:  # what a worker would hit at start-up
            raise AssertionError(f"TensorFlow cannot read this TF_CONFIG: {exc}") from None
        finally:
            if saved is None:
                os.environ.pop("TF_CONFIG", None)
            else:
                os.environ["TF_CONFIG"] = saved
        assert spec == {"worker": list(hosts)}, (
            f"For machines {hosts}, TensorFlow read the cluster as {spec}; it should be {{'worker': {hosts}}}. "
            "Every machine gets the same cluster: all addresses, in the same order.")
        assert (task_type, task_id) == ("worker", index), (
            f"For machine {index}, TensorFlow read the task as {task_type}:{task_id}; want worker:{index}. Only "
            "'task' differs from machine to machine: {'type': 'worker', 'index': i}.")
    _passed("6.1", "TensorFlow's resolver reads the whole cluster and the right task on every machine.")


def check_strategy_scope(fn) -> None:
    """Exercise 6.2: ``fn(strategy, x, y) -> model``: a Keras model created *and compiled* inside
    ``strategy.scope()``, trained one epoch on ``x, y``. Checked under a real MirroredStrategy.

    Lesson: 06_distributed_training § ✏️ Exercise 6.2: a model in a strategy's scope.
    """

    keras = quiet_import("keras")
    tf = quiet_import("tensorflow")

    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    # its own strategy, reducing without collective ops: a second collective MirroredStrategy in one process can
    # clash with the notebook's ("Shape mismatch in the collective instance", TF 2.21)
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (64, 28, 28)).astype("float32")
    y = rng.integers(0, 10, 64)
    with silenced():  # TensorFlow's native log lines would change this cell's output from run to run
        model = fn(strategy, x, y)
    assert isinstance(model, keras.Model), f"Return the Keras model; got {type(model).__name__}."
    assert model.trainable_variables, "The model has no trainable variables: was it built (Input layer or a fit)?"
    outside = [v.path for v in model.trainable_variables
               if not strategy.extended.variable_created_in_scope(getattr(v, "value", v))]
    assert not outside, (
        f"{len(outside)} variable(s) (e.g. {outside[0]}) were created outside strategy.scope(): build the model "
        "inside `with strategy.scope():` so every variable is mirrored on each replica.")
    assert getattr(model, "optimizer", None) is not None, "Compile the model (inside the scope) before fit."
    it = model.optimizer.iterations
    assert strategy.extended.variable_created_in_scope(getattr(it, "value", it)), (
        "The optimizer was created outside the scope: call model.compile(...) inside `with strategy.scope():` too.")
    assert int(it.numpy()) > 0, "The model was not trained: call model.fit(x, y, ...) (outside or inside the scope)."
    _passed("6.2", f"every variable and the optimizer live in the strategy ({strategy.num_replicas_in_sync} "
                   "replica(s)), and the model trained.")


_SHARDS = {}


def _shards():
    if "files" not in _SHARDS:
        import tempfile

        ds = data.load_fashion_mnist(source="embedded")
        x, y = ds.x_train[:384], ds.y_train[:384]
        _SHARDS["files"] = pipelines.write_shards(x, y, tempfile.mkdtemp(prefix="mlcourse-check-shards-"), n_shards=4)
        _SHARDS["y"] = y
    return _SHARDS["files"], _SHARDS["y"]


def check_input_pipeline(fn) -> None:
    """Exercise 6.3: ``fn(files, batch_size) -> tf.data.Dataset`` of ``(images float32 N x 28 x 28, labels)``
    with interleave, parallel map, cache (after decoding, before the random augmentation) and prefetch (last),
    read from the dataset graph: no timing (a busy machine would fail a right answer).

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    tf = quiet_import("tensorflow")

    with silenced():  # TensorFlow's native log lines (first TFRecord read) would change the cell's output
        files, labels = _shards()
        ds = fn([str(f) for f in files], 64)
    assert isinstance(ds, tf.data.Dataset), f"Return the tf.data.Dataset itself; got {type(ds).__name__}."
    ops = pipelines.dataset_ops(ds)
    for op, hint in (("PrefetchDataset", ".prefetch(tf.data.AUTOTUNE) as the last step"),
                     ("CacheDataset", ".cache() right after decoding (before the random augmentation)"),
                     ("ParallelMapDataset", ".map(..., num_parallel_calls=tf.data.AUTOTUNE)"),
                     ("ParallelInterleaveDataset",
                      ".interleave(tf.data.TFRecordDataset, cycle_length=..., num_parallel_calls=tf.data.AUTOTUNE)")):
        assert op in ops, f"No {op} in your pipeline (it has {ops}): add {hint}."
    xs, ys = [], []
    with silenced():
        for bx, by in ds:
            xs.append(bx.numpy())
            ys.append(by.numpy())
    assert xs and xs[0].shape == (64, 28, 28) and xs[0].dtype == np.float32, (
        f"Batches should be float32 images of shape (64, 28, 28) for batch_size 64; the first is "
        f"{xs[0].dtype if xs else None} {xs[0].shape if xs else None}. Decode, augment (it squeezes the channel), "
        "then .batch(batch_size).")
    got = np.concatenate(ys)
    assert sorted(got.tolist()) == sorted(labels.tolist()), (
        f"One epoch should hold every image exactly once ({len(labels)}); got {len(got)} labels that differ. "
        "Do not .repeat() or .take(); shuffle and cache do not change the contents.")
    # order, read from the dataset graph (ops runs from the last step back to the files): no timing here, a busy
    # machine would make any speed assertion fail for a right answer
    assert ops[0] == "PrefetchDataset", (
        f"Your pipeline ends with {ops[0]}, not prefetch (steps from last to first: {ops}): put "
        ".prefetch(tf.data.AUTOTUNE) as the very last step, so batches are prepared while the model trains.")
    maps = ("MapDataset", "ParallelMapDataset")
    at = ops.index("CacheDataset")
    if not any(op in maps for op in ops[:at]):
        raise AssertionError(
            f"Your .cache() comes after every map (steps from last to first: {ops}), so it stores the *augmented* "
            "images: every later epoch replays the first epoch's random flips and shifts, and the augmentation is "
            "lost. Cache right after decoding, then shuffle and map the random augmentation after the cache.")
    if not any(op in maps for op in ops[at + 1:]):
        raise AssertionError(
            f"Your .cache() comes before the decoding map (steps from last to first: {ops}): it stores raw "
            "records, so every epoch decodes again. Cache right after .map(decode_example, ...), before the "
            "random augmentation.")
    _passed("6.3", "interleave, parallel map, cache and prefetch present; batches (64, 28, 28) float32; "
                   "cache between decoding and augmentation, prefetch last.")


def check_mixed_precision(fn) -> None:
    """Exercise 6.4: ``fn(policy) -> compiled model`` for ``"mixed_float16"`` and ``"mixed_bfloat16"``: hidden
    layers compute in 16 bits with float32 variables, the output is float32, float16 uses a LossScaleOptimizer.

    Lesson: 06_distributed_training § ✏️ Exercise 6.4: a mixed-precision model.
    """

    keras = quiet_import("keras")

    saved = keras.mixed_precision.global_policy()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 28, 28)).astype("float32")
    y = rng.integers(0, 10, 32)
    try:
        for policy, low in (("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")):
            model = fn(policy)
            assert isinstance(model, keras.Model), f"Return the Keras model; got {type(model).__name__}."
            weighted = [layer for layer in model.layers if layer.weights]
            assert weighted, "The model has no layers with weights."
            wrong = [(layer.name, layer.compute_dtype) for layer in weighted[:-1] if layer.compute_dtype != low]
            assert not wrong, (f"With {policy}, hidden layers should compute in {low}; {wrong[0][0]} computes in "
                               f"{wrong[0][1]}. Set keras.mixed_precision.set_global_policy('{policy}') before "
                               "building (or pass dtype=policy to each layer).")
            master = [(v.path, v.dtype) for v in model.trainable_variables if v.dtype != "float32"]
            assert not master, (f"Variables must stay float32 (the 'master weights'); {master[0][0]} is "
                                f"{master[0][1]}. Use the mixed_* policy, not dtype='{low}'.")
            out = model.outputs[0].dtype
            assert str(out).endswith("float32"), (
                f"The model's output is {out}: end with a float32 softmax (e.g. "
                "keras.layers.Activation('softmax', dtype='float32')) so the loss is computed in float32.")
            opt = getattr(model, "optimizer", None)
            assert opt is not None, "Compile the model."
            is_scaled = isinstance(opt, keras.mixed_precision.LossScaleOptimizer)
            if low == "float16":
                assert is_scaled, ("float16 needs loss scaling: small gradients underflow to 0 in float16. Wrap the "
                                   "optimizer: keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam()).")
            with silenced():
                hist = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
            loss = hist.history["loss"][-1]
            assert np.isfinite(loss), f"Training with {policy} gave a non-finite loss ({loss})."
    finally:
        keras.mixed_precision.set_global_policy(saved)
    _passed("6.4", "16-bit compute, float32 master weights and output, loss scaling for float16; both train.")
