"""Distributed training for real, on one laptop: ``tf.distribute`` strategies with real processes.

Taught in notebook ``06_distributed_training``, which writes the strategy code, ``TF_CONFIG`` and the worker
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
* :func:`one_core_per_device`: data parallelism (``OneDeviceStrategy`` against ``MirroredStrategy``) and model
  parallelism (naive split against GPipe-style micro-batches) timed in a **fresh process whose two logical
  devices each get their own core** (one intra-op thread each, two inter-op threads), as two GPUs would: in a
  notebook's own process both devices share every core, and neither technique can pay.
* :func:`activation_bytes` and :func:`gradient_underflow`: what mixed precision is for, measured: 16-bit
  activations take half the bytes, and float16 gradients underflow to zero unless the loss is scaled.
* :data:`SIZES` / :func:`sizes`: the notebook's sizes (smoke, lesson, full), one table.

**Security.** tf.distribute's gRPC task servers bind every interface (``0.0.0.0``; TensorFlow offers no
loopback option) and are unauthenticated: :class:`LocalCluster` therefore starts its tasks in a private
network namespace holding only loopback (:class:`mlcourse.processes.ProcessGroup`), warns where it cannot, and
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

from mlcourse import data, machine, models, processes, session, timing
from mlcourse.headlines import Figure, Headlines
from mlcourse.session import quiet_import
from mlcourse.settings import pick_sizes

__all__ = ["headlines", "FIGURES",
           "SIZES", "sizes", "logical_cpus", "train_mirrored", "batch_size_sweep", "LocalCluster",
           "train_multi_worker", "train_parameter_server", "tf_config", "cpu_flags", "one_core_per_device",
           "data_parallel_names", "MODEL_PARALLEL", "MICRO_BATCHES",
           "split_model", "strategy_step", "activation_bytes", "gradient_underflow"]

SMALL_CNN = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.1}

#: Notebook 06's sizes, one table (its parameters cell reads it through :func:`sizes`). ``N_TRAIN`` training images,
#: ``N_TEST`` test images, ``EPOCHS`` per training run, ``SWEEP`` global batch sizes and ``SWEEP_EPOCHS`` for the
#: batch-size sweep, ``ROUNDS`` x ``NUMBER`` interleaved timing rounds x calls per round, ``WIDTH`` of the MLPs
#: (model parallelism, mixed precision), ``N_PIPE`` images in the tf.data tables, ``PIPE_ROUNDS`` their rounds,
#: ``OPEN_S`` / ``RECORD_S`` the simulated storage latency (seconds per shard opened, per record fetched).
SIZES = {
    "smoke": {"N_TRAIN": 1_500, "N_TEST": 500, "EPOCHS": 2, "SWEEP": (64, 512), "SWEEP_EPOCHS": 1, "ROUNDS": 3,
              "NUMBER": 2, "WIDTH": 256, "N_PIPE": 256, "PIPE_ROUNDS": 1, "OPEN_S": 0.01, "RECORD_S": 0.0002},
    "lesson": {"N_TRAIN": 3_000, "N_TEST": 1_000, "EPOCHS": 2, "SWEEP": (64, 1024), "SWEEP_EPOCHS": 1,
               "ROUNDS": 5, "NUMBER": 3, "WIDTH": 1024, "N_PIPE": 512, "PIPE_ROUNDS": 3, "OPEN_S": 0.1,
               "RECORD_S": 0.002},
    "full": {"N_TRAIN": 20_000, "N_TEST": 5_000, "EPOCHS": 4, "SWEEP": (32, 128, 512, 2048), "SWEEP_EPOCHS": 4,
             "ROUNDS": 9, "NUMBER": 10, "WIDTH": 1024, "N_PIPE": 10_000, "PIPE_ROUNDS": 7, "OPEN_S": 0.1,
             "RECORD_S": 0.001},
}


def sizes(size: str, **given) -> dict:
    """Notebook 06's sizes for ``size`` (``"smoke"``, ``"lesson"`` or ``"full"``; see :data:`SIZES`), with every
    value in ``given`` that is not None put over them.

    Lesson: 06_distributed_training § 06 · Distributed training and fast input pipelines, run for real.
    """
    return pick_sizes(SIZES, size, given)


# ------------------------------------------------------------------------------------------- in-process
def logical_cpus(n: int = 2) -> list[str]:
    """Split the CPU into ``n`` logical devices (call it before any TensorFlow computation); returns their names.

    A laptop has one CPU device; logical devices let MirroredStrategy place one replica on each, exactly
    as it would place one on each GPU. If TensorFlow already ran something, this cannot change any more: the
    devices already configured are returned when there are enough, otherwise the error says to restart the
    kernel.

    Lesson: 06_distributed_training § 06 · Distributed training and fast input pipelines, run for real.
    """
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

    Lesson: 06_distributed_training § ✏️ Exercise 6.2: a model in a strategy's scope.
    """
    tf = quiet_import("tensorflow")

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

    Lesson: 06_distributed_training § The global batch size.
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
    wanted = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile")
    have = machine.cpu()["flags"]
    return [f for f in wanted if f in have]


