"""Checkers of the exercises of notebook 03_nas (neural architecture search); the reference code is
:mod:`mlcourse.nas` (``mutate``, ``reinforce_update``, ``to_hp``, ``macro_hypermodel``)."""
from __future__ import annotations

import copy

import numpy as np

from mlcourse import models, nas
from mlcourse.checks._common import _passed
from mlcourse.nas import MACRO_CHOICES
from mlcourse.session import quiet_import, silenced

__all__ = ["check_mutate", "check_reinforce_update", "check_to_hp", "check_macro_hypermodel"]

_PARENTS = [
    {"space": "macro", "blocks": [{"filters": 16, "kernel": 3, "type": "standard"}], "dense": 32},
    {"space": "macro", "blocks": [{"filters": 8, "kernel": 5, "type": "separable"},
                                  {"filters": 32, "kernel": 3, "type": "standard"}], "dense": 0},
    {"space": "macro", "blocks": [{"filters": 64, "kernel": 3, "type": "standard"},
                                  {"filters": 16, "kernel": 5, "type": "separable"},
                                  {"filters": 32, "kernel": 5, "type": "standard"}], "dense": 64},
]


def _edit(parent: dict, child: dict) -> str | None:
    """The one edit that turns ``parent`` into ``child`` ("add", "remove", "dense", "filters", ...), else None."""
    pb, cb = parent["blocks"], child["blocks"]
    if len(cb) == len(pb) + 1:
        return "add" if any(cb[:i] + cb[i + 1:] == pb for i in range(len(cb))) else None
    if len(cb) == len(pb) - 1:
        return "remove" if any(pb[:i] + pb[i + 1:] == cb for i in range(len(pb))) else None
    if len(cb) != len(pb):
        return None
    diffs = [key for p, c in zip(pb, cb) for key in ("filters", "kernel", "type") if p[key] != c[key]]
    diffs += ["dense"] if parent["dense"] != child["dense"] else []
    return diffs[0] if len(diffs) == 1 else None


def check_mutate(fn) -> None:
    """Exercise 3.1: ``fn(arch, rng) -> arch``: a copy of a macro architecture with exactly one change.

    Lesson: 03_nas § ✏️ Exercise 3.1: the mutation operator.
    """

    seen = set()
    for parent in _PARENTS:
        for seed in range(60):
            before = copy.deepcopy(parent)
            child = fn(parent, np.random.default_rng(seed))
            assert parent == before, (
                "Your mutate changed the parent it was given: the parent is still in the population. Work on "
                "copy.deepcopy(arch) and return the copy.")
            assert isinstance(child, dict) and child.get("space") == "macro" and "blocks" in child, (
                f"Return an architecture dict like the parent ({{'space': 'macro', 'blocks': [...], 'dense': ...}}), "
                f"got {child!r}.")
            assert 1 <= len(child["blocks"]) <= 3, (
                f"The macro space has 1 to 3 blocks; your child has {len(child['blocks'])}. Only add a block below "
                "3 and only remove one above 1.")
            for b in child["blocks"]:
                for key in ("filters", "kernel", "type"):
                    assert b.get(key) in MACRO_CHOICES[key], (
                        f"Block {b} has {key}={b.get(key)!r}, not one of nas.MACRO_CHOICES[{key!r}].")
            assert child["dense"] in MACRO_CHOICES["dense"], f"dense={child['dense']!r} is not in MACRO_CHOICES."
            edit = _edit(parent, child)
            assert child != parent, (
                f"Parent {parent} came back unchanged (seed {seed}): a mutation must change something, or it wastes "
                "an evaluation. Draw the new value among the options *other than* the current one.")
            assert edit is not None, (
                f"{parent} -> {child} is more than one change. A mutation changes ONE thing: one block's filters, "
                "kernel or type, the dense units, or adds / removes one block.")
            seen.add(edit)
    missing = {"add", "remove", "dense", "filters", "kernel", "type"} - seen
    assert not missing, (f"Over 180 mutations, these edits never happened: {sorted(missing)}. Every kind of change "
                         "should be possible (choose the kind of edit at random).")
    a, b = fn(_PARENTS[1], np.random.default_rng(7)), fn(_PARENTS[1], np.random.default_rng(7))
    assert a == b, "Two calls with the same seed gave different children: draw every random choice from `rng`."
    _passed("3.1", "mutate makes exactly one valid change, never a no-op, leaves the parent intact, "
                   "and can add, remove or change anything.")


def _softmax(z):
    e = np.exp(np.asarray(z, float) - np.max(z))
    return e / e.sum()


