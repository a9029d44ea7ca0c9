"""Fast input pipelines with ``tf.data``, measured step by step on the course's own data.

The course's images are written as PNG files packed into TFRecord shards (:func:`write_shards`), the way
images usually reach a training job. :func:`make_dataset` builds a pipeline that reads, decodes and
augments them, with any of the optimisations switched on:

* ``interleave``: read several shards at once (parallel I/O) instead of one after the other;
* ``parallel_map``: decode and augment several images at once (``num_parallel_calls=AUTOTUNE``);
* ``cache``: keep decoded images in memory after the first epoch (augmentation still runs every epoch);
* ``prefetch``: prepare the next batches while the model trains on the current one.

:func:`epoch_time_table` trains a small model for real with each step added in turn and reports the epoch
time, so the speed-up of each step is measured on *this* machine. The variants are timed **interleaved**
(:func:`mlcourse.timing.interleaved`: one epoch of each in turn, several rounds) with their spread, next to
the two bounds that explain where the time goes on a small machine: the pipeline alone (no model) and the
model alone (training from tensors already in memory). :func:`where_time_goes` says it in a sentence.

Taught in notebook ``05_distributed_training`` (section "Fast input pipelines"), whose exercise writes the
same chain by hand; :func:`make_dataset` is the tested version of it (``pipelines.make_dataset??``).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mlcourse.runtime import quiet_import

__all__ = ["STEPS", "write_shards", "decode_example", "augment", "make_dataset", "epoch_time", "epoch_time_table",
           "where_time_goes", "dataset_ops"]

#: The optimisations, in the order the table adds them.
STEPS = ("interleave", "parallel_map", "cache", "prefetch")


def write_shards(x: np.ndarray, y: np.ndarray, directory, n_shards: int = 8) -> list[Path]:
    """Write images ``x`` (uint8, N x H x W) and labels ``y`` as PNGs in ``n_shards`` TFRecord files.

    Returns the shard paths. If ``directory`` already holds shards written from the same data, they are
    reused; shards of other data are never overwritten (choose another directory).
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
    """Parse one TFRecord of :func:`write_shards` and decode its PNG: ``(image float32 28 x 28 x 1, label int64)``."""
    global _SPEC
    tf = quiet_import("tensorflow")
    if _SPEC is None:
        _SPEC = {"png": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    ex = tf.io.parse_single_example(record, _SPEC)
    img = tf.io.decode_png(ex["png"], channels=1)
    return tf.cast(img, tf.float32), ex["label"]


def augment(img, label, seed: int = 0):
    """Random horizontal flip and a random shift of up to 2 pixels; returns ``(image 28 x 28, label)``."""
    tf = quiet_import("tensorflow")
    img = tf.image.random_flip_left_right(img, seed=seed)
    img = tf.image.resize_with_crop_or_pad(img, 32, 32)
    img = tf.image.random_crop(img, (28, 28, 1), seed=seed)
    return tf.squeeze(img, -1), label


def make_dataset(files, steps=(), batch_size: int = 128, shuffle: int = 2048, seed: int = 0):
    """A ``tf.data`` pipeline over the shards ``files`` with the optimisations ``steps`` (see :data:`STEPS`).

    Each record is parsed, its PNG decoded (:func:`decode_example`), and the image augmented (:func:`augment`);
    batches are ``(images float32 N x 28 x 28 in 0..255, labels)``. With every step it is::

        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=AUTOTUNE)
        ds = ds.map(decode_example, num_parallel_calls=AUTOTUNE).cache()
        ds = ds.shuffle(2048).map(augment, num_parallel_calls=AUTOTUNE).batch(128).prefetch(AUTOTUNE)
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
    AUTO = tf.data.AUTOTUNE
    par = AUTO if "parallel_map" in steps else None
    ds = tf.data.Dataset.from_tensor_slices(files)
    if "interleave" in steps:
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=AUTO,
                           deterministic=False)
    else:
        ds = ds.flat_map(tf.data.TFRecordDataset)
    ds = ds.map(decode_example, num_parallel_calls=par)
    if "cache" in steps:
        ds = ds.cache()  # decoded images in memory; the random augmentation below still runs every epoch
    ds = ds.shuffle(shuffle, seed=seed).map(lambda i, lab: augment(i, lab, seed), num_parallel_calls=par)
    ds = ds.batch(batch_size)
    if "prefetch" in steps:
        ds = ds.prefetch(AUTO)
    return ds


def dataset_ops(dataset) -> list[str]:
    """The transformations of a ``tf.data`` pipeline, from the last to the source, as class names without
    underscores (``PrefetchDataset``, ``BatchDataset``, ``ParallelMapDataset``, ``CacheDataset``, ...)."""
    names, todo, seen = [], [dataset], set()
    while todo:
        d = todo.pop(0)
        if id(d) in seen:
            continue
        seen.add(id(d))
        names.append(type(d).__name__.lstrip("_"))
        try:
            todo.extend(d._inputs())
        except Exception:  # a source dataset, or a wrapper without inputs
            pass
    return names


def epoch_time(dataset, model=None, epochs: int = 2) -> float:
    """Seconds of the last of ``epochs`` epochs: training ``model`` on ``dataset`` or, without a model,
    just iterating it. The first epoch fills caches and traces functions, so it is not the one reported."""
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        if model is None:
            for _ in dataset:
                pass
        else:
            with warnings.catch_warnings():  # Keras warns that a dataset of unknown length "ran out": expected
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                model.fit(dataset, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - t0)
    return times[-1]


def epoch_time_table(files, hp: dict | None = None, batch_size: int = 128, rounds: int = 5, seed: int = 0,
                     epochs: int | None = None, repeats: int | None = None):
    """Epoch time with each optimisation of :data:`STEPS` added in turn, timed interleaved with the spread.

    Every row trains its own small CNN for one epoch per round; the rows take turns within each round
    (:func:`mlcourse.timing.interleaved`, one untimed warm-up epoch each, which fills the caches and traces the
    functions), so a busy moment of the machine hits all of them. Two extra rows bound the result: the
    pipeline with every step iterated **without a model** and **the model alone**, trained from decoded tensors
    already in memory. Columns: pipeline, epoch time (s) (median over rounds), p95 (s), spread, pipeline alone
    (s), speed-up (vs the first row), faster in (rounds won against the first row). ``epochs``/``repeats`` are
    accepted for older calls and ignored.
    """
    from mlcourse import models, timing

    tf = quiet_import("tensorflow")
    hp = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.1, **(hp or {})}
    variants, steps = {}, []
    for step in (None,) + STEPS:
        if step:
            steps.append(step)
        variants["baseline (sequential)" if not step else f"+ {step}"] = tuple(steps)
    fits = {}

    # one model and one compiled training step for every row (same shapes, so traced once): each row pays for
    # its input pipeline and the same model work; a plain Python loop drives it, without fit()'s per-call overhead
    # the model's own Keras (Keras 3), named explicitly: `tf.keras` can resolve to tf_keras in a kernel that
    # loaded it (05 does, for MultiWorkerMirroredStrategy), and a tf_keras optimizer cannot train a Keras 3 model
    keras = models.get_keras("keras3")
    keras.utils.set_random_seed(seed)
    model = models.build_model(hp, flavor="keras3", compile=False)
    opt = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(reduce_retracing=True)
    def step(bx, by):
        with tf.GradientTape() as tape:
            loss = loss_fn(by, model(bx, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    def one_epoch(ds):
        def run():
            for bx, by in ds:
                step(bx, by)
        return run

    def iterate(ds):
        def run():
            for _ in ds:
                pass
        return run

    for name, st in variants.items():
        fits[name] = one_epoch(make_dataset(files, st, batch_size=batch_size, seed=seed))
    xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in make_dataset(files, (), batch_size=batch_size, seed=seed)])
    mem = tf.data.Dataset.from_tensor_slices((np.concatenate(xs), np.concatenate(ys))).batch(batch_size).prefetch(2)
    fits["model alone (tensors in memory)"] = one_epoch(mem)
    alone = {"baseline (sequential)": iterate(make_dataset(files, (), batch_size=batch_size, seed=seed)),
             "all steps": iterate(make_dataset(files, STEPS, batch_size=batch_size, seed=seed))}
    cands = {**fits, **{f"pipeline alone: {k}": v for k, v in alone.items()}}
    t = timing.interleaved(cands, rounds=rounds, number=1, warmup=1)
    base = np.asarray(t.loc["baseline (sequential)", "rounds_ms"])
    rows = []
    for name in fits:
        r = np.asarray(t.loc[name, "rounds_ms"])
        rows.append({"pipeline": name, "epoch time (s)": t.loc[name, "median_ms"] / 1e3,
                     "p95 (s)": t.loc[name, "p95_ms"] / 1e3, "spread": t.loc[name, "spread"],
                     "faster in": f"{int((r < base).sum())}/{len(r)}" if name != "baseline (sequential)" else ""})
    table = pd.DataFrame(rows)
    table["speed-up"] = table["epoch time (s)"].iloc[0] / table["epoch time (s)"]
    table["pipeline alone (s)"] = np.nan
    table.loc[0, "pipeline alone (s)"] = t.loc["pipeline alone: baseline (sequential)", "median_ms"] / 1e3
    table.loc[len(STEPS), "pipeline alone (s)"] = t.loc["pipeline alone: all steps", "median_ms"] / 1e3
    table.attrs["rounds"] = rounds
    return table


def where_time_goes(table: pd.DataFrame, cores: int | None = None) -> str:
    """A sentence from :func:`epoch_time_table`'s numbers: how the sequential epoch splits into input work and
    model work, the best speed-up the pipeline steps can give here (sequential epoch / model alone), and how
    much of it they reached."""
    import os

    rows = table.set_index("pipeline")
    seq = float(rows.loc["baseline (sequential)", "epoch time (s)"])
    best = float(rows.loc[f"+ {STEPS[-1]}", "epoch time (s)"])
    model = float(rows.loc["model alone (tensors in memory)", "epoch time (s)"])
    reading = float(rows.loc["baseline (sequential)", "pipeline alone (s)"])
    cores = cores or os.cpu_count()
    bound = seq / model if model > 0 else float("nan")
    got = seq / best if best > 0 else float("nan")
    goal = "meets" if got >= 1.5 else "misses"
    text = (f"Sequential epoch {seq:.2f} s; the same pipeline iterated without a model {reading:.2f} s; the model "
            f"alone, from tensors in memory, {model:.2f} s. All four steps: {best:.2f} s, {got:.2f}x ({goal} the "
            f"1.5x goal). ")
    if bound > 1.05:
        share = (got - 1) / (bound - 1)
        reached = f"they reached {share:.0%} of that bound" if share <= 1 else "they reached it (within the noise)"
        text += (f"No input pipeline can beat the model alone, so the most the steps could give here is {bound:.2f}x; "
                 f"{reached}. ")
    else:
        text += ("The model alone is about as slow as the sequential epoch, so the input work was not what limited "
                 "this run: the steps have (almost) nothing to win here. ")
    return text + (f"On {cores} cores the pipeline's threads and the model's threads share the same cores, so "
                   "overlapping them can hide at most the smaller of the two parts; with a GPU training, the CPU "
                   "is left to the pipeline and the same steps pay more.")
