"""Checkers of the exercises of notebook 07 deployment."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_validate"]


def check_validate(fn) -> None:
    """Exercise 7.1: ``fn(images) -> float32 (N, 28, 28)``; ValueError for bad shape, NaN/inf, range."""
    good = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    out = np.asarray(fn(good))
    assert out.shape == (5, 28, 28) and out.dtype == np.float32, (
        f"A good batch of 5 uint8 images should come back as float32 (5, 28, 28); got {out.dtype} {out.shape}.")
    one = np.asarray(fn(good[0]))
    assert one.shape == (1, 28, 28), f"One 28 x 28 image should become a batch of one, (1, 28, 28); got {one.shape}."
    nan = good[:2].astype(np.float32)
    nan[0, 3, 3] = np.nan
    inf = good[:2].astype(np.float32)
    inf[1, 0, 0] = np.inf
    for bad, what in ((good[:, :20, :20], "cropped 20 x 20 images"), (good[..., None], "images with a channel axis"),
                      (nan, "a NaN pixel"), (inf, "an infinite pixel"), (good * 2.0, "pixels up to 510"),
                      (good - 300.0, "negative pixels")):
        try:
            fn(bad)
        except ValueError:
            continue
        raise AssertionError(f"A request with {what} was accepted: raise ValueError so the caller learns what is wrong.")
    _passed("7.1", "good requests pass (a single image becomes a batch); six kinds of bad ones are rejected.")
