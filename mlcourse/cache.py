"""The model cache: slow models are trained once and loaded in a second afterwards.

Notebooks train their slow models through :func:`cached_model`: the first run trains and saves the model
under the cache folder (``MLCOURSE_CACHE_DIR``, default ``runs/cache`` in the checkout); every later run
with the *same* recipe (name, hyperparameters, epochs, seed and a fingerprint of the training data) loads
it in a second. A different recipe is a different entry, so a cached model is never used by mistake, and
an entry is never overwritten. ``make workshop`` (:mod:`mlcourse.workshop`) fills it ahead of a session and
``workshop check`` counts its :func:`entries`; notebooks 05, 07 and 08 load from it.

A second, read-only layer, ``MLCOURSE_CACHE_SHARED`` (a workshop room's prepared cache, shared by every
learner), is looked in after one's own folder and never written: a damaged shared entry is said and skipped,
and what a learner trains goes into their own folder.

The cache repairs itself: an entry is written into a temporary folder beside it and renamed into place in
one step (two processes caching the same recipe at once: the first rename wins, the other loads the
winner's entry); an entry that cannot be read, whose weights are not finite, or whose files no longer match
the SHA-256 content hash recorded when it was cached (weights replaced, even by valid numbers) is moved aside
(to ``<entry>-previous-<time>``, never deleted) and trained again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from mlcourse import models, settings
from mlcourse.session import keep_aside

__all__ = ["cache_dir", "shared_dir", "fingerprint", "cached_model", "trained_model", "entries", "load_entry",
           "content_hash"]

_FILES = ("spec.json", "weights.npz", "recipe.json")
_TMP = ".tmp-"


def cache_dir() -> Path:
    """The folder of cached models: ``MLCOURSE_CACHE_DIR`` or ``runs/cache`` in the course checkout."""
    return settings.get("cache_dir")


def shared_dir() -> Path | None:
    """The read-only shared cache (``MLCOURSE_CACHE_SHARED``, e.g. a workshop room's prepared cache), or None."""
    return settings.get("cache_shared")


def fingerprint(*arrays) -> str:
    """A short SHA-1 of the arrays' shapes, types and full content: the same data gives the same fingerprint.

    Views are keyed by what they show (``x[::2]`` like its copy), the byte order by value; ``None`` is a
    value of its own. Object arrays (whose bytes are memory addresses) are refused.
    """
    h = hashlib.sha1()
    for a in arrays:
        if a is None:
            h.update(b"None;")
            continue
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"fingerprint needs numeric arrays, got dtype {a.dtype} (its bytes are memory "
                            "addresses, not the data): convert the data to a numeric NumPy array first.")
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def entries(folder=None) -> list[Path]:
    """The complete cache entries in ``folder`` (default :func:`cache_dir`), sorted: folders holding
    ``spec.json``, ``weights.npz`` and ``recipe.json``; entries moved aside and unfinished writes are left out."""
    folder = Path(folder) if folder is not None else cache_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(_TMP) and "-previous-" not in p.name
                  and all((p / f).is_file() for f in _FILES))


_HASHED = ("spec.json", "weights.npz")


def content_hash(folder) -> str:
    """SHA-256 of an entry's model files (``spec.json`` and ``weights.npz``), recorded in its ``recipe.json``."""
    h = hashlib.sha256()
    for f in _HASHED:
        h.update(f.encode() + b"\0")
        h.update((Path(folder) / f).read_bytes())
    return h.hexdigest()


def load_entry(folder):
    """Load the model of one cache entry; raise ValueError if it cannot be read, its files do not match the
    content hash recorded when it was cached, or its weights are not finite."""

    folder = Path(folder)
    try:
        recipe = json.loads((folder / "recipe.json").read_text())
        recorded = recipe.get("content_sha256")
        if not recorded:
            raise ValueError("it has no content hash (cached by an older version of the course)")
        if content_hash(folder) != recorded:
            raise ValueError("its files changed after it was cached (the content hash does not match)")
        model = models.load(folder)
    except Exception as exc:  # truncated zip, EOF, bad JSON, missing key or file: all mean "damaged"
        raise ValueError(f"unreadable: {type(exc).__name__}: {exc}") from exc
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise ValueError("unreadable: its weights are not finite (NaN or inf)")
    return model


