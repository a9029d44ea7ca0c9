"""Fair timing on a shared machine: candidates timed side by side, interleaved, with their spread.

Timing variant A for a while and then variant B lets the machine decide the verdict: a busy neighbour during
B's turn makes B look slow. :func:`interleaved` runs the candidates in alternating rounds (A B C, B C A,
C A B, ...) on the same inputs, so each one sees the same machine, and keeps every round's per-call time;
:func:`compare` says whether one is faster than another in *this* run, with how often it was.

    >>> table = timing.interleaved({"float32": lambda: run(f32, x), "int8": lambda: run(i8, x)}, rounds=9)
    >>> print(timing.compare(table, "int8", "float32"))
    int8 is faster than float32 here: median 0.041 vs 0.105 ms (0.39x), faster in 9 of 9 rounds.

The verdict needs the medians and the rounds to agree (see :func:`compare`); a split decision is "too close
to call", whatever either count alone would say.

Used by the compression (05), distributed input pipeline (06), deployment (08) and runtimes (09) lessons.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["interleaved", "compare", "per_round"]


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int = 7, number: int = 20,
                warmup: int = 3) -> pd.DataFrame:
    """Time every candidate (a no-argument callable) in ``rounds`` interleaved rounds of ``number`` calls.

    Each candidate is called ``warmup`` times first (untimed). The order of the candidates rotates from
    round to round. Returns one row per candidate: ``median_ms`` (of the per-round means per call),
    ``p95_ms`` (95th percentile over rounds), ``min_ms``, ``spread`` ((p95 - min) / median) and the raw
    per-round times in ``rounds_ms`` (a list), so a verdict can count rounds.

    Lesson: 01_training § Folding BN into the convolution before it; also used in 02_tuning, 05_compression,
    06_distributed_training, 07_distillation_ensembles, 08_deployment, 09_runtimes, 10_capstone.
    """
    if not candidates:
        raise ValueError("Give at least one candidate: {name: callable}.")
    if rounds < 1 or number < 1:
        raise ValueError(f"rounds and number must be at least 1, got rounds={rounds}, number={number}.")
    names = list(candidates)
    for name in names:
        if not callable(candidates[name]):
            raise TypeError(f"candidate {name!r} must be a callable with no arguments, got {type(candidates[name])}.")
        for _ in range(warmup):
            candidates[name]()
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            fn = candidates[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t0) / number * 1e3)
    rows = []
    for name in names:
        t = np.asarray(times[name])
        med = float(np.median(t))
        rows.append({"candidate": name, "median_ms": med, "p95_ms": float(np.percentile(t, 95)),
                     "min_ms": float(t.min()), "spread": float((np.percentile(t, 95) - t.min()) / med) if med else 0.0,
                     "rounds_ms": [float(v) for v in t]})
    return pd.DataFrame(rows).set_index("candidate")


def per_round(table: pd.DataFrame) -> pd.DataFrame:
    """The per-round times of :func:`interleaved` as a rounds x candidates frame (for a plot).

    Lesson: 05_compression § 3 · Every variant side by side.
    """
    return pd.DataFrame({name: table.loc[name, "rounds_ms"] for name in table.index})


def compare(table: pd.DataFrame, a: str, b: str, unit: str = "ms") -> str:
    """A sentence built from the measurements: is ``a`` faster than ``b`` in this run, by how much, and in how
    many of the rounds (round ``i`` of both ran back to back, so the count is robust to a busy machine).

    One rule, which never contradicts the numbers it prints: ``a`` is *faster* only when its median is lower
    **and** it was faster in at least 80 % of the rounds; *slower* only when its median is higher and it was
    faster in at most 20 % of the rounds; anything else (the medians and the rounds disagree, or the rounds
    are split) is *too close to call*.

    Lesson: 01_training § Folding BN into the convolution before it; also used in 02_tuning, 05_compression,
    06_distributed_training, 07_distillation_ensembles, 08_deployment, 09_runtimes, 10_capstone.
    """
    for name in (a, b):
        if name not in table.index:
            raise KeyError(f"{name!r} is not in the table; candidates: {list(table.index)}.")
    ta, tb = np.asarray(table.loc[a, "rounds_ms"]), np.asarray(table.loc[b, "rounds_ms"])
    wins = int((ta < tb).sum())
    ma, mb = float(table.loc[a, "median_ms"]), float(table.loc[b, "median_ms"])
    n = len(ta)
    if wins >= 0.8 * n and ma < mb:
        verdict = f"{a} is faster than {b} here"
    elif wins <= 0.2 * n and ma > mb:
        verdict = f"{a} is slower than {b} here"
    else:
        verdict = f"{a} and {b} are too close to call here"
    return (f"{verdict}: median {ma:.3g} vs {mb:.3g} {unit} ({ma / mb:.2f}x), "
            f"faster in {wins} of {n} rounds.")
