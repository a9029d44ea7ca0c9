"""What is free to speed up the course's trainings on this CPU? XLA, larger batches, a cached tf.data pipeline.

Trains the course's CNN (:func:`mlcourse.models.train`, Fashion-MNIST) in each variant, in Keras 3 and in tf_keras,
for the same number of epochs, on the same seeds, **interleaved** (round ``r`` trains every variant on seed ``r``,
in an order that rotates from round to round, so a busy neighbour hurts every variant alike), and prints one table:

* ``first epoch s``: the first epoch, which includes tracing the training step (and XLA's compilation);
* ``later epochs s``: the median of the other epochs (the steady speed);
* ``fit s``: the whole ``fit``, which is what a learner waits for;
* ``val acc``: final accuracy on the 10,000 test images, mean and spread over the seeds, and a paired verdict
  against the same Keras's baseline (:func:`mlcourse.stats.difference_verdict`);
* timing verdicts against the baseline from :func:`mlcourse.timing.compare` ("faster" only when the medians and
  the rounds agree), beside the CPU's flags (:func:`mlcourse.machine.describe`).

    python tools/bench_training.py                     # 20,000 images, 3 epochs, 3 seeds: about 10-15 minutes
    python tools/bench_training.py --n-train 2000 --epochs 2 --seeds 2 --flavors keras3   # a quick look

What it measured on the course's machines is written in :mod:`mlcourse.models`' docstring.
"""
from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mlcourse import data, machine, models, session, stats, timing

#: The variants, as options of :func:`mlcourse.models.train`; the first is the control.
VARIANTS = {
    "baseline (arrays, batch 128)": {},
    "XLA (jit_compile=True)": {"jit_compile": True},
    "batch 512": {"batch_size": 512},
    "tf.data cached": {"inputs": "tf.data"},
}
#: The course's CNNs: its default (the 02/07/08 shape) and 05's three-block conv net.
NETS = {"default": {"arch": "cnn", "filters": [32, 64], "dense_units": 128, "dropout": 0.2},
        "conv3": {"arch": "cnn", "filters": [32, 64, 128], "dense_units": 0, "dropout": 0.0}}


def epoch_clock(flavor: str, times: list):
    """A Keras callback (of ``flavor``) that appends each epoch's wall time, in seconds, to ``times``."""
    start = {}
    return models.get_keras(flavor).callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: start.update(t=time.perf_counter()),
        on_epoch_end=lambda epoch, logs=None: times.append(time.perf_counter() - start["t"]))


def run_once(hp: dict, flavor: str, options: dict, x, y, x_val, y_val, epochs: int, seed: int) -> dict:
    """Train one variant on one seed; its epoch times, whole-fit time and final validation accuracy."""
    options = dict(options)
    batch_size = options.pop("batch_size", 128)
    times: list[float] = []
    t0 = time.perf_counter()
    model = models.train(hp, x, y, epochs, batch_size=batch_size, seed=seed, flavor=flavor,
                         callbacks=[epoch_clock(flavor, times)], **options)
    fit_s = time.perf_counter() - t0
    acc = float(model.evaluate(x_val, y_val, batch_size=1024, verbose=0)[1])
    models.get_keras(flavor).backend.clear_session()
    del model
    gc.collect()
    return {"first": times[0], "later": float(np.median(times[1:])) if len(times) > 1 else float("nan"),
            "fit": fit_s, "acc": acc}


def as_timing_table(runs: dict, key: str) -> pd.DataFrame:
    """Per-round values of ``key`` in :func:`mlcourse.timing.interleaved`'s format, so that
    :func:`mlcourse.timing.compare` can judge them (the ``_ms`` columns hold seconds here: pass ``unit="s"``)."""
    rows = []
    for name, per_round in runs.items():
        t = np.asarray([r[key] for r in per_round])
        rows.append({"candidate": name, "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
                     "min_ms": float(t.min()), "spread": float((np.percentile(t, 95) - t.min()) / np.median(t)),
                     "rounds_ms": t.tolist()})
    return pd.DataFrame(rows).set_index("candidate")