def check_reinforce_update(fn) -> None:
    """Exercise 3.2: ``fn(logits, actions, advantage, lr) -> new logits``: one REINFORCE step, one softmax per
    decision; checked on fixed numbers, then by training a tiny controller on a fixed reward (< 2 s).

    Lesson: 03_nas § ✏️ Exercise 3.2: the REINFORCE update.
    """
    logits = {"depth": np.array([0.2, -0.1, 0.0]), "filters0": np.array([0.5, 0.0, -0.5, 1.0]),
              "dense": np.array([0.0, 0.0, 0.0])}
    keep = {k: v.copy() for k, v in logits.items()}
    new = fn(logits, {"depth": 2, "filters0": 1}, 0.5, 0.1)
    for k in logits:
        assert np.array_equal(logits[k], keep[k]), (
            "Your update changed the logits it was given in place; return a new dict of new arrays "
            "(copy each array first).")
    assert isinstance(new, dict) and set(new) == set(logits), (
        f"Return a dict with the same decisions as the input ({sorted(logits)}), got {type(new).__name__}.")
    np.testing.assert_allclose(new["dense"], logits["dense"], err_msg=(
        "'dense' was not among the actions (not taken this time), so its logits must not change."))
    for name, a in (("depth", 2), ("filters0", 1)):
        want = logits[name] + 0.1 * 0.5 * (np.eye(len(logits[name]))[a] - _softmax(logits[name]))
        got = np.asarray(new[name], float)
        if not np.allclose(got, want, atol=1e-9):
            hint = ("Only the chosen logit moved: the gradient of log softmax(z)[a] is onehot(a) - softmax(z), so "
                    "every other logit moves down by lr * advantage * p." if np.count_nonzero(got - logits[name]) == 1
                    else "The step is lr * advantage * (onehot(a) - softmax(z)), added (gradient ascent on reward).")
            raise AssertionError(f"Decision {name!r}, action {a}: expected logits {np.round(want, 5)}, got "
                                 f"{np.round(got, 5)}. {hint}")
    neg = fn(logits, {"filters0": 3}, -1.0, 0.5)
    assert _softmax(neg["filters0"])[3] < _softmax(logits["filters0"])[3], (
        "With a negative advantage (reward below the baseline) the chosen option must become LESS likely.")

    # a tiny controller on a fixed reward: 4 choices of filters, 2 of kernel; reward 1 for (64, 5), else small
    rng, theta, baseline = np.random.default_rng(0), {"filters0": np.zeros(4), "kernel0": np.zeros(2)}, None
    for _ in range(300):
        acts = {k: int(rng.choice(len(z), p=_softmax(z))) for k, z in theta.items()}
        reward = 1.0 if acts == {"filters0": 3, "kernel0": 1} else 0.1 * acts["filters0"] / 3
        baseline = reward if baseline is None else 0.8 * baseline + 0.2 * reward
        theta = fn(theta, acts, reward - baseline, 0.5)
    p = _softmax(theta["filters0"])[3] * _softmax(theta["kernel0"])[1]
    assert p > 0.8, (f"After 300 REINFORCE steps on a fixed reward (best: filters 64, kernel 5), the controller "
                     f"picks the best architecture with probability {p:.2f} only; it should be above 0.8.")
    _passed("3.2", "one REINFORCE step matches onehot - softmax; on a fixed reward the controller learns the best "
                   "choice (p > 0.8).")


