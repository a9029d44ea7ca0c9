"""Headline results that notebooks record for the course report.

A notebook calls ``results.record("tuning.best_accuracy", 0.884, notebook="02_tuning")``; when the
course command runs it, ``MLCOURSE_RESULTS_DIR`` is set and the value lands in
``<dir>/<notebook>.json``, which :mod:`mlcourse.course` turns into the report. Outside the course command
(a learner in JupyterLab), values are kept in memory only, and :func:`recorded` returns them.

Results also pass from week to week: 02_tuning saves its winner (``<work_dir>/best_model/``), 03_nas the
winner of a measured comparison between its NAS pick and 02's model (``<work_dir>/nas_choice.json``), and
:func:`chosen_hp` hands that winner to 05 (compression), 07 (distillation) and 08 (deployment), with a fixed
recipe as the fallback.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from mlcourse import settings

__all__ = ["record", "recorded", "load_all", "json_kind", "chosen_hp", "CHOICE_FILES"]

#: Where the weeks leave their choice: 03_nas's compared winner, then 02_tuning's tuned CNN.
CHOICE_FILES = ("nas_choice.json", "best_model/spec.json")
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
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame: keep it as records
        if type(value.index).__name__ != "RangeIndex":  # row names (timing tables: the candidates) are data too
            try:
                value = value.reset_index()
            except ValueError:  # the index's name is also a column's: that column already names the rows
                pass
        return [_jsonable(r) for r in value.to_dict(orient="records")]
    raise TypeError(f"Cannot record a {type(value).__name__}: record numbers, strings, lists, dicts or DataFrames.")


def record(key: str, value, notebook: str) -> None:
    """Record one headline result of ``notebook`` under ``key`` (overwrites the same key of this run).

    Lesson: 00_workflow § 2 · The one metric; also used in 01_training, 02_tuning, 03_nas,
    04_dimensionality_reduction, 05_compression, 06_distributed_training, 07_distillation_ensembles, 08_deployment,
    09_runtimes, 10_capstone.
    """
    if not key or not isinstance(key, str):
        raise ValueError("key must be a non-empty string.")
    _MEMORY.setdefault(notebook, {})[key] = _jsonable(value)
    folder = settings.get("results_dir")
    if folder:
        path = Path(folder) / f"{notebook}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_MEMORY[notebook], indent=2))
        tmp.replace(path)


def recorded(notebook: str | None = None) -> dict:
    """What this kernel recorded (for one notebook, or all).

    Lesson: 00_workflow § Summary.
    """
    return dict(_MEMORY.get(notebook, {})) if notebook else {k: dict(v) for k, v in _MEMORY.items()}


def json_kind(value) -> str:
    """What JSON calls the type of a parsed value (object, array, string, number, true/false, null): for error
    messages about a file that holds the wrong kind of JSON."""
    kinds = {dict: "object", list: "array", str: "string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "number")


def load_all(folder) -> dict:
    """Read every ``<notebook>.json`` of a results folder: ``{notebook: {key: value}}``.

    A file that is not a JSON object of results (random bytes, broken JSON, a list, ``null``) is never fatal to
    the others: its notebook gets one ``{"error": ...}`` entry that names the file and what to do, and a
    warning says the same."""
    import warnings

    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
            why = f"it is not a readable JSON file ({type(exc).__name__}: {exc})"
        else:
            if isinstance(data, dict):
                out[path.stem] = data
                continue
            why = f"it holds a JSON {json_kind(data)}, not an object of {{key: result}}"
        message = (f"unreadable results file {path}: {why}; run notebook {path.stem} again to write it anew, "
                   "or delete the file")
        warnings.warn(message, stacklevel=2)
        out[path.stem] = {"error": message}
    return out


def _read_hp(path: Path, problems: list) -> tuple[dict | None, dict]:
    """``(hp, whole file)`` of a choice file, or ``(None, {})`` with the reason added to ``problems``."""
    if not path.is_file():
        return None, {}
    try:
        data = json.loads(path.read_text())
        hp = data.get("hp")
    except (json.JSONDecodeError, OSError, AttributeError) as exc:
        problems.append(f"{path} unreadable ({exc})")
        return None, {}
    if isinstance(hp, dict) and hp:
        return dict(hp), data
    problems.append(f"{path} holds no hp")
    return None, {}


def chosen_hp(work_dir, fallback: dict, fallback_name: str) -> tuple[dict, str]:
    """The model the learner's own earlier weeks chose, as a :func:`mlcourse.models.build_model` hp dict.

    Looks in ``work_dir`` (see :func:`mlcourse.session.work_dir`) for 03_nas's ``nas_choice.json`` and 02_tuning's
    ``best_model/spec.json`` (each holds an ``"hp"`` dict), and returns ``(hp, where it came from and why)``:

    * 03 trains its NAS winner and 02's tuned CNN the same way on the same data and writes the winner of that
      measured comparison as ``nas_choice.json``'s ``hp`` (its ``"comparison"`` holds both scores): that winner
      is returned when the 02 model it was compared with is the one in ``best_model/spec.json`` now;
    * when 02's model is newer than that comparison, or ``nas_choice.json`` compared nothing (an older 03), 02's
      tuned CNN is returned: a model measured on the test set beats a low-fidelity search pick nobody compared;
    * with only one of the two files, that one; with neither, ``(fallback, fallback_name)``.

    A file that is there but cannot be read is reported in the returned source and skipped, never silently.

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in 03_nas,
    05_compression, 08_deployment.
    """
    problems: list[str] = []
    nas_hp = tuned_hp = None
    nas_file = tuned_file = None
    if work_dir is not None:
        nas_file, tuned_file = (Path(work_dir) / name for name in CHOICE_FILES)
        nas_hp, nas_data = _read_hp(nas_file, problems)
        tuned_hp, _ = _read_hp(tuned_file, problems)
    note = f" ({'; '.join(problems)})" if problems else ""
    if nas_hp is not None:
        comparison = nas_data.get("comparison") if isinstance(nas_data.get("comparison"), dict) else {}
        compared = {c.get("name"): c for c in comparison.get("candidates", []) if isinstance(c, dict)}
        if tuned_hp is None or compared.get("02_tuning", {}).get("hp") == tuned_hp:
            scores = ", ".join(f"{n} {c.get('score', float('nan')):.4f}" for n, c in compared.items())
            why = f" ({nas_data.get('winner', 'its hp')} won 03's comparison at one fidelity: {scores})" \
                if compared else ""
            return nas_hp, f"{nas_file}{why}{note}"
        why = ("03's NAS choice was compared with another 02 model (02 ran again since): run 03 again to compare"
               if compared.get("02_tuning") else "03's NAS choice was never compared with it at one fidelity")
        return tuned_hp, f"{tuned_file} (02's tuned CNN, since {why}){note}"
    if tuned_hp is not None:
        return tuned_hp, f"{tuned_file}{note}"
    return dict(fallback), fallback_name + note