# ------------------------------------------------------------------------------ one core per logical device
#: How many micro-batches :func:`split_model`'s pipelined steps cut the batch into: few (where pipelining pays on a
#: CPU) and many (smaller bubble, but each op works on fewer rows and keeps its fixed cost).
MICRO_BATCHES = (2, 8)

#: The ways :func:`split_model` runs one training step of the same MLP.
MODEL_PARALLEL = ("one device", "split (naive)", *(f"split + pipelined ({m} micro-batches)" for m in MICRO_BATCHES))


def split_model(xb, yb, devices: list[str], width: int = 1024, seed: int = 0) -> dict:
    """A 5-layer MLP trained on the batch ``xb`` (N x 784), ``yb``: whole on ``devices[0]``; split in two stages
    (two layers on ``devices[0]``, three on ``devices[1]``: about the same multiply-adds each, so neither device
    waits for the other) run one after the other; and split with the batch cut into micro-batches (GPipe,
    :data:`MICRO_BATCHES`), so that stage 0 of one micro-batch can run while stage 1 works on the previous one.
    Returns ``{name: step}`` (names :data:`MODEL_PARALLEL`; each ``step()`` computes the gradients of one batch).
    The tested version of notebook 06's model-parallelism cell."""
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    keras.utils.set_random_seed(seed)
    if any(len(xb) % m for m in MICRO_BATCHES):
        raise ValueError(f"a batch of {len(xb)} cannot be cut into {MICRO_BATCHES} equal micro-batches: use a "
                         f"multiple of {int(np.lcm.reduce(MICRO_BATCHES))}.")

    def dense(n_in, units, last=None):
        layers = [keras.layers.Dense(u, activation="relu") for u in units]
        return keras.Sequential([keras.Input((n_in,))] + layers + ([keras.layers.Dense(last)] if last else []))

    with tf.device(devices[0]):
        stage0 = dense(xb.shape[1], [width, width])
    with tf.device(devices[1]):
        stage1 = dense(width, [width, width], last=10)
    whole = keras.Sequential([dense(xb.shape[1], [width, width]), dense(width, [width, width], last=10)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    split_vars = stage0.trainable_variables + stage1.trainable_variables

    @tf.function
    def one_device(bx, by):
        with tf.device(devices[0]), tf.GradientTape() as tape:
            loss = loss_fn(by, whole(bx))
        return tape.gradient(loss, whole.trainable_variables)

    @tf.function
    def split(bx, by):
        with tf.GradientTape() as tape:
            with tf.device(devices[0]):
                h = stage0(bx)
            with tf.device(devices[1]):
                loss = loss_fn(by, stage1(h))
        return tape.gradient(loss, split_vars)

    def pipelined(micro):
        @tf.function
        def step(bx, by):
            with tf.GradientTape() as tape:
                losses = []
                for mx, my in zip(tf.split(bx, micro), tf.split(by, micro)):
                    with tf.device(devices[0]):
                        h = stage0(mx)
                    with tf.device(devices[1]):
                        losses.append(loss_fn(my, stage1(h)))
                loss = tf.add_n(losses) / micro
            return tape.gradient(loss, split_vars)
        return step

    xb, yb = tf.constant(xb), tf.constant(yb)
    piped = [pipelined(m) for m in MICRO_BATCHES]
    steps = [lambda: one_device(xb, yb), lambda: split(xb, yb)] + [lambda s=s: s(xb, yb) for s in piped]
    return dict(zip(MODEL_PARALLEL, steps))


def strategy_step(strategy, x, y, hp: dict, seed: int = 0):
    """One training step of the course's small CNN (``hp``) on the global batch ``x, y`` under ``strategy``, as a
    no-argument ``step()`` for :func:`mlcourse.timing.interleaved`. A custom loop: the model and its optimizer are
    created in ``strategy.scope()``; each step, ``strategy.run`` gives every replica its share of the batch, the
    loss is averaged over the *global* batch (``tf.nn.compute_average_loss``) and the optimizer sums the replicas'
    gradients (all-reduce) before one update.

    Lesson: 06_distributed_training § ✏️ Exercise 6.2: a model in a strategy's scope.
    """
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = models.build_model(hp, flavor="keras3", compile=False)
        opt = keras.optimizers.Adam(1e-3)
        opt.build(model.trainable_variables)
    per_example = keras.losses.SparseCategoricalCrossentropy(reduction="none")
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, y)).repeat())
    batches = iter(dist)

    def replica(bx, by):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(per_example(by, model(bx, training=True)), global_batch_size=len(x))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    @tf.function
    def step(batch):
        strategy.run(replica, args=batch)

    return lambda: step(next(batches))


