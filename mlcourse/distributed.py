"""Distributed training for real, on one laptop: ``tf.distribute`` strategies with real processes.

Taught in notebook ``05_distributed_training``, which writes the strategy code, ``TF_CONFIG`` and the worker
script in plain sight; the functions here are the tested production versions of those cells.

* :func:`logical_cpus` + :func:`train_mirrored`: **MirroredStrategy** (synchronous data parallelism) over
  logical CPU devices inside this process: every device holds a replica, gradients are all-reduced.
* :class:`LocalCluster`: worker (and parameter-server) **processes on localhost**, each with its own
  ``TF_CONFIG`` and free port, logs under ``directory``, always cleaned up (also on errors and on Ctrl-C).
* :func:`train_multi_worker`: **MultiWorkerMirroredStrategy** over worker processes, with
  ``BackupAndRestore``; ``kill_after_epoch`` kills a worker mid-training and restarts the cluster, and the
  result says which epoch training resumed at (fault tolerance, shown rather than told).
* :func:`train_parameter_server`: **ParameterServerStrategy** (asynchronous updates) with real ``ps`` and
  ``worker`` processes and a coordinator (the ``chief``).

**Security.** tf.distribute's gRPC task servers bind every interface (``0.0.0.0``; TensorFlow offers no
loopback option) and are unauthenticated: :class:`LocalCluster` therefore starts its tasks in a private
network namespace holding only loopback (:class:`mlcourse.runtime.ProcessGroup`), warns where it cannot, and
the tasks die with the process that started them.

Multi-worker and parameter-server training use ``tf_keras`` models (Keras 3's ``fit`` fails under
MultiWorkerMirroredStrategy in TF 2.21); :mod:`mlcourse.models` builds either from the same dict.

The processes run ``python -m mlcourse.distributed task`` with ``TF_CONFIG`` and ``MLCOURSE_TASK_CONFIG`` (the
run's ``config.json``) set: on a real cluster, run that same command on every machine with a ``TF_CONFIG``
naming the machines (see the README); nothing else changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["logical_cpus", "train_mirrored", "batch_size_sweep", "LocalCluster", "train_multi_worker",
           "train_parameter_server", "tf_config", "cpu_flags"]

SMALL_CNN = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.1}


# ------------------------------------------------------------------------------------------- in-process
def logical_cpus(n: int = 2) -> list[str]:
    """Split the CPU into ``n`` logical devices (call it before any TensorFlow computation); returns their names.

    A laptop has one CPU device; logical devices let MirroredStrategy place one replica on each, exactly
    as it would place one on each GPU. If TensorFlow already ran something, this cannot change any more: the
    devices already configured are returned when there are enough, otherwise the error says to restart the
    kernel.
    """
    from mlcourse.runtime import quiet_import

    tf = quiet_import("tensorflow")

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:
        have = tf.config.list_logical_devices("CPU")
        if len(have) >= n:
            return [d.name for d in have]
        raise RuntimeError(f"TensorFlow is already initialised with {len(have)} CPU device(s), so {n} logical "
                           "devices cannot be created any more. Restart the kernel and call "
                           "distributed.logical_cpus() before anything else runs TensorFlow.") from exc
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def train_mirrored(x, y, x_test, y_test, hp: dict | None = None, devices: list[str] | None = None,
                   global_batch_size: int = 128, epochs: int = 2, learning_rate: float | None = None) -> dict:
    """Train under MirroredStrategy over ``devices`` (default: every logical CPU); returns a result dict.

    The global batch is split evenly over the replicas; each replica computes gradients on its share and
    they are summed (all-reduce) before one synchronous update. Returns replicas, global batch size, epoch
    time, images per second, final training loss and test accuracy.
    """
    import tensorflow as tf

    from mlcourse import models

    devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    if global_batch_size % len(devices):
        raise ValueError(f"global_batch_size {global_batch_size} must divide evenly over {len(devices)} replicas.")
    if len(devices) > 1:  # reduce without collective ops: each call makes a new strategy, and several collective
        # MirroredStrategy objects in one process clash ("Shape mismatch in the collective instance", TF 2.21)
        strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    else:
        strategy = tf.distribute.OneDeviceStrategy(devices[0])
    hp = {**SMALL_CNN, **(hp or {})}
    if learning_rate:
        hp["learning_rate"] = learning_rate
    with strategy.scope():
        model = models.build_model(hp, flavor="keras3")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(global_batch_size).prefetch(2)
    model.fit(ds.take(1), epochs=1, verbose=0, shuffle=False)  # build and trace outside the timing
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=epochs, verbose=0, shuffle=False)
    seconds = (time.perf_counter() - t0) / epochs
    acc = float(model.evaluate(x_test, y_test, batch_size=512, verbose=0)[1])
    return {"replicas": strategy.num_replicas_in_sync, "global batch": global_batch_size,
            "per-replica batch": global_batch_size // strategy.num_replicas_in_sync,
            "learning rate": hp.get("learning_rate", 1e-3), "steps per epoch": int(np.ceil(len(x) / global_batch_size)),
            "epoch time (s)": seconds, "images/s": len(x) / seconds,
            "train loss": float(hist.history["loss"][-1]), "test accuracy": acc}


def batch_size_sweep(x, y, x_test, y_test, batch_sizes=(32, 128, 512, 2048), epochs: int = 2,
                     scale_learning_rate: bool = False, base_batch: int = 128, base_lr: float = 1e-3) -> pd.DataFrame:
    """:func:`train_mirrored` for each global batch size: throughput rises, updates per epoch fall.

    ``scale_learning_rate=True`` applies the linear scaling rule (learning rate proportional to the batch).
    """
    from tqdm.auto import tqdm

    rows = []
    for b in tqdm(batch_sizes, desc="global batch sizes"):
        lr = base_lr * b / base_batch if scale_learning_rate else base_lr
        rows.append(train_mirrored(x, y, x_test, y_test, global_batch_size=b, epochs=epochs, learning_rate=lr))
    return pd.DataFrame(rows)


def cpu_flags() -> list[str]:
    """The instruction-set flags of this CPU that decide whether 16-bit training can be fast here
    (:mod:`mlcourse.machine`): ``avx2``, ``fma``, ``f16c``, ``avx512f``, ``avx512_bf16``, ``avx512_fp16``,
    ``amx_bf16``, ``amx_fp16``, ``amx_tile``. An empty list where they cannot be read (macOS, Windows)."""
    from mlcourse import machine

    wanted = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile")
    have = machine.cpu()["flags"]
    return [f for f in wanted if f in have]


# ------------------------------------------------------------------------------------------- processes
def tf_config(cluster: dict[str, list[str]], task_type: str, index: int) -> dict:
    """The ``TF_CONFIG`` of one task: the whole cluster plus who this task is."""
    if task_type not in cluster or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"No task {task_type}:{index} in cluster {cluster}.")
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


class LocalCluster:
    """Processes on localhost that form one ``tf.distribute`` cluster (started by :class:`runtime.ProcessGroup`).

    ``tasks`` maps a job name to a count, e.g. ``{"worker": 2}`` or ``{"chief": 1, "worker": 2, "ps": 1}``.
    Each task gets a free port, its ``TF_CONFIG``, the environment variable ``MLCOURSE_TASK_CONFIG`` (the
    training configuration file) and a log file ``directory/logs/<job>-<index>.log``. Use it as a context
    manager: on leaving, every process still running is terminated (then killed), whatever happened; if this
    process dies, the tasks die with it (parent-death signal)::

        with LocalCluster({"worker": 2}, directory, config) as cluster:
            cluster.start()
            cluster.wait()

    **Security.** TensorFlow's task servers listen on *every* network interface (its gRPC server binds
    ``0.0.0.0``/``[::]`` whatever ``TF_CONFIG`` names; there is no option to bind loopback) and run any graph
    they are sent, unauthenticated. So by default (``private_network=True``) the tasks run in a private
    network namespace that holds only loopback (Linux); where that is impossible a warning is printed at
    start. :attr:`isolated` says which; :meth:`listening` shows what each task listens on.
    """

    def __init__(self, tasks: dict[str, int], directory, config: dict, threads_per_task: int = 1,
                 private_network: bool = True):
        from mlcourse.runtime import ProcessGroup, free_port

        if not tasks or any(int(n) < 1 for n in tasks.values()):
            raise ValueError(f"tasks must map job names to counts >= 1, got {tasks}.")
        self.directory = Path(directory)
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "config.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.cluster = {job: [f"localhost:{free_port()}" for _ in range(int(n))] for job, n in tasks.items()}
        self.threads = threads_per_task
        self.group = ProcessGroup(self.directory / "logs", private_network=private_network, grace=3.0)
        self.isolated = self.group.isolated
        if not self.isolated:
            print("WARNING: the tf.distribute tasks listen on every network interface of this machine, "
                  "unauthenticated (no private network namespace here). Run on a trusted network only; the "
                  "tasks are stopped as soon as training ends.", file=sys.stderr)

    @property
    def procs(self) -> dict[str, subprocess.Popen]:
        """The task processes by name (``"worker:0"``...)."""
        return self.group.procs

    @property
    def names(self) -> list[str]:
        """Every task as ``"job:index"``."""
        return [f"{job}:{i}" for job, addrs in self.cluster.items() for i in range(len(addrs))]

    def log_path(self, name: str) -> Path:
        """The log file of task ``name``."""
        return self.group.log_path(name)

    def start(self, names: list[str] | None = None) -> "LocalCluster":
        """Start the given tasks (default: all); a task's log is appended to, so restarts keep the history."""
        for name in names or self.names:
            job, index = name.split(":")
            env = {"TF_CONFIG": json.dumps(tf_config(self.cluster, job, int(index))),
                   "MLCOURSE_TASK_CONFIG": str(self.config_path), "CUDA_VISIBLE_DEVICES": "-1",
                   "TF_NUM_INTRAOP_THREADS": self.threads, "TF_NUM_INTEROP_THREADS": 2,
                   "OMP_NUM_THREADS": self.threads}
            self.group.start(name, [sys.executable, "-m", "mlcourse.distributed", "task"], env=env)
        return self

    def kill(self, name: str) -> None:
        """Kill one task at once (SIGKILL: no clean-up, as when a machine dies)."""
        self.group.kill(name)

    def wait(self, names: list[str] | None = None, timeout: float = 600, on_poll=None) -> dict[str, int]:
        """Wait until the given tasks (default: all but ``ps``) exit; returns their exit codes.

        ``on_poll()``, if given, is called about twice a second while waiting (to update a progress bar).
        Raises TimeoutError (with the log to read) if one is still running after ``timeout`` seconds.
        """
        servers = ("ps:", "worker:") if "chief" in self.cluster else ("ps:",)  # they serve until stopped
        names = names or [n for n in self.procs if not n.startswith(servers)]
        return self.group.wait(names, timeout=timeout, on_poll=on_poll)

    def stop(self) -> None:
        """Terminate every task still running (SIGTERM, then SIGKILL after 3 s)."""
        self.group.stop()

    def listening(self) -> dict[str, list[tuple[str, int]]]:
        """What each running task listens on (address, port), read from ``/proc`` in the task's own network."""
        from mlcourse.runtime import listening_ports

        return {n: listening_ports(p.pid) for n, p in self.procs.items() if p.poll() is None}

    def log(self, name: str, tail: int = 30) -> str:
        """The last ``tail`` lines of a task's log."""
        return self.group.log(name, tail)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.group.close()
        return False


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _prepare(directory, fresh: bool) -> Path:
    from mlcourse.runtime import keep_aside

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        if not fresh:
            raise FileExistsError(f"{directory} already holds a run (logs, backups). Pass fresh=True to move it "
                                  "aside (nothing is deleted) or choose another directory.")
        keep_aside(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _check_common(n_workers: int, epochs: int, n_train: int, batch_size: int) -> None:
    if n_workers < 1 or epochs < 1 or n_train < 1 or batch_size < 1:
        raise ValueError("n_workers, epochs, n_train and batch_size must all be at least 1.")


def train_multi_worker(directory, n_workers: int = 2, epochs: int = 3, n_train: int = 6000, n_test: int = 1000,
                       batch_size: int = 64, hp: dict | None = None, kill_after_epoch: int | None = None,
                       source: str = "auto", seed: int = 0, timeout: float = 600, fresh: bool = False) -> dict:
    """Synchronous data-parallel training with MultiWorkerMirroredStrategy over ``n_workers`` processes.

    ``batch_size`` is per worker (the global batch is ``batch_size * n_workers``). Every worker uses
    ``BackupAndRestore`` (backups in ``directory/backup``). With ``kill_after_epoch=k``, the last worker is
    killed as soon as epoch ``k`` (1-based) has finished; the surviving workers fail or are stopped, as a
    cluster manager would, and the whole cluster is restarted with the same command: training resumes from
    the backup. Returns a dict with the epochs each attempt ran, the epoch the restart resumed at, seconds,
    images per second, test accuracy, whether all weights are finite, and the log folder.
    """
    _check_common(n_workers, epochs, n_train, batch_size)
    if kill_after_epoch is not None and not 1 <= kill_after_epoch < epochs:
        raise ValueError(f"kill_after_epoch must be between 1 and epochs - 1 = {epochs - 1}, got {kill_after_epoch}.")
    directory = _prepare(directory, fresh)
    config = {"mode": "multi_worker", "epochs": epochs, "n_train": n_train, "n_test": n_test,
              "batch_size": batch_size, "hp": {**SMALL_CNN, **(hp or {})}, "source": source, "seed": seed,
              "directory": str(directory)}
    chief = "worker:0"
    progress = directory / "progress-worker-0.jsonl"
    attempts = []
    t0 = time.perf_counter()
    bar = _EpochBar(progress, epochs, f"MultiWorkerMirrored, {n_workers} workers")
    with LocalCluster({"worker": n_workers}, directory, config) as cluster:
        try:
            cluster.start()
            if kill_after_epoch is not None:
                victim = f"worker:{n_workers - 1}"
                _wait_for_epoch(progress, kill_after_epoch, cluster, chief, timeout, on_poll=bar)
                cluster.kill(victim)
                bar()
                bar.bar.set_postfix_str(f"{victim} killed, cluster restarting")
                attempts.append({"attempt": 1, "killed": victim, "epochs_done": _epochs_done(progress)})
                try:  # the survivors notice the missing peer and fail; give them a moment, then stop them
                    cluster.wait([n for n in cluster.names if n != victim], timeout=30)
                except TimeoutError:
                    pass
                cluster.stop()
                cluster.start()
                bar.bar.set_postfix_str("resumed from BackupAndRestore")
            codes = cluster.wait(cluster.names, timeout=timeout, on_poll=bar)
        finally:
            bar.close()
        if any(codes.values()):
            bad = next(n for n, c in codes.items() if c)
            raise RuntimeError(f"task {bad} failed (exit {codes[bad]}):\n{cluster.log(bad)}")
    seconds = time.perf_counter() - t0
    result = json.loads((directory / "result.json").read_text())
    events = _events(progress)
    begins = [e["epoch"] for e in events if e["event"] == "epoch_begin"]
    starts = [i for i, e in enumerate(events) if e["event"] == "train_begin"]
    resumed_at = None
    if len(starts) > 1:
        after = [e["epoch"] for e in events[starts[-1]:] if e["event"] == "epoch_begin"]
        resumed_at = after[0] + 1 if after else None
    ends = [e["epoch"] + 1 for e in events if e["event"] == "epoch_end"]
    return {"workers": n_workers, "global batch": batch_size * n_workers, "epochs": epochs,
            "epochs started": [b + 1 for b in begins], "epochs finished": ends,
            "killed after epoch": attempts[0]["epochs_done"] if attempts else None, "resumed at epoch": resumed_at,
            "seconds": seconds, "train seconds": result["train_seconds"],
            "images/s": n_train * (epochs - (resumed_at - 1 if resumed_at else 0)) / result["train_seconds"],
            "test accuracy": result["test_accuracy"], "weights finite": result["weights_finite"],
            "history": result["history"], "logs": str(directory / "logs")}


def _epochs_done(progress: Path) -> int:
    return sum(1 for e in _events(progress) if e["event"] == "epoch_end")


class _EpochBar:
    """A progress bar over the epochs the chief reports finished in its progress file (the training runs in
    other processes, so this process can only watch): call it to refresh, close it when done."""

    def __init__(self, progress: Path, epochs: int, desc: str):
        from tqdm.auto import tqdm

        self.progress = progress
        self.bar = tqdm(total=epochs, desc=desc, unit="epoch")

    def __call__(self) -> None:
        done = len({e["epoch"] for e in _events(self.progress) if e["event"] == "epoch_end"})
        if done != self.bar.n:
            self.bar.n = min(done, self.bar.total)
            self.bar.refresh()

    def close(self) -> None:
        self()
        self.bar.close()


def _wait_for_epoch(progress: Path, k: int, cluster: LocalCluster, chief: str, timeout: float, on_poll=None) -> None:
    end = time.perf_counter() + timeout
    while _epochs_done(progress) < k:
        if cluster.procs[chief].poll() is not None:
            raise RuntimeError(f"{chief} exited before epoch {k} finished:\n{cluster.log(chief)}")
        if time.perf_counter() > end:
            raise TimeoutError(f"epoch {k} did not finish within {timeout} s; see {cluster.log_path(chief)}")
        if on_poll:
            on_poll()
        time.sleep(0.2)


def train_parameter_server(directory, n_workers: int = 2, n_ps: int = 1, epochs: int = 3, n_train: int = 6000,
                           n_test: int = 1000, batch_size: int = 64, hp: dict | None = None, source: str = "auto",
                           seed: int = 0, timeout: float = 600, fresh: bool = False) -> dict:
    """Asynchronous training with ParameterServerStrategy: a chief (coordinator), ``n_ps`` parameter servers
    holding the variables, ``n_workers`` workers each running steps on its own, without waiting for the others.

    ``batch_size`` is the batch of one step on one worker. Returns the same kind of dict as
    :func:`train_multi_worker`.
    """
    _check_common(n_workers, epochs, n_train, batch_size)
    if n_ps < 1:
        raise ValueError("n_ps must be at least 1.")
    directory = _prepare(directory, fresh)
    config = {"mode": "parameter_server", "epochs": epochs, "n_train": n_train, "n_test": n_test,
              "batch_size": batch_size, "hp": {**SMALL_CNN, **(hp or {})}, "source": source, "seed": seed,
              "directory": str(directory)}
    t0 = time.perf_counter()
    bar = _EpochBar(directory / "progress-chief-0.jsonl", epochs, f"ParameterServer, {n_workers} workers + {n_ps} ps")
    with LocalCluster({"chief": 1, "worker": n_workers, "ps": n_ps}, directory, config) as cluster:
        try:
            cluster.start([n for n in cluster.names if n != "chief:0"])
            cluster.start(["chief:0"])
            codes = cluster.wait(["chief:0"], timeout=timeout, on_poll=bar)
        finally:
            bar.close()
        if codes["chief:0"]:
            raise RuntimeError(f"the chief failed (exit {codes['chief:0']}):\n{cluster.log('chief:0')}")
    seconds = time.perf_counter() - t0
    result = json.loads((directory / "result.json").read_text())
    return {"workers": n_workers, "ps": n_ps, "batch per step": batch_size, "epochs": epochs,
            "seconds": seconds, "train seconds": result["train_seconds"],
            "images/s": n_train * epochs / result["train_seconds"], "test accuracy": result["test_accuracy"],
            "weights finite": result["weights_finite"], "history": result["history"],
            "logs": str(directory / "logs")}


# ----------------------------------------------------------------------------------------- task process
def _load_data(cfg):
    from mlcourse import data

    ds = data.load_fashion_mnist(source=cfg["source"])
    x, y = data.stratified_subset(ds.x_train, ds.y_train, cfg["n_train"], seed=cfg["seed"])
    n = cfg["n_test"]
    return x.astype("float32"), y.astype("int64"), ds.x_test[:n].astype("float32"), ds.y_test[:n]


def _progress_callback(tf_keras, path: Path, enabled: bool):
    class Progress(tf_keras.callbacks.Callback):
        def _write(self, **event):
            if enabled:
                with open(path, "a") as f:
                    f.write(json.dumps({**event, "time": time.time()}) + "\n")

        def on_train_begin(self, logs=None):
            self._write(event="train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            self._write(event="epoch_begin", epoch=epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._write(event="epoch_end", epoch=epoch, **{k: float(v) for k, v in (logs or {}).items()})

    return Progress()


def _terminate_on_sigterm() -> None:
    """TensorFlow's coordination service installs its own SIGTERM handler (a preemption notice) that keeps the
    task running; a course task should end at once when its launcher stops it, so restore the default."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _task_main() -> int:
    cfg = json.loads(Path(os.environ["MLCOURSE_TASK_CONFIG"]).read_text())
    tf_cfg = json.loads(os.environ["TF_CONFIG"])
    job, index = tf_cfg["task"]["type"], tf_cfg["task"]["index"]
    from mlcourse.runtime import exit_with_parent, quiet_tensorflow

    exit_with_parent()
    quiet_tensorflow()
    import tensorflow as tf
    import tf_keras

    from mlcourse import models

    tf_keras.utils.set_random_seed(cfg["seed"])
    directory = Path(cfg["directory"])
    print(f"{job}:{index} up, pid {os.getpid()}", flush=True)
    if cfg["mode"] == "parameter_server" and job in ("worker", "ps"):
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        server = tf.distribute.Server(resolver.cluster_spec(), job_name=job, task_index=index, protocol="grpc",
                                      start=True)
        _terminate_on_sigterm()
        server.join()  # serves until the coordinator is done and the cluster stops it
        return 0
    x, y, xt, yt = _load_data(cfg)
    is_chief = (job == "chief") or (job == "worker" and index == 0 and "chief" not in tf_cfg["cluster"])
    progress = _progress_callback(tf_keras, directory / f"progress-{job}-{index}.jsonl", is_chief)
    if cfg["mode"] == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _terminate_on_sigterm()
        global_batch = cfg["batch_size"] * strategy.num_replicas_in_sync
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=cfg["seed"]).batch(global_batch)
        ds = ds.with_options(opts).prefetch(2)
        with strategy.scope():
            model = models.build_model(cfg["hp"], flavor="tf_keras")
        backup = tf_keras.callbacks.BackupAndRestore(str(directory / "backup"))
        t0 = time.perf_counter()
        hist = model.fit(ds, epochs=cfg["epochs"], callbacks=[backup, progress], verbose=2)
        train_seconds = time.perf_counter() - t0
        acc = float(model.evaluate(xt, yt, batch_size=256, verbose=0)[1])
        weights = model.get_weights()
    elif cfg["mode"] == "parameter_server" and job == "chief":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        _terminate_on_sigterm()
        steps = int(np.ceil(len(x) / cfg["batch_size"]))

        def dataset_fn(input_context):
            ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=cfg["seed"]).repeat()
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            return ds.batch(cfg["batch_size"]).prefetch(2)

        with strategy.scope():
            model = models.build_model(cfg["hp"], flavor="tf_keras")
        t0 = time.perf_counter()
        hist = model.fit(tf_keras.utils.experimental.DatasetCreator(dataset_fn), epochs=cfg["epochs"],
                         steps_per_epoch=steps, callbacks=[progress], verbose=2)
        train_seconds = time.perf_counter() - t0
        weights = model.get_weights()  # read from the parameter servers
        local = models.build_model(cfg["hp"], flavor="tf_keras")
        local.set_weights(weights)
        acc = float(local.evaluate(xt, yt, batch_size=256, verbose=0)[1])
    else:
        raise ValueError(f"unknown task {job} in mode {cfg['mode']}")
    if is_chief:
        (directory / "result.json").write_text(json.dumps({
            "train_seconds": train_seconds, "test_accuracy": acc,
            "weights_finite": bool(all(np.isfinite(w).all() for w in weights)),
            "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()}}))
    print(f"{job}:{index} done, test accuracy {acc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "task":
        sys.exit(_task_main())
    print("usage: python -m mlcourse.distributed task   (with TF_CONFIG and MLCOURSE_TASK_CONFIG set;\n"
          "       started for you by LocalCluster, or by hand on each machine of a real cluster)")
