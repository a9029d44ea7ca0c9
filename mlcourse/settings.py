"""The course's settings: every ``MLCOURSE_*`` environment variable, read in one place, with its default.

The one switch a learner meets is the **size** of a run:

=========  ==========================================================  =====================================
size       what it is for                                              who gets it
=========  ==========================================================  =====================================
``smoke``  tiny data, seconds per notebook: checks that code runs;     the tests and CI
           its numbers mean nothing
``lesson`` minutes per notebook on a 2-core laptop, with numbers whose  a learner in JupyterLab (the default),
           verdicts agree with the full run's                          ``make lab``, a workshop room
``full``   the course's reference results (hours for the course)        ``make course`` and the report
=========  ==========================================================  =====================================

A notebook's parameters cell holds ``SIZE = None``: ``None`` follows ``MLCOURSE_SIZE``, and with that unset the
size is ``lesson``. Papermill and the course command pass ``SIZE`` (or set ``MLCOURSE_SIZE``). Each week keeps
its own table of sizes, ``SIZES = {"smoke": {...}, "lesson": {...}, "full": {...}}``, in its module, and reads
it with :func:`pick_sizes`.

Every variable, its meaning and its default is in :func:`defaults`; :func:`current` reads them strictly (a value
that is not understood is an error that says what to set, never a silent default).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SIZES", "Settings", "defaults", "current", "get", "size", "pick_sizes", "env_flag"]

#: The three sizes of a run, smallest first.
SIZES = ("smoke", "lesson", "full")

#: The checkout (the folder that holds ``mlcourse/``); ``session.ROOT`` is the same path.
_ROOT = Path(__file__).resolve().parent.parent

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def env_flag(name: str, hint: str) -> bool:
    """An on/off environment variable, read strictly: unset, ``0`` / ``false`` / ``no`` / ``off`` is False;
    ``1`` / ``true`` / ``yes`` / ``on`` is True (any case); anything else is a ValueError that names the variable,
    its value and ``hint`` (what to set it to), never a silent default."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r} is not understood: {hint}")


def defaults() -> dict:
    """Every ``MLCOURSE_*`` variable the course reads: ``{field: (variable, default, meaning)}``, in one place."""
    return {
        "size": ("MLCOURSE_SIZE", "lesson", "smoke | lesson | full: how big a run is (see this module's docstring)"),
        "work_dir": ("MLCOURSE_WORK_DIR", _ROOT / "runs", "where a learner's own results live (one tree per size)"),
        "cache_dir": ("MLCOURSE_CACHE_DIR", _ROOT / "runs" / "cache", "the cache of trained models (written)"),
        "cache_shared": ("MLCOURSE_CACHE_SHARED", None, "a read-only prepared cache (a workshop room's), or none"),
        "data_dir": ("MLCOURSE_DATA_DIR", None, "a folder with Fashion-MNIST's four *-ubyte.gz files, or none"),
        "allow_download": ("MLCOURSE_ALLOW_DOWNLOAD", False, "1 lets the data loader download what is not on disk"),
        "results_dir": ("MLCOURSE_RESULTS_DIR", None, "where notebooks record results (set by the course command)"),
        "screenshots": ("MLCOURSE_SCREENSHOTS", None, "where the browser tests keep their screenshots, or none"),
    }


@dataclass(frozen=True)
class Settings:
    """The course's settings as read now from the environment (see :func:`defaults` for each field)."""

    size: str
    work_dir: Path
    cache_dir: Path
    cache_shared: Path | None
    data_dir: Path | None
    allow_download: bool
    results_dir: Path | None
    screenshots: Path | None


def _check_size(value: str, where: str) -> str:
    value = str(value).strip().lower()
    if value not in SIZES:
        raise ValueError(f"{where}={value!r} is not a size: use one of {', '.join(SIZES)} "
                         "(smoke: tiny, for tests; lesson: minutes, the default; full: the reference run).")
    return value


def size(given: str | None = None) -> str:
    """The size of this run: ``given`` (a notebook's ``SIZE`` parameter) if not None, else ``MLCOURSE_SIZE``,
    else ``"lesson"``. A value that is not a size is an error that lists the three."""
    if "MLCOURSE_SMOKE" in os.environ:
        raise ValueError("MLCOURSE_SMOKE was replaced by MLCOURSE_SIZE: set MLCOURSE_SIZE=smoke (tests), lesson "
                         "(the default) or full, and unset MLCOURSE_SMOKE.")
    if given is not None:
        return _check_size(given, "SIZE")
    return _check_size(os.environ.get("MLCOURSE_SIZE") or "lesson", "MLCOURSE_SIZE")


_FLAG_HINTS = {"allow_download": "set it to 1, true or yes to allow the download, or 0, false, no (or unset it) "
                                 "to stay offline."}


def get(name: str):
    """One setting (a field of :class:`Settings`: ``"size"``, ``"cache_dir"``, ...), read now from its variable,
    strictly; the other variables are not read (a typo in one never breaks the others)."""
    table = defaults()
    if name not in table:
        raise KeyError(f"no setting {name!r}; the settings are {sorted(table)}.")
    var, default, _ = table[name]
    if name == "size":
        return size()
    if isinstance(default, bool):
        return env_flag(var, _FLAG_HINTS[name])
    value = os.environ.get(var)
    return Path(value).expanduser() if value else default


def current() -> Settings:
    """Read every ``MLCOURSE_*`` variable now (strictly) into a :class:`Settings`."""
    return Settings(**{name: get(name) for name in defaults()})


def pick_sizes(table: dict, size_: str, given: dict | None = None) -> dict:
    """A week's defaults for ``size_`` (``table["smoke"]``, ``table["lesson"]`` or ``table["full"]``), with every
    value in ``given`` that is not None put over them. An unknown name is an error that lists the known ones; a
    table that lacks a size, or whose sizes name different parameters, is an error too.

    Lesson: 00_workflow § 00 · The workflow: use case, data, one metric, honest splits, a baseline, error analysis,
    monitoring; also used in 01_training, 04_dimensionality_reduction, 05_compression, 10_capstone.
    """
    size_ = _check_size(size_, "size")
    missing = [s for s in SIZES if s not in table]
    if missing:
        raise ValueError(f"the size table has no {missing} entry; it needs {list(SIZES)}.")
    names = {s: set(table[s]) for s in SIZES}
    if any(names[s] != names["full"] for s in SIZES):
        listed = {s: sorted(n) for s, n in names.items()}
        raise ValueError(f"the size table's sizes name different parameters: {listed}")
    sizes = dict(table[size_])
    given = given or {}
    unknown = set(given) - set(sizes)
    if unknown:
        raise ValueError(f"unknown size(s) {sorted(unknown)}; known: {sorted(sizes)}.")
    sizes.update({k: v for k, v in given.items() if v is not None})
    return sizes