def data_parallel_names(global_batch: int) -> tuple[str, str]:
    """The names of :func:`one_core_per_device`'s two data-parallel rows at ``global_batch``: one device, two.

    Lesson: 06_distributed_training § Where it pays: each device gets its own core.
    """
    return (f"OneDeviceStrategy (1 device, 1 core), global batch {global_batch}",
            f"MirroredStrategy (2 devices, 1 core each), global batch {global_batch}")


def one_core_per_device(directory, global_batches=(128, 512), width: int = 1024, batch: int = 256, rounds: int = 7,
                        number: int = 5, source: str = "auto", seed: int = 0, timeout: float = 600) -> dict:
    """Data and model parallelism timed where each logical device has its own core: in a fresh process (started by
    :class:`mlcourse.processes.ProcessGroup`) with one intra-op thread and two inter-op threads, set before
    TensorFlow runs anything, so each op uses one core and the two devices' ops run at the same time.

    Returns ``{"data parallel": table, "model parallel": table, "threads": {...}}``; each table is a
    :func:`mlcourse.timing.interleaved` table (one row per candidate, ``rounds_ms`` per round), ready for
    :func:`mlcourse.timing.compare`, plus ``cores used`` (CPU time / wall time while it ran: 2 means both cores
    worked all the time; on a machine busy with other work, less). Data parallel: one training step of the small
    CNN under ``OneDeviceStrategy`` and under ``MirroredStrategy`` over two devices (half the batch each), at each
    of ``global_batches`` (rows :func:`data_parallel_names`, column ``global batch``): a small batch, where the
    all-reduce and each op's fixed cost weigh most, and a large one. Model parallel: :func:`split_model`'s steps on
    ``batch`` images of ``width``-wide layers. A progress bar follows the two phases.

    Lesson: 06_distributed_training § Where it pays: each device gets its own core.
    """
    from tqdm.auto import tqdm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"global_batches": [int(b) for b in global_batches], "width": width, "batch": batch, "rounds": rounds,
              "number": number, "source": source, "seed": seed, "directory": str(directory)}
    (directory / "cores.json").write_text(json.dumps(config))
    progress, out = directory / "cores-progress.txt", directory / "cores-result.json"
    for f in (progress, out):
        f.unlink(missing_ok=True)
    threads = {"TF_NUM_INTRAOP_THREADS": 1, "TF_NUM_INTEROP_THREADS": 2, "OMP_NUM_THREADS": 1}
    bar = tqdm(total=2, desc="one core per device (fresh process)", unit="phase")

    def poll():
        done = len(progress.read_text().splitlines()) if progress.exists() else 0
        if done != bar.n:
            bar.update(done - bar.n)

    with processes.ProcessGroup(directory / "logs") as group:
        group.start("cores", [sys.executable, "-m", "mlcourse.distributed", "cores", str(directory / "cores.json")],
                    env=threads)
        try:
            code = group.wait(["cores"], timeout=timeout, on_poll=poll)["cores"]
        finally:
            poll()
            bar.close()
        if code:
            raise RuntimeError(f"the timing process failed (exit {code}):\n{group.log('cores')}")
    result = json.loads(out.read_text())
    tables = {k: pd.DataFrame(result[k]).set_index("candidate") for k in ("data parallel", "model parallel")}
    return {**tables, "threads": result["threads"]}


