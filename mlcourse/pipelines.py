"""Fast input pipelines with ``tf.data``, measured step by step on the course's own data.

The course's images are written as PNG files packed into TFRecord shards (:func:`write_shards`), the way
images usually reach a training job. :func:`make_dataset` builds a pipeline that reads, decodes and
augments them, with any of the optimisations switched on:

* ``interleave``: read several shards at once (parallel I/O) instead of one after the other;
* ``parallel_map``: decode and augment several images at once (``num_parallel_calls=AUTOTUNE``);
* ``cache``: keep decoded images in memory after the first epoch (augmentation still runs every epoch);
* ``prefetch``: prepare the next batches while the model trains on the current one.

Two kinds of input work, because they pay differently on a laptop:

* **waiting** (:class:`Latency`): shards on network storage, images fetched from an object store. Each file
  open and each record costs a wait (``time.sleep`` in a ``tf.numpy_function``, the pattern of TensorFlow's
  *data performance* guide) that uses no core, so interleave and the parallel map overlap the waits even on 2
  cores, cache removes them after the first epoch, and prefetch hides what is left behind the model's step;
* **computing** (the default: local files): PNG decoding and augmentation compete with the model for the same
  cores, so on a 2-core laptop the steps have little to win (the model is the bottleneck).

Every pipeline here is exactly what its steps say: tf.data's own default graph rewrites
(``map_parallelization``, which runs a stateless map in parallel, and ``inject_prefetch``, which adds a
prefetch at the end) are switched off (:func:`plain_options`); left on, the "sequential" chain is silently
parallel and prefetched, and the steps seem to buy nothing (the measurement error of the course's first
reference run).

:func:`epoch_time_table` trains a small model for real with each step added in turn and reports the epoch
time, so the speed-up of each step is measured on *this* machine. The variants are timed **interleaved**
(:func:`mlcourse.timing.interleaved`: one epoch of each in turn, several rounds) with their spread, next to
the two bounds that explain where the time goes: the pipeline alone (no model) and the model alone (the same
training steps on batches already in memory, without tf.data). :func:`where_time_goes` says it in a sentence.

Taught in notebook ``06_distributed_training`` (section "Fast input pipelines"), whose exercise writes the
same chain by hand; :func:`make_dataset` is the tested version of it (``pipelines.make_dataset??``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mlcourse import models, timing
from mlcourse.session import quiet_import

__all__ = ["STEPS", "Latency", "write_shards", "decode_example", "augment", "plain_options", "make_dataset",
           "epoch_time_table", "where_time_goes", "dataset_ops"]

#: The optimisations, in the order the table adds them.
STEPS = ("interleave", "parallel_map", "cache", "prefetch")


@dataclass(frozen=True)
class Latency:
    """Simulated storage latency: ``open_s`` seconds to open each shard and ``record_s`` seconds to fetch each
    record (network storage, an object store). The waits are ``time.sleep`` calls inside ``tf.numpy_function``:
    they take time but no core, as real I/O does, so overlapping them pays even where the cores are busy.

    Lesson: 06_distributed_training § 7 · Fast input pipelines with tf.data.
    """

    open_s: float = 0.0
    record_s: float = 0.0

    def __post_init__(self):
        if self.open_s < 0 or self.record_s < 0:
            raise ValueError(f"latencies must be >= 0 seconds, got open_s={self.open_s}, record_s={self.record_s}.")

    def total(self, n_files: int, n_records: int) -> float:
        """Seconds of waiting in one sequential epoch over ``n_files`` shards holding ``n_records`` records."""
        return n_files * self.open_s + n_records * self.record_s


def _wait_then(seconds: float):
    def wait(value):
        time.sleep(seconds)
        return value
    return wait


def write_shards(x: np.ndarray, y: np.ndarray, directory, n_shards: int = 8) -> list[Path]:
    """Write images ``x`` (uint8, N x H x W) and labels ``y`` as PNGs in ``n_shards`` TFRecord files.

    Returns the shard paths. If ``directory`` already holds shards written from the same data, they are
    reused; shards of other data are never overwritten (choose another directory).

    Lesson: 06_distributed_training § 7 · Fast input pipelines with tf.data.
    """
    tf = quiet_import("tensorflow")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 3 or x.dtype != np.uint8 or len(x) != len(y):
        raise ValueError(f"x must be uint8 images N x H x W with one label each; got x {x.dtype} {x.shape}, "
                         f"y {y.shape}.")
    if not 1 <= n_shards <= len(x):
        raise ValueError(f"n_shards must be between 1 and the number of images ({len(x)}), got {n_shards}.")
    directory = Path(directory)
    manifest = directory / "manifest.json"
    fingerprint = {"n": int(len(x)), "shape": list(x.shape[1:]), "n_shards": n_shards,
                   "checksum": int(x[:: max(1, len(x) // 997)].astype(np.int64).sum() + y.astype(np.int64).sum())}
    paths = [directory / f"shard-{i:03d}.tfrecord" for i in range(n_shards)]
    if manifest.exists():
        if json.loads(manifest.read_text()) == fingerprint and all(p.exists() for p in paths):
            return paths
        raise FileExistsError(f"{directory} holds shards of other data; use another directory (nothing was "
                              "overwritten).")
    directory.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        with tf.io.TFRecordWriter(str(path)) as w:
            for img, label in zip(x[i::n_shards], y[i::n_shards]):
                png = tf.io.encode_png(img[..., None]).numpy()
                feat = {"png": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}
                w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())
    manifest.write_text(json.dumps(fingerprint))
    return paths


_SPEC = None


def decode_example(record):
    """Parse one TFRecord of :func:`write_shards` and decode its PNG: ``(image float32 28 x 28 x 1, label int64)``.

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    global _SPEC
    tf = quiet_import("tensorflow")
    if _SPEC is None:
        _SPEC = {"png": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    ex = tf.io.parse_single_example(record, _SPEC)
    img = tf.io.decode_png(ex["png"], channels=1)
    return tf.cast(img, tf.float32), ex["label"]


def augment(img, label, seed: int = 0):
    """Random horizontal flip and a random shift of up to 2 pixels; returns ``(image 28 x 28, label)``.

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    tf = quiet_import("tensorflow")
    img = tf.image.random_flip_left_right(img, seed=seed)
    img = tf.image.resize_with_crop_or_pad(img, 32, 32)
    img = tf.image.random_crop(img, (28, 28, 1), seed=seed)
    return tf.squeeze(img, -1), label


def plain_options():
    """``tf.data.Options`` that switch off tf.data's default rewrites ``map_parallelization`` (a stateless map
    becomes parallel) and ``inject_prefetch`` (a prefetch is added at the end): with them on, a "sequential"
    pipeline is not sequential and a comparison of the steps measures nothing.

    Lesson: 06_distributed_training § 7 · Fast input pipelines with tf.data.
    """
    tf = quiet_import("tensorflow")
    opts = tf.data.Options()
    opts.experimental_optimization.map_parallelization = False
    opts.experimental_optimization.inject_prefetch = False
    return opts


def make_dataset(files, steps=(), batch_size: int = 128, shuffle: int = 2048, seed: int = 0,
                 latency: Latency | None = None):
    """A ``tf.data`` pipeline over the shards ``files`` with the optimisations ``steps`` (see :data:`STEPS`).

    Each record is parsed, its PNG decoded (:func:`decode_example`), and the image augmented (:func:`augment`);
    batches are ``(images float32 N x 28 x 28 in 0..255, labels)``. With every step it is::

        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=AUTOTUNE)
        ds = ds.map(decode_example, num_parallel_calls=AUTOTUNE).cache()
        ds = ds.shuffle(2048).map(augment, num_parallel_calls=AUTOTUNE).batch(128).prefetch(AUTOTUNE)

    ``latency`` (a :class:`Latency`) adds a wait when each shard is opened (inside the interleaved function, so
    interleave overlaps them) and when each record is fetched (inside the decoding map, so the parallel map
    overlaps them, and cache skips them after the first epoch). tf.data's own rewrites are off
    (:func:`plain_options`): each pipeline runs exactly the steps asked for.

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    tf = quiet_import("tensorflow")
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown pipeline steps {sorted(unknown)}; known: {STEPS}.")
    files = [str(f) for f in files]
    if not files:
        raise ValueError("no shard files given: write them with write_shards() first.")
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"shard files missing: {missing[:3]}; write them with write_shards().")
    latency = latency or Latency()
    AUTO = tf.data.AUTOTUNE
    par = AUTO if "parallel_map" in steps else None

    def read(path):  # one shard; with latency, opening it waits first
        if latency.open_s:
            path = tf.numpy_function(_wait_then(latency.open_s), [path], tf.string, stateful=True)
            path.set_shape([])
        return tf.data.TFRecordDataset(path)

    def decode(record):  # fetch (with latency: wait) and decode one record
        if latency.record_s:
            record = tf.numpy_function(_wait_then(latency.record_s), [record], tf.string, stateful=True)
            record.set_shape([])
        return decode_example(record)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if "interleave" in steps:
        ds = ds.interleave(read, cycle_length=len(files), num_parallel_calls=AUTO, deterministic=False)
    else:
        ds = ds.flat_map(read)
    ds = ds.map(decode, num_parallel_calls=par)
    if "cache" in steps:
        ds = ds.cache()  # decoded images in memory; the random augmentation below still runs every epoch
    ds = ds.shuffle(shuffle, seed=seed).map(lambda i, lab: augment(i, lab, seed), num_parallel_calls=par)
    ds = ds.batch(batch_size)
    if "prefetch" in steps:
        ds = ds.prefetch(AUTO)
    return ds.with_options(plain_options())


