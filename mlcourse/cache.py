"""The model cache: slow models are trained once and loaded in a second afterwards.

Notebooks train their slow models through :func:`cached_model`: the first run trains and saves the model
under the cache folder (``MLCOURSE_CACHE_DIR``, default ``runs/cache`` in the checkout); every later run
with the *same* recipe (name, hyperparameters, epochs, seed and a fingerprint of the training data) loads
it in a second. A different recipe is a different entry, so a cached model is never used by mistake, and
an entry is never overwritten. ``make workshop`` (:mod:`mlcourse.workshop`) fills it ahead of a session.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from mlcourse.runtime import ROOT, keep_aside

__all__ = ["cache_dir", "fingerprint", "cached_model"]


def cache_dir() -> Path:
    """The folder of cached models: ``MLCOURSE_CACHE_DIR`` or ``runs/cache`` in the course checkout."""
    return Path(os.environ.get("MLCOURSE_CACHE_DIR") or ROOT / "runs" / "cache")


def fingerprint(*arrays) -> str:
    """A short SHA-1 of the arrays' shapes, types and bytes: the same data gives the same fingerprint."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def cached_model(name: str, train, x, y, verbose: bool = True, **recipe):
    """The model ``train()`` returns, from the cache when the same recipe was trained before.

    ``recipe`` holds everything that decides the result besides the data (hyperparameters, epochs, seed);
    the training data ``x, y`` enter through their :func:`fingerprint`. ``train`` must return a model built
    by :func:`mlcourse.models.build_model`. A cache entry that cannot be read is moved aside and retrained.
    """
    from mlcourse import models

    key = {"name": name, "data": fingerprint(x, y), **recipe}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = cache_dir() / f"{name}-{digest}"
    if (folder / "spec.json").exists():
        try:
            model = models.load(folder)
            if verbose:
                print(f"{name}: loaded from the workshop cache ({folder})")
            return model
        except (ValueError, FileNotFoundError) as exc:
            print(f"{name}: the cache entry {folder} is unreadable ({exc}); moved aside to "
                  f"{keep_aside(folder)}, training again")
    t0 = time.perf_counter()
    model = train()
    folder.mkdir(parents=True, exist_ok=True)
    models.save(model, folder)
    (folder / "recipe.json").write_text(json.dumps(key, indent=1, sort_keys=True, default=str))
    if verbose:
        print(f"{name}: trained in {time.perf_counter() - t0:.0f} s and cached in {folder}")
    return model