def _cores_used(candidates: dict):
    """The candidates wrapped so that each call adds its CPU time (every thread of this process) and its wall time
    to ``used[name]``: CPU / wall is how many cores the candidate really ran on (on a busy machine, fewer than the
    threads it asked for)."""
    used = {name: [0.0, 0.0] for name in candidates}

    def wrap(name, fn):
        def call():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            used[name][0] += time.process_time() - cpu
            used[name][1] += time.perf_counter() - wall
        return call

    return {name: wrap(name, fn) for name, fn in candidates.items()}, used


def _cores_main(config_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    processes.exit_with_parent()
    tf = quiet_import("tensorflow")
    tf.config.threading.set_intra_op_parallelism_threads(1)  # before any op: each op runs on one core
    tf.config.threading.set_inter_op_parallelism_threads(2)  # two ops (one per device) at the same time
    devices = logical_cpus(2)
    progress = Path(cfg["directory"]) / "cores-progress.txt"
    fm = data.load_fashion_mnist(source=cfg["source"])
    n = max(*cfg["global_batches"], cfg["batch"])
    x, y = data.stratified_subset(fm.x_train, fm.y_train, n, seed=cfg["seed"])
    x, y = x.astype("float32"), y.astype("int64")
    dp, batch_of = {}, {}
    for gb in cfg["global_batches"]:
        one, two = data_parallel_names(gb)
        dp[one] = strategy_step(tf.distribute.OneDeviceStrategy(devices[0]), x[:gb], y[:gb], SMALL_CNN, cfg["seed"])
        mirrored = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
        dp[two] = strategy_step(mirrored, x[:gb], y[:gb], SMALL_CNN, cfg["seed"])
        batch_of.update({one: gb, two: gb})
    dp, dp_used = _cores_used(dp)
    t_dp = timing.interleaved(dp, rounds=cfg["rounds"], number=cfg["number"], warmup=2)
    t_dp["cores used"] = [dp_used[k][0] / dp_used[k][1] for k in t_dp.index]
    t_dp["global batch"] = [batch_of[k] for k in t_dp.index]
    progress.write_text("data parallel\n")
    flat = x[:cfg["batch"]].reshape(cfg["batch"], -1) / 255
    mp, mp_used = _cores_used(split_model(flat, y[:cfg["batch"]], devices, width=cfg["width"], seed=cfg["seed"]))
    t_mp = timing.interleaved(mp, rounds=cfg["rounds"], number=cfg["number"], warmup=2)
    t_mp["cores used"] = [mp_used[k][0] / mp_used[k][1] for k in t_mp.index]
    with open(progress, "a") as f:
        f.write("model parallel\n")
    threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads(), "devices": devices}
    tables = {"data parallel": t_dp, "model parallel": t_mp}
    (Path(cfg["directory"]) / "cores-result.json").write_text(json.dumps(
        {**{k: t.reset_index().to_dict("records") for k, t in tables.items()}, "threads": threads}))
    return 0


