"""Fast input pipelines with ``tf.data``, measured step by step on the course's own data.

The course's images are written as PNG files packed into TFRecord shards (:func:`write_shards`), the way
images usually reach a training job. :func:`make_dataset` builds a pipeline that reads, decodes and
augments them, with any of the optimisations switched on:

* ``interleave``: read several shards at once (parallel I/O) instead of one after the other;
* ``parallel_map``: decode and augment several images at once (``num_parallel_calls=AUTOTUNE``);
* ``cache``: keep decoded images in memory after the first epoch (augmentation still runs every epoch);
* ``prefetch``: prepare the next batches while the model trains on the current one.

:func:`epoch_time_table` trains a small model for real with each step added in turn and reports the epoch
time, so the speed-up of each step is measured on *this* machine.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["STEPS", "write_shards", "make_dataset", "epoch_time", "epoch_time_table"]

#: The optimisations, in the order the table adds them.
STEPS = ("interleave", "parallel_map", "cache", "prefetch")


def _tf():
    from mlcourse.runtime import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    return tf


def write_shards(x: np.ndarray, y: np.ndarray, directory, n_shards: int = 8) -> list[Path]:
    """Write images ``x`` (uint8, N x H x W) and labels ``y`` as PNGs in ``n_shards`` TFRecord files.

    Returns the shard paths. If ``directory`` already holds shards written from the same data, they are
    reused; shards of other data are never overwritten (choose another directory).
    """
    tf = _tf()
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


def make_dataset(files, steps=(), batch_size: int = 128, shuffle: int = 2048, seed: int = 0):
    """A ``tf.data`` pipeline over the shards ``files`` with the optimisations ``steps`` (see :data:`STEPS`).

    Each record is parsed, its PNG decoded, and the image augmented (random horizontal flip and a random
    shift of up to 2 pixels); batches are ``(images float32 N x 28 x 28 in 0..255, labels)``.
    """
    tf = _tf()
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
    spec = {"png": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def decode(record):
        ex = tf.io.parse_single_example(record, spec)
        img = tf.io.decode_png(ex["png"], channels=1)
        return tf.cast(img, tf.float32), ex["label"]

    def augment(img, label):
        img = tf.image.random_flip_left_right(img, seed=seed)
        img = tf.image.resize_with_crop_or_pad(img, 32, 32)
        img = tf.image.random_crop(img, (28, 28, 1), seed=seed)
        return tf.squeeze(img, -1), label

    ds = tf.data.Dataset.from_tensor_slices(files)
    if "interleave" in steps:
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=AUTO,
                           deterministic=False)
    else:
        ds = ds.flat_map(tf.data.TFRecordDataset)
    ds = ds.map(decode, num_parallel_calls=par)
    if "cache" in steps:
        ds = ds.cache()  # decoded images in memory; the random augmentation below still runs every epoch
    ds = ds.shuffle(shuffle, seed=seed).map(augment, num_parallel_calls=par).batch(batch_size)
    if "prefetch" in steps:
        ds = ds.prefetch(AUTO)
    return ds


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


def epoch_time_table(files, hp: dict | None = None, batch_size: int = 128, epochs: int = 2, repeats: int = 1,
                     seed: int = 0) -> pd.DataFrame:
    """Epoch time with each optimisation of :data:`STEPS` added in turn (plus iterating alone, no model).

    For every row a fresh small CNN is trained; the epoch time is the median over ``repeats`` of the last of
    ``epochs`` epochs. Columns: pipeline, epoch time (s), pipeline alone (s), speed-up vs the first row.
    """
    from tqdm.auto import tqdm

    from mlcourse import models

    hp = {"arch": "cnn", "filters": [16, 32], "dense_units": 64, "dropout": 0.1, **(hp or {})}
    rows, steps = [], []
    for step in tqdm((None,) + STEPS, desc="pipeline steps"):
        if step:
            steps.append(step)
        train, alone = [], []
        for r in range(repeats):
            ds = make_dataset(files, steps, batch_size=batch_size, seed=seed + r)
            alone.append(epoch_time(ds, None, epochs))
            train.append(epoch_time(ds, models.build_model(hp), epochs))
        rows.append({"pipeline": "baseline (sequential)" if not step else f"+ {step}",
                     "epoch time (s)": float(np.median(train)), "pipeline alone (s)": float(np.median(alone))})
    table = pd.DataFrame(rows)
    table["speed-up"] = table["epoch time (s)"].iloc[0] / table["epoch time (s)"]
    return table
