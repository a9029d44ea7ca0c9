"""The checkers of notebook 03_nas: each passes a right answer and rejects typical wrong ones with an explanation."""
import copy
import time

import numpy as np
import pytest

from mlcourse import checks, nas


def test_mutate_checker():
    checks.check_mutate(nas.mutate)

    def in_place(arch, rng):  # forgets to copy
        arch["dense"] = 64 if arch["dense"] != 64 else 0
        return arch

    with pytest.raises(AssertionError, match="deepcopy"):
        checks.check_mutate(in_place)

    def maybe_same(arch, rng):  # may draw the value it already has
        a = copy.deepcopy(arch)
        a["dense"] = int(rng.choice(nas.MACRO_CHOICES["dense"]))
        return a

    with pytest.raises(AssertionError, match="unchanged"):
        checks.check_mutate(maybe_same)

    def only_dense(arch, rng):
        a = copy.deepcopy(arch)
        a["dense"] = [d for d in nas.MACRO_CHOICES["dense"] if d != a["dense"]][int(rng.integers(2))]
        return a

    with pytest.raises(AssertionError, match="never happened"):
        checks.check_mutate(only_dense)

    def two_changes(arch, rng):
        return nas.mutate(nas.mutate(arch, rng), rng)

    with pytest.raises(AssertionError, match="one change|unchanged|more than"):
        checks.check_mutate(two_changes)


def test_reinforce_checker_is_fast_and_strict():
    t0 = time.perf_counter()
    checks.check_reinforce_update(nas.reinforce_update)
    assert time.perf_counter() - t0 < 2.0

    def only_chosen(logits, actions, adv, lr):
        new = {k: v.copy() for k, v in logits.items()}
        for k, a in actions.items():
            new[k][a] += lr * adv
        return new

    with pytest.raises(AssertionError, match="onehot"):
        checks.check_reinforce_update(only_chosen)

    def descent(logits, actions, adv, lr):
        return nas.reinforce_update(logits, actions, -adv, lr)

    with pytest.raises(AssertionError, match="ascent|expected logits"):
        checks.check_reinforce_update(descent)

    def in_place(logits, actions, adv, lr):
        new = nas.reinforce_update(logits, actions, adv, lr)
        for k in logits:
            logits[k][:] = new[k]
        return logits

    with pytest.raises(AssertionError, match="in place"):
        checks.check_reinforce_update(in_place)


def test_to_hp_checker():
    checks.check_to_hp(nas.to_hp)

    def first_block_only(arch):  # the old to_hp: one kernel and conv for all blocks, default dropout
        if arch["space"] != "macro":
            return None
        b0 = arch["blocks"][0]
        return {"arch": "cnn", "filters": [b["filters"] for b in arch["blocks"]], "kernel_size": b0["kernel"],
                "conv": b0["type"], "dense_units": arch["dense"], "dropout": 0.0}

    with pytest.raises(AssertionError, match="conv|kernel_size"):
        checks.check_to_hp(first_block_only)

    def with_dropout(arch):
        hp = nas.to_hp(arch)
        return hp and {k: v for k, v in hp.items() if k != "dropout"}

    with pytest.raises(AssertionError, match="dropout"):
        checks.check_to_hp(with_dropout)
    with pytest.raises(AssertionError, match="micro"):
        checks.check_to_hp(lambda arch: {"arch": "cnn"})


def test_reinforce_update_leaves_untaken_decisions():
    logits = {"a": np.zeros(3), "b": np.array([1.0, -1.0])}
    new = nas.reinforce_update(logits, {"a": 0}, 1.0, 0.3)
    np.testing.assert_array_equal(new["b"], logits["b"])
    assert new["a"][0] > 0 and new["a"].sum() == pytest.approx(0)
    with pytest.raises(KeyError, match="unknown decision"):
        nas.reinforce_update(logits, {"c": 0}, 1.0, 0.1)


def test_macro_hypermodel_checker():
    checks.check_macro_hypermodel(nas.macro_hypermodel)

    def unconditional(hp):  # every block's choices declared without a scope
        depth = hp.Int("depth", 1, 3)
        blocks = [{k: hp.Choice(f"{k}{i}", nas.MACRO_CHOICES[k]) for k in ("filters", "kernel", "type")}
                  for i in range(3)]
        return nas.build({"space": "macro", "blocks": blocks[:depth],
                          "dense": hp.Choice("dense", nas.MACRO_CHOICES["dense"])})

    with pytest.raises(AssertionError, match="conditional_scope"):
        checks.check_macro_hypermodel(unconditional)

    def always_three(hp):  # declares the scopes but builds every block
        hp.Int("depth", 1, 3)
        blocks = []
        for i in range(3):
            with hp.conditional_scope("depth", [d for d in (1, 2, 3) if d > i]):
                blocks.append({k: hp.Choice(f"{k}{i}", nas.MACRO_CHOICES[k]) for k in ("filters", "kernel", "type")})
        blocks = [{k: (v if v is not None else nas.MACRO_CHOICES[k][0]) for k, v in b.items()} for b in blocks]
        return nas.build({"space": "macro", "blocks": blocks, "dense": hp.Choice("dense", nas.MACRO_CHOICES["dense"])})

    with pytest.raises(AssertionError, match="conv block"):
        checks.check_macro_hypermodel(always_three)
