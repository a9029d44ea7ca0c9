"""Interleaved timing: every candidate is timed in every round, and the verdict follows the rounds."""
import time

import pytest

from mlcourse import timing


def test_interleaved_times_every_candidate_every_round():
    calls = []
    table = timing.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               rounds=4, number=3, warmup=1)
    assert list(table.index) == ["a", "b"]
    assert all(len(r) == 4 for r in table["rounds_ms"])
    assert calls.count("a") == calls.count("b") == 1 + 4 * 3
    # the order rotates: round 0 starts with a, round 1 with b
    assert calls[2:5] == ["a"] * 3 and calls[5:8] == ["b"] * 3 and calls[8:11] == ["b"] * 3
    assert (table["p95_ms"] >= table["min_ms"]).all()


def test_compare_verdict_follows_the_rounds():
    table = timing.interleaved({"slow": lambda: time.sleep(0.004), "fast": lambda: None}, rounds=5, number=2,
                               warmup=0)
    assert timing.compare(table, "fast", "slow").startswith("fast is faster than slow here")
    assert "faster in 5 of 5 rounds" in timing.compare(table, "fast", "slow")
    assert timing.compare(table, "slow", "fast").startswith("slow is slower than fast here")
    assert timing.per_round(table).shape == (5, 2)


def _table(rounds):
    import numpy as np
    import pandas as pd

    rows = [{"candidate": k, "median_ms": float(np.median(v)), "rounds_ms": list(v)} for k, v in rounds.items()]
    return pd.DataFrame(rows).set_index("candidate")


def test_compare_never_contradicts_its_medians():
    # a wins 8 of 10 rounds by a hair, loses 2 by a lot, and its median is higher: 05 section 6's case
    a = [1.00] * 8 + [3.0, 3.0]
    b = [1.01] * 8 + [0.5, 0.5]
    t = _table({"a": a, "b": b})
    t.loc["a", "median_ms"], t.loc["b", "median_ms"] = 0.298, 0.259
    sentence = timing.compare(t, "a", "b")
    assert sentence.startswith("a and b are too close to call here"), sentence
    assert "faster in 8 of 10 rounds" in sentence
    clear = _table({"a": [1.0] * 10, "b": [2.0] * 10})
    assert timing.compare(clear, "a", "b").startswith("a is faster than b here")
    assert timing.compare(clear, "b", "a").startswith("b is slower than a here")
    split = _table({"a": [1.0, 2.0] * 5, "b": [1.5] * 10})
    assert "too close to call" in timing.compare(split, "a", "b")


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="at least one candidate"):
        timing.interleaved({})
    with pytest.raises(TypeError, match="callable"):
        timing.interleaved({"a": 3})
    table = timing.interleaved({"a": lambda: None}, rounds=1, number=1)
    with pytest.raises(KeyError, match="candidates"):
        timing.compare(table, "a", "b")