def measure(hp: dict, flavors, variants, x, y, x_val, y_val, epochs: int, seeds: int) -> dict:
    """Every (flavor, variant) trained on seeds 0..seeds-1, interleaved: ``{"flavor | variant": [run, ...]}``."""
    runs: dict[str, list] = {}
    seed_of: dict[str, int] = {}
    bar = tqdm(total=seeds * len(flavors) * len(variants), desc="trainings", unit="fit")

    def candidate(flavor, variant):
        name = f"{flavor} | {variant}"

        def fit():
            seed = seed_of.get(name, 0)
            runs.setdefault(name, []).append(run_once(hp, flavor, VARIANTS[variant], x, y, x_val, y_val,
                                                      epochs, seed))
            seed_of[name] = seed + 1
            r = runs[name][-1]
            tqdm.write(f"{name}, seed {seed}: first epoch {r['first']:.1f} s, later epochs {r['later']:.1f} s, "
                       f"fit {r['fit']:.1f} s, val acc {r['acc']:.4f}")
            bar.update()
        return name, fit

    cands = dict(candidate(f, v) for f in flavors for v in variants)
    timing.interleaved(cands, rounds=seeds, number=1, warmup=0)  # the rotation; the times come from the runs
    bar.close()
    return runs


def table(runs: dict, flavors, variants) -> tuple[pd.DataFrame, list[str]]:
    """The bench table and its verdicts, each variant against the baseline of the same Keras."""
    base_name = next(iter(VARIANTS))
    later, fit = as_timing_table(runs, "later"), as_timing_table(runs, "fit")
    rows, lines = [], []
    for flavor in flavors:
        base = f"{flavor} | {base_name}"
        base_acc = np.array([r["acc"] for r in runs[base]])
        for variant in variants:
            name = f"{flavor} | {variant}"
            acc = np.array([r["acc"] for r in runs[name]])
            rows.append({"keras": flavor, "variant": variant,
                         "first epoch s": np.median([r["first"] for r in runs[name]]),
                         "later epochs s": later.loc[name, "median_ms"],
                         "fit s": fit.loc[name, "median_ms"],
                         "val acc": acc.mean(), "val acc sd": acc.std(ddof=1) if len(acc) > 1 else float("nan"),
                         "later epochs vs baseline": later.loc[name, "median_ms"] / later.loc[base, "median_ms"],
                         "fit vs baseline": fit.loc[name, "median_ms"] / fit.loc[base, "median_ms"]})
            if name == base:
                continue
            lines += [f"[{flavor}] {variant}:",
                      "  per epoch (later epochs): " + timing.compare(later, name, base, unit="s"),
                      "  whole fit: " + timing.compare(fit, name, base, unit="s"),
                      "  accuracy: " + stats.difference_verdict(acc - base_acc, variant, "baseline")]
    if len(flavors) == 2:
        a, b = (f"{f} | {base_name}" for f in flavors)
        lines += [f"[{flavors[0]} vs {flavors[1]}] baseline per epoch: " + timing.compare(later, a, b, unit="s")]
    return pd.DataFrame(rows), lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=20_000, help="training images (stratified subset)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per training (the same for every variant)")
    p.add_argument("--seeds", type=int, default=3, help="seeds = interleaved rounds")
    p.add_argument("--flavors", nargs="+", default=list(models.FLAVORS), choices=models.FLAVORS)
    p.add_argument("--net", default="default", choices=sorted(NETS), help="which of the course's CNNs")
    p.add_argument("--variants", nargs="+", type=int, default=list(range(len(VARIANTS))),
                   help="which variants, by number: " + ", ".join(f"{i} {v}" for i, v in enumerate(VARIANTS))
                   + " (0, the control, is always run)")
    p.add_argument("--out", help="also write the table as Markdown to this file")
    args = p.parse_args(argv)
    if args.epochs < 2 or args.seeds < 2:
        p.error("--epochs and --seeds must be at least 2 (a steady epoch and a spread need two).")
    session.quiet_tensorflow()
    ds = data.load_fashion_mnist()
    x, y = data.stratified_subset(ds.x_train, ds.y_train, args.n_train, seed=0)
    x_val = ds.x_test  # uint8, as the course feeds its models (they rescale themselves)
    names = list(VARIANTS)
    variants = [names[0]] + [names[i] for i in sorted(set(args.variants) - {0})]
    t0 = time.perf_counter()
    runs = measure(NETS[args.net], args.flavors, variants, x, y, x_val, ds.y_test, args.epochs, args.seeds)
    df, lines = table(runs, args.flavors, variants)
    head = (f"bench_training: net {args.net} {NETS[args.net]}, {len(x):,} training images ({ds.source}), "
            f"{args.epochs} epochs, seeds 0-{args.seeds - 1}, interleaved; {time.perf_counter() - t0:.0f} s in all\n"
            f"machine: {machine.describe()}; {session.device()}\n"
            f"int8 dot products: {machine.has(*machine.INT8_DOT)}; native bf16: {machine.has(*machine.NATIVE_BF16)}")
    text = df.round(3).to_markdown(index=False)
    print(head, text, *lines, sep="\n\n")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n\n".join([head, text, *lines]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