def check_to_hp(fn) -> None:
    """Exercise 3.3: ``fn(arch) -> hp`` such that ``models.build_model(hp)`` is the network ``nas.build(arch)``
    scored: same layers, same parameter count, same weight shapes; None for a micro architecture.

    Lesson: 03_nas § ✏️ Exercise 3.3: hand the architecture on, exactly.
    """

    assert fn({"space": "micro", "ops": ["conv3"] * 4, "filters": 8, "n_cells": 1}) is None, (
        "A micro architecture (cells) is not in build_model's family: return None for it.")
    for arch in _PARENTS[1:]:
        hp = fn(copy.deepcopy(arch))
        assert isinstance(hp, dict), f"Return an hp dict for build_model, got {type(hp).__name__}."
        try:
            mine = models.build_model(hp, compile=False)
        except (ValueError, TypeError) as exc:
            raise AssertionError(f"models.build_model refused your hp {hp}: {exc}") from exc
        scored = nas.build(arch)
        a = [(type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in mine.layers]
        b = [(type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in scored.layers]
        if a != b:
            kinds = [t for t, _ in a]
            if "Dropout" in kinds:
                hint = "the search trained without dropout: set 'dropout': 0.0 (build_model's default is 0.2)."
            elif [t for t, _ in a if "Conv" in t] != [t for t, _ in b if "Conv" in t]:
                hint = "the conv types differ: give 'conv' as a list, one 'standard'/'separable' per block."
            else:
                hint = ("the weight shapes differ: give 'kernel_size' as a list (one per block), 'filters' per block, "
                        "and 'dense_units' = the arch's dense (0 for none).")
            raise AssertionError(f"For {arch}, build_model(your hp) is not the scored network: {hint}\n"
                                 f"  yours:  {a}\n  scored: {b}")
        assert models.count_params(mine) == scored.count_params()
        assert hp.get("learning_rate", models.DEFAULTS["learning_rate"]) == 1e-3 and \
            hp.get("activation", "relu") == "relu", "The search trained with ReLU and Adam at 1e-3: keep those."
    _passed("3.3", "build_model(to_hp(arch)) rebuilds the scored network exactly (layers, shapes, parameters).")


def check_macro_hypermodel(fn) -> None:
    """Exercise 3.4: ``fn(hp) -> compiled Keras 3 model``: the macro space declared with keras-tuner (``depth``
    1-3; ``filters{i}``, ``kernel{i}``, ``type{i}`` per block, each active only when ``depth > i``; ``dense``), the
    model built for the values drawn; then a real 2-trial ``kt.RandomSearch`` on tiny data.

    Lesson: 03_nas § ✏️ Exercise 3.4: the macro space as a keras-tuner hypermodel.
    """
    import tempfile

    kt = quiet_import("keras_tuner")
    names = ["depth"] + [f"{k}{i}" for i in range(3) for k in ("filters", "kernel", "type")] + ["dense"]
    hp = kt.HyperParameters()
    model = fn(hp)
    assert model is not None and models.flavor_of(model) == "keras3", (
        "Return a Keras 3 model (nas.build(arch) builds one): keras-tuner builds and trains what you return.")
    assert getattr(model, "optimizer", None) is not None and getattr(model, "compiled", True), (
        "Return a *compiled* model (nas.build compiles it): the tuner calls fit on it.")
    declared = {p.name: p for p in hp.space}
    missing = [n for n in names if n not in declared]
    assert not missing, f"Declare every decision of the macro space; missing: {missing} (declared: {list(declared)})."
    depth = declared["depth"]
    assert type(depth).__name__ == "Int" and (depth.min_value, depth.max_value) == (1, 3), (
        'depth must be hp.Int("depth", 1, 3).')
    for i in range(3):
        for key in ("filters", "kernel", "type"):
            p = declared[f"{key}{i}"]
            assert list(getattr(p, "values", [])) == list(nas.MACRO_CHOICES[key]), (
                f"{key}{i} must be hp.Choice over nas.MACRO_CHOICES[{key!r}] = {nas.MACRO_CHOICES[key]}.")
            wanted = [d for d in (1, 2, 3) if d > i]
            conds = [(c.name, sorted(c.values)) for c in p.conditions]
            if i > 0:
                assert conds == [("depth", wanted)], (
                    f"{key}{i} is declared with conditions {conds}: declare block {i}'s choices inside "
                    f'hp.conditional_scope("depth", {wanted}), so they are active only in networks with a block {i}.')
    assert list(declared["dense"].values) == list(nas.MACRO_CHOICES["dense"]) and not declared["dense"].conditions, (
        'dense must be hp.Choice("dense", nas.MACRO_CHOICES["dense"]), outside any conditional scope.')
    for d in (1, 2, 3):
        fixed = kt.HyperParameters()
        fixed.Fixed("depth", d)
        fixed.Fixed("filters0", 64)
        fixed.Fixed("type0", "separable")
        fixed.Fixed("dense", 32)
        m = fn(fixed)
        convs = [layer for layer in m.layers if "Conv" in type(layer).__name__]
        assert len(convs) == d, f"With depth = {d} the network must have {d} conv block(s), yours has {len(convs)}."
        assert type(convs[0]).__name__ == "SeparableConv2D" and convs[0].filters == 64, (
            "Build block 0 from the values hp returns (with filters0 = 64, type0 = 'separable' fixed, the first conv "
            f"is a {type(convs[0]).__name__} with {convs[0].filters} filters).")
        assert any(type(layer).__name__ == "Dense" and layer.units == 32 for layer in m.layers), (
            "With dense = 32 fixed, the network must have a Dense(32) layer before the output.")
        active = [n for n in names if fixed.is_active(n)]
        extra = [n for n in active if n[-1].isdigit() and int(n[-1]) >= d]
        assert not extra, f"With depth = {d}, {extra} should be inactive (use hp.conditional_scope)."
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (96, 28, 28)).astype("uint8"), np.arange(96) % 10
    with tempfile.TemporaryDirectory() as folder, silenced():
        tuner = kt.RandomSearch(fn, objective="val_accuracy", max_trials=2, seed=0, directory=folder,
                                project_name="check_2_4")
        tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]), epochs=1, batch_size=32, verbose=0)
        trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2, f"The 2-trial RandomSearch finished {len(trials)} trial(s)."
    for t in trials:
        values = t.hyperparameters.values
        extra = [n for n in values if n[-1].isdigit() and int(n[-1]) >= values["depth"]]
        assert not extra, f"A depth-{values['depth']} trial carries values of blocks it has not: {extra}."
    _passed("3.4", "the macro space is a keras-tuner hypermodel with conditional blocks; a 2-trial RandomSearch "
                   "ran on it.")