# ----------------------------------------------------------------------------------------- mixed precision
def activation_bytes(model, x) -> pd.DataFrame:
    """Per layer of the Keras 3 ``model``: its compute dtype, the bytes of its output (activation) for the batch
    ``x``, the bytes of its stored variables, and the bytes of the weights it computes with (its variables cast to
    its compute dtype). Under a mixed policy the stored (master) weights stay float32 while the activations and
    the computing copy of the weights are 16-bit: half the bytes to move through memory.

    Lesson: 06_distributed_training § What mixed precision is for, measured.
    """
    keras = quiet_import("keras")
    tf = quiet_import("tensorflow")
    probe = keras.Model(model.inputs[0], [layer.output for layer in model.layers])
    outputs = probe(x)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    rows = []
    for layer, out in zip(model.layers, outputs):
        size = sum(int(np.prod(v.shape)) for v in layer.weights)
        rows.append({"layer": layer.name, "compute dtype": layer.compute_dtype,
                     "activation bytes": int(np.prod(out.shape)) * tf.as_dtype(out.dtype).size,
                     "stored weight bytes": sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
                                                for v in layer.weights),
                     "computing weight bytes": size * tf.as_dtype(layer.compute_dtype).size})
    return pd.DataFrame(rows)


def gradient_underflow(reference, grads) -> dict:
    """How many gradient values were lost: ``reference`` and ``grads`` are lists of gradient tensors (one per
    variable, the same variables), e.g. a float32 model's and the same weights' under ``mixed_float16``. Returns
    the number of values, the fraction that is zero in each, the fraction **lost to underflow** (non-zero in
    ``reference``, exactly zero in ``grads``), and the fraction of ``reference`` values smaller than float16's
    smallest positive number (2**-24, about 6e-8), which float16 cannot hold.

    Lesson: 06_distributed_training § What mixed precision is for, measured.
    """
    if len(reference) != len(grads):
        raise ValueError(f"{len(reference)} reference gradients but {len(grads)} to compare: use the same variables.")
    ref = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in reference])
    got = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    if ref.shape != got.shape:
        raise ValueError(f"the gradients differ in size ({ref.size} vs {got.size} values): use the same variables.")
    return {"values": int(ref.size), "zero (reference)": float(np.mean(ref == 0)), "zero": float(np.mean(got == 0)),
            "lost to underflow": float(np.mean((ref != 0) & (got == 0))),
            "below float16's smallest (reference)": float(np.mean((ref != 0) & (np.abs(ref) < 2.0**-24)))}


# ------------------------------------------------------------------------------------------- processes
def tf_config(cluster: dict[str, list[str]], task_type: str, index: int) -> dict:
    """The ``TF_CONFIG`` of one task: the whole cluster plus who this task is.

    Lesson: 06_distributed_training § The worker script.
    """
    if task_type not in cluster or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"No task {task_type}:{index} in cluster {cluster}.")
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


class LocalCluster:
    """Processes on localhost that form one ``tf.distribute`` cluster (started by :class:`processes.ProcessGroup`).

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

    Lesson: 06_distributed_training § The worker script.
    """

    def __init__(self, tasks: dict[str, int], directory, config: dict, threads_per_task: int = 1,
                 private_network: bool = True):
        if not tasks or any(int(n) < 1 for n in tasks.values()):
            raise ValueError(f"tasks must map job names to counts >= 1, got {tasks}.")
        self.directory = Path(directory)
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "config.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.cluster = {job: [f"localhost:{processes.free_port()}" for _ in range(int(n))] for job, n in tasks.items()}
        self.threads = threads_per_task
        self.group = processes.ProcessGroup(self.directory / "logs", private_network=private_network, grace=3.0)
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
        return {n: processes.listening_ports(p.pid) for n, p in self.procs.items() if p.poll() is None}

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
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        if not fresh:
            raise FileExistsError(f"{directory} already holds a run (logs, backups). Pass fresh=True to move it "
                                  "aside (nothing is deleted) or choose another directory.")
        session.keep_aside(directory)
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

    Lesson: 06_distributed_training § 3b · Fault tolerance: kill a worker, restart, resume.
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

    Lesson: 06_distributed_training § 4 · ParameterServerStrategy: asynchronous updates.
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
    processes.exit_with_parent()
    session.quiet_tensorflow()
    tf = quiet_import("tensorflow")
    tf_keras = quiet_import("tf_keras")

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