def dataset_ops(dataset) -> list[str]:
    """The transformations of a ``tf.data`` pipeline, from the last to the source, as class names without
    underscores (``PrefetchDataset``, ``BatchDataset``, ``ParallelMapDataset``, ``CacheDataset``, ...).
    ``with_options`` wrappers are left out: they set options and transform nothing."""
    names, todo, seen = [], [dataset], set()
    while todo:
        d = todo.pop(0)
        if id(d) in seen:
            continue
        seen.add(id(d))
        name = type(d).__name__.lstrip("_")
        if name != "OptionsDataset":
            names.append(name)
        try:
            todo.extend(d._inputs())
        except Exception:  # a source dataset, or a wrapper without inputs
            pass
    return names


def _train_step(hp: dict, seed: int):
    """One small CNN and its compiled training step (Keras 3, named explicitly: ``tf.keras`` can resolve to
    tf_keras in a kernel that loaded it, and a tf_keras optimizer cannot train a Keras 3 model)."""
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    keras.utils.set_random_seed(seed)
    model = models.build_model(hp, flavor="keras3", compile=False)
    opt = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(reduce_retracing=True)
    def step(bx, by):
        with tf.GradientTape() as tape:
            loss = loss_fn(by, model(bx, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    return step


def epoch_time_table(files, hp: dict | None = None, batch_size: int = 128, rounds: int = 5, seed: int = 0,
                     latency: Latency | None = None):
    """Epoch time with each optimisation of :data:`STEPS` added in turn, timed interleaved with the spread.

    Every row trains the same small CNN for one epoch per round through the same compiled step (so every row pays
    for its input pipeline and the same model work); the rows take turns within each round
    (:func:`mlcourse.timing.interleaved`, one untimed warm-up epoch each, which fills the caches and traces the
    step), so a busy moment of the machine hits all of them. Two bounds: the pipeline **without a model** (first
    and last rows), and **the model alone**: the same steps on batches already in memory, with no tf.data at all.
    ``latency`` (a :class:`Latency`) makes the input wait for simulated storage (see :func:`make_dataset`).

    Columns: pipeline, epoch time (s) (median over rounds), min (s), p95 (s), spread, pipeline alone (s),
    speed-up (vs the first row), faster in (rounds won against the first row). ``table.attrs["timing"]`` holds
    the raw interleaved timing, for :func:`mlcourse.timing.compare`.

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    tf = quiet_import("tensorflow")
    hp = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.1, **(hp or {})}
    variants, steps = {}, []
    for name in (None,) + STEPS:
        if name:
            steps.append(name)
        variants["baseline (sequential)" if not name else f"+ {name}"] = tuple(steps)
    step = _train_step(hp, seed)

    def run_over(batches, train=True):
        def run():
            for bx, by in batches:
                if train:
                    step(bx, by)
        return run

    def make(st):
        return make_dataset(files, st, batch_size=batch_size, seed=seed, latency=latency)

    fits = {name: run_over(make(st)) for name, st in variants.items()}
    in_memory = [(tf.constant(bx), tf.constant(by)) for bx, by in make(())]  # decoded once, kept as tensors
    fits["model alone (batches in memory)"] = run_over(in_memory)
    alone = {"pipeline alone: baseline (sequential)": run_over(make(()), train=False),
             "pipeline alone: all steps": run_over(make(STEPS), train=False)}
    cands = {**fits, **alone}
    bar = tqdm(total=len(cands) * (rounds + 1), desc="tf.data epochs (interleaved rounds)", unit="epoch")

    def counted(run):
        def call():
            run()
            bar.update(1)
        return call

    try:
        t = timing.interleaved({k: counted(v) for k, v in cands.items()}, rounds=rounds, number=1, warmup=1)
    finally:
        bar.close()
    base = np.asarray(t.loc["baseline (sequential)", "rounds_ms"])
    rows = []
    for name in fits:
        r = np.asarray(t.loc[name, "rounds_ms"])
        rows.append({"pipeline": name, "epoch time (s)": t.loc[name, "median_ms"] / 1e3,
                     "min (s)": t.loc[name, "min_ms"] / 1e3, "p95 (s)": t.loc[name, "p95_ms"] / 1e3,
                     "spread": t.loc[name, "spread"],
                     "faster in": f"{int((r < base).sum())}/{len(r)}" if name != "baseline (sequential)" else ""})
    table = pd.DataFrame(rows)
    table["speed-up"] = table["epoch time (s)"].iloc[0] / table["epoch time (s)"]
    table["pipeline alone (s)"] = np.nan
    table.loc[0, "pipeline alone (s)"] = t.loc["pipeline alone: baseline (sequential)", "median_ms"] / 1e3
    table.loc[len(STEPS), "pipeline alone (s)"] = t.loc["pipeline alone: all steps", "median_ms"] / 1e3
    table.attrs["rounds"] = rounds
    table.attrs["timing"] = t
    return table


def where_time_goes(table: pd.DataFrame, cores: int | None = None, goal: float = 2.0) -> str:
    """A sentence from :func:`epoch_time_table`'s numbers: how the sequential epoch splits into input work and
    model work, the best speed-up the pipeline steps can give here (sequential epoch / model alone), how much of
    it they reached, whether all four steps met ``goal`` (a speed-up) by :func:`mlcourse.timing.compare`'s rule
    (medians and rounds agree), and whether the bounds are consistent (no pipeline can beat the model alone).

    Lesson: 06_distributed_training § ✏️ Exercise 6.3: write the fast pipeline.
    """
    rows = table.set_index("pipeline")
    seq = float(rows.loc["baseline (sequential)", "epoch time (s)"])
    best = float(rows.loc[f"+ {STEPS[-1]}", "epoch time (s)"])
    model = float(rows.loc["model alone (batches in memory)", "epoch time (s)"])
    reading = float(rows.loc["baseline (sequential)", "pipeline alone (s)"])
    cores = cores or os.cpu_count()
    bound = seq / model if model > 0 else float("nan")
    got = seq / best if best > 0 else float("nan")
    verdict = ""
    if "timing" in table.attrs:
        verdict = timing.compare(table.attrs["timing"], f"+ {STEPS[-1]}", "baseline (sequential)", unit="ms") + " "
    goal_text = "meets" if got >= goal and "is faster" in (verdict or "is faster") else "misses"
    text = (f"Sequential epoch {seq:.2f} s; the same pipeline iterated without a model {reading:.2f} s; the model "
            f"alone, on batches in memory, {model:.2f} s. All four steps: {best:.2f} s, {got:.2f}x ({goal_text} the "
            f"{goal:g}x goal). {verdict}")
    if seq < 0.95 * model:
        return text + ("The sequential epoch came out faster than the model alone, which cannot be: this run's "
                       "timings are noise (see the spread and the min column); run it again on a quieter machine.")
    if bound > 1.05:
        share = (got - 1) / (bound - 1)
        reached = f"they reached {share:.0%} of that bound" if share <= 1 else "they reached it (within the noise)"
        text += (f"No input pipeline can beat the model alone, so the most the steps could give here is {bound:.2f}x; "
                 f"{reached}. ")
    else:
        text += ("The model alone is about as slow as the sequential epoch, so the input work was not what limited "
                 "this run: the steps have (almost) nothing to win here. ")
    return text + (f"On {cores} cores, input work that computes (decoding) shares the cores with the model, so "
                   "overlapping them can hide at most the smaller part; input work that waits (storage) uses no "
                   "core, and overlapping it pays even here.")