def _set_aside(folder: Path, name: str, why: str) -> None:
    try:
        kept = keep_aside(folder)
    except (FileNotFoundError, OSError):  # another process moved or replaced it meanwhile
        kept = "(already moved by another process)"
    print(f"{name}: the cache entry {folder} is unreadable ({why}); moved aside to {kept}, training again")


def cached_model(name: str, train, x, y, verbose: bool = True, **recipe):
    """The model ``train()`` returns, from the cache when the same recipe was trained before.

    ``recipe`` holds everything that decides the result besides the data (hyperparameters, epochs, seed);
    the training data ``x, y`` enter through their :func:`fingerprint`. ``train`` must return a model built
    by :func:`mlcourse.models.build_model`. A cache entry that cannot be read, or holds weights that are not
    finite, is moved aside and retrained; the new entry is written atomically (see the module docstring).
    """

    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain non-empty folder name, got {name!r}.")
    key = {"name": name, "data": fingerprint(x, y), **recipe}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = cache_dir()
    folder = root / f"{name}-{digest}"
    shared = shared_dir()
    if not folder.exists() and shared is not None and (shared / folder.name).exists():
        try:
            model = load_entry(shared / folder.name)
            if verbose:
                print(f"{name}: loaded from the shared workshop cache ({shared / folder.name})")
            return model
        except ValueError as exc:  # read-only: said, left as it is, and trained into one's own cache
            print(f"{name}: the shared cache entry {shared / folder.name} is "
                  f"{str(exc).removeprefix('unreadable: ')}; left as it is (shared, read-only), training again")
    if folder.exists():
        try:
            model = load_entry(folder)
            if verbose:
                print(f"{name}: loaded from the workshop cache ({folder})")
            return model
        except ValueError as exc:
            _set_aside(folder, name, str(exc).removeprefix("unreadable: "))
    t0 = time.perf_counter()
    model = train()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{_TMP}{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        models.save(model, tmp)
        (tmp / "recipe.json").write_text(json.dumps({**key, "content_sha256": content_hash(tmp)}, indent=1,
                                                    sort_keys=True, default=str))
        try:
            os.rename(tmp, folder)  # atomic: the entry appears whole or not at all
        except OSError:  # another process wrote this entry meanwhile: keep its copy, drop ours
            if verbose:
                print(f"{name}: trained, but another process cached the same recipe first; using its entry")
            try:
                return load_entry(folder)
            except ValueError:
                return model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"{name}: trained in {time.perf_counter() - t0:.0f} s and cached in {folder}")
    return model


def trained_model(name: str, x, y, hp: dict | None, epochs: int, seed: int = 0, batch_size: int = 128,
                  model_name: str | None = None, verbose: bool = True):
    """:func:`mlcourse.models.train` (seed, build from ``hp``, fit ``epochs`` on ``(x, y)``) through
    :func:`cached_model`: trained the first time, loaded from the cache folder ``name-<digest>`` after.

    The one way the course's weeks get their slow, plainly trained models (05's baselines, 07's teachers,
    08's deployed model, 09's two models); ``make workshop`` fills the same entries ahead of a session.

    Lesson: 03_nas § 3 · Performance estimation: how good are cheap estimates?
    """

    hp = dict(hp or {})
    return cached_model(name, lambda: models.train(hp, x, y, epochs, batch_size=batch_size, seed=seed, name=model_name),
                        x, y, verbose=verbose, hp=hp, epochs=epochs, seed=seed, batch_size=batch_size)