# ------------------------------------------------------------------------------------------------ headlines
def _biggest_step(pipe: list) -> str:
    """The pipeline step that saved the most epoch time over the row before it, e.g. "+ cache (-0.72 s)"."""
    saved, name = max((a["epoch time (s)"] - b["epoch time (s)"], b["pipeline"]) for a, b in zip(pipe, pipe[1:]))
    return f"{name} (-{saved:.2f} s)"


#: The report's figure of this week: the epoch time as each tf.data step is added.
FIGURES = (Figure("tf.data: epoch time as each step is added", "pipeline.png",
                  "Input pipeline: epoch time as each tf.data step is added", "tf.data: each step added", "bars",
                  x="epoch time (s)", label="pipeline", xlabel="epoch time (s)", ylabel="pipeline"),)


_FRESH = "fresh process (1 core per device)"


def headlines(rec: dict) -> list[dict]:
    """The course report's headlines from what ``06_distributed_training`` recorded (see
    :mod:`mlcourse.headlines`)."""
    h = Headlines(rec)
    ft = h.value("fault tolerance: worker killed mid-training, resumed from BackupAndRestore", dict)
    if ft and ft.get("resumed at epoch"):
        h.add("fault tolerance (MultiWorkerMirroredStrategy)",
              f"worker killed after epoch {ft['killed after epoch']}, resumed at epoch {ft['resumed at epoch']}, "
              f"epochs finished {ft['epochs finished']}")
    pipe = h.rows("tf.data: epoch time as each step is added")
    if pipe:
        h.add("tf.data: epoch time, sequential -> all steps",
              f"{pipe[0]['epoch time (s)']:.2f} s -> {pipe[-1]['epoch time (s)']:.2f} s "
              f"({pipe[-1]['speed-up']:.2f}x; biggest single step: {_biggest_step(pipe)})")
    goes = h.value("tf.data: where the time goes", str)
    if goes:
        h.add("tf.data: where the time goes", goes)
    reps = [r for r in h.rows("MirroredStrategy vs OneDeviceStrategy: examples/s, shared cores and one core per "
                              "device") or [] if r.get("where") == _FRESH and "global batch" in r]
    ups = []
    for gb in sorted({r["global batch"] for r in reps}):
        one, two = (next((r["examples/s"] for r in reps if r["strategy"] == n), None) for n in data_parallel_names(gb))
        if one and two:
            ups.append(f"global batch {gb}: {two / one:.2f}x")
    if ups:
        h.add("MirroredStrategy over OneDeviceStrategy, one core per device (examples/s)", "; ".join(ups))
    mp = {r.get("candidate"): r.get("median_ms") for r in h.rows("model parallelism: step time (ms), shared cores "
                                                                   "and one core per device") or []
          if r.get("where") == _FRESH}
    naive = mp.get("split (naive)")
    piped = [f"{name.split('(')[1].rstrip(')')}: {naive / mp[name]:.2f}x" for name in MODEL_PARALLEL[2:]
             if isinstance(mp.get(name), (int, float)) and isinstance(naive, (int, float))]
    if piped:
        h.add("pipelined over naive model split, one core per device", "; ".join(piped))
    for topic, steps in (
        ("model parallelism on 2 logical CPU devices sharing the cores, training step",
         h.rows("model parallelism: step time (ms), one device vs split vs pipelined")),
        ("mixed precision, training step on this CPU", h.rows("mixed precision: training step (ms) on this CPU")),
    ):
        if steps and "candidate" in steps[0]:
            h.add(topic, ", ".join(f"{r['candidate']} {r['median_ms']:.2f} ms (spread {r['spread']:.0%})"
                                   for r in steps))
    h.add_rows("mixed precision: float16 gradients lost to underflow",
               "mixed precision: float16 gradients lost to underflow",
               lambda r: f"{r['variant']}: {r['lost to underflow']:.3%}")
    return h.out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "task":
        sys.exit(_task_main())
    if len(sys.argv) > 2 and sys.argv[1] == "cores":
        sys.exit(_cores_main(sys.argv[2]))
    print("usage: python -m mlcourse.distributed task   (with TF_CONFIG and MLCOURSE_TASK_CONFIG set;\n"
          "       started for you by LocalCluster, or by hand on each machine of a real cluster)")
