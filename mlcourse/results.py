"""Headline results that notebooks record for the course report.

A notebook calls ``results.record("tuning.best_accuracy", 0.884, notebook="01_tuning")``; when the
course command runs it, ``MLCOURSE_RESULTS_DIR`` is set and the value lands in
``<dir>/<notebook>.json``, which :mod:`mlcourse.course` turns into the report. Outside the course command
(a learner in JupyterLab), values are kept in memory only, and :func:`recorded` returns them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["record", "recorded", "load_all"]
_MEMORY: dict[str, dict] = {}


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):  # a DataFrame: keep it as records
        return [_jsonable(r) for r in value.to_dict(orient="records")]
    raise TypeError(f"Cannot record a {type(value).__name__}: record numbers, strings, lists, dicts or DataFrames.")


def record(key: str, value, notebook: str) -> None:
    """Record one headline result of ``notebook`` under ``key`` (overwrites the same key of this run)."""
    if not key or not isinstance(key, str):
        raise ValueError("key must be a non-empty string.")
    _MEMORY.setdefault(notebook, {})[key] = _jsonable(value)
    folder = os.environ.get("MLCOURSE_RESULTS_DIR")
    if folder:
        path = Path(folder) / f"{notebook}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_MEMORY[notebook], indent=2))
        tmp.replace(path)


def recorded(notebook: str | None = None) -> dict:
    """What this kernel recorded (for one notebook, or all)."""
    return dict(_MEMORY.get(notebook, {})) if notebook else {k: dict(v) for k, v in _MEMORY.items()}


def load_all(folder) -> dict:
    """Read every ``<notebook>.json`` of a results folder: ``{notebook: {key: value}}``."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            out[path.stem] = {"error": f"unreadable results file: {exc}"}
    return out
