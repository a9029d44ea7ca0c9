"""Checkers of the exercises of notebook 05 distributed training."""
from __future__ import annotations

from mlcourse.checks._common import _close, _passed

__all__ = ["check_tf_config", "check_scaled_learning_rate"]


def check_tf_config(fn) -> None:
    """Exercise 5.1: ``fn(n_workers, index, base_port) -> dict``: the TF_CONFIG of worker ``index`` of
    ``n_workers`` workers on localhost, ports ``base_port``, ``base_port + 1``, ..."""
    from mlcourse.distributed import tf_config

    for n, i, port in ((2, 0, 12345), (3, 2, 20000), (1, 0, 5000)):
        got = fn(n, i, port)
        want = tf_config({"worker": [f"localhost:{port + k}" for k in range(n)]}, "worker", i)
        assert isinstance(got, dict), f"Return a dict (json.dumps of it goes into TF_CONFIG); got {type(got).__name__}."
        assert set(got) == {"cluster", "task"}, f"TF_CONFIG has two keys, 'cluster' and 'task'; got {sorted(got)}."
        assert got["cluster"] == want["cluster"], (
            f"For {n} workers from port {port}, 'cluster' should be {want['cluster']}; got {got['cluster']}. "
            "Every worker sees the same cluster: all addresses, in order.")
        assert got["task"] == want["task"], (
            f"'task' should be {want['task']} for worker {i}; got {got['task']}. Only 'task' differs per worker.")
    _passed("5.1", "the TF_CONFIG of every worker names the whole cluster and the worker itself.")


def check_scaled_learning_rate(fn) -> None:
    """Exercise 5.2: ``fn(base_lr, base_batch, global_batch) -> lr`` by the linear scaling rule."""
    for base_lr, base_batch, batch in ((1e-3, 128, 512), (0.1, 256, 256), (0.01, 64, 32)):
        got = fn(base_lr, base_batch, batch)
        want = base_lr * batch / base_batch
        assert got is not None and _close(got, want, 1e-12), (
            f"fn({base_lr}, {base_batch}, {batch}) = {got}; expected {want}: k times the batch, k times the "
            "learning rate (Goyal et al. 2017), so each epoch moves the weights about as far.")
    _passed("5.2", "the learning rate grows in proportion to the global batch.")
