"""Student copies from solution notebooks: ``solutions/`` is the only source authors edit.

In a solution notebook, exercise code sits between two marker lines::

    def precision_recall_f1(y_true, y_pred):
        ### BEGIN SOLUTION
        tp = ...
        ### END SOLUTION

The generator replaces each region with ``raise NotImplementedError("Exercise 0.1: ...")`` (same
indentation), tags the cell ``raises-exception`` (so the student notebook still runs top to bottom, with
the stub raising only in its own cell), and strips every output.

    python -m mlcourse.notebooks generate           # write notebooks/ from solutions/
    python -m mlcourse.notebooks generate --check   # fail if notebooks/ is out of date (CI)
    python -m mlcourse.notebooks record solutions/00_workflow.ipynb
        # execute a solution at smoke size; keep only the outputs of cells marked NBVAL_CHECK_OUTPUT
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from mlcourse.session import ROOT

__all__ = ["ROOT", "SOLUTIONS", "NOTEBOOKS", "use_this_checkout", "make_student", "generate", "same_notebook",
           "solution_notebooks", "strip_outputs", "record_outputs", "BEGIN", "END"]

SOLUTIONS, NOTEBOOKS = ROOT / "solutions", ROOT / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"
_EXERCISE = re.compile(r"Exercise\s+(\d+\.\d+)\s*:?\s*([^\n]*)")
# Anything that looks like a marker: a comment line with BEGIN/END and SOLUTION, any case, spacing or hashes.
_MARKERISH = re.compile(r"^\s*#+\s*(BEGIN|END)[\s_-]*SOLUTION\b", re.IGNORECASE)


def use_this_checkout() -> None:
    """Make kernels started from now on import *this* checkout's ``mlcourse`` (prepends it to PYTHONPATH).

    Without it, a kernel imports whatever ``pip install -e`` pointed at last, possibly another clone.
    """
    import os

    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in paths if p])


class GeneratorError(ValueError):
    """A solution notebook's markers are malformed; the message names the notebook and cell."""


def solution_notebooks(folder: Path = SOLUTIONS) -> list[Path]:
    """The numbered solution notebooks (``NN_name.ipynb``), in course order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def _literal(text: str) -> str:
    """``text`` as a Python string literal (double-quoted where possible, like a person would write it)."""
    lit = repr(text)
    if lit[0] == "'" and '"' not in text:
        lit = '"' + lit[1:-1] + '"'
    return lit


def _check_markers(cell, where: str) -> None:
    """Refuse marker lines the generator would not recognise (they would leak a solution into the student copy)."""
    for n, line in enumerate(cell.source.split("\n"), 1):
        if not _MARKERISH.match(line):
            continue
        if cell.cell_type != "code":
            raise GeneratorError(f"{where} ({cell.cell_type}), line {n}: solution marker {line.strip()!r} outside a "
                                 f"code cell; markers work only in code cells. Move the solution into a code cell "
                                 f"or reword the line.")
        if line.strip() not in (BEGIN, END):
            raise GeneratorError(f"{where}, line {n}: near-miss solution marker {line.strip()!r}; write exactly "
                                 f"{BEGIN!r} or {END!r} on a line of its own (any indentation).")


def _stub_source(source: str, where: str) -> str:
    lines, out, inside, indent = source.split("\n"), [], False, ""
    m = _EXERCISE.search(source)
    label = f"Exercise {m.group(1)}: {m.group(2).strip()}".rstrip(": ") if m else "Exercise"
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise GeneratorError(f"{where}: {BEGIN} inside another solution region.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}raise NotImplementedError({_literal(label + ' (your code here)')})")
        elif stripped == END:
            if not inside:
                raise GeneratorError(f"{where}: {END} without a {BEGIN}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise GeneratorError(f"{where}: {BEGIN} is never closed by {END}.")
    return "\n".join(out)


def strip_outputs(nb):
    """Remove outputs and execution counts from every code cell (in place); returns ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb


def make_student(nb, name: str = "notebook"):
    """The student copy of a solution notebook (a new notebook; the input is not changed).

    Raises :class:`GeneratorError` (naming the notebook and cell) for unbalanced markers, near-miss markers
    (``###BEGIN SOLUTION``, lower case, ``## BEGIN SOLUTION``, ``# END SOLUTION``...) and markers in markdown or
    raw cells: each would otherwise copy a solution into the student notebook."""
    nb = strip_outputs(copy.deepcopy(nb))
    for i, cell in enumerate(nb.cells):
        _check_markers(cell, f"{name}, cell {i}")
        if cell.cell_type != "code" or BEGIN not in cell.source:
            if cell.cell_type == "code" and END in cell.source:
                raise GeneratorError(f"{name}, cell {i}: {END} without a {BEGIN}.")
            continue
        cell.source = _stub_source(cell.source, f"{name}, cell {i}")
        tags = list(cell.metadata.get("tags", []))
        if "raises-exception" not in tags:
            tags.append("raises-exception")
        cell.metadata["tags"] = tags
    return nb


#: What a save by JupyterLab may change without changing the notebook's content: the kernel's own
#: description of itself (display name, language_info with its Python version) and the format's minor version.
SAVE_NOISE_METADATA = ("language_info",)


def _content(text: str):
    """A notebook's content, less what a JupyterLab save adds or rewrites (:data:`SAVE_NOISE_METADATA`, the
    kernelspec's display name, the nbformat minor version, empty cell metadata JupyterLab writes)."""
    nb = nbformat.reads(text, as_version=4)
    meta = {k: v for k, v in nb.metadata.items() if k not in SAVE_NOISE_METADATA}
    if "kernelspec" in meta:
        meta["kernelspec"] = {k: v for k, v in meta["kernelspec"].items() if k != "display_name"}
    cells = [(c.cell_type, c.source, {k: v for k, v in c.get("metadata", {}).items() if k not in ("trusted",)},
              c.get("outputs", []), c.get("execution_count")) for c in nb.cells]  # run cells are a change
    return meta, cells


def same_notebook(a: str, b: str) -> bool:
    """Whether two notebook texts hold the same content, less what opening and saving in JupyterLab changes
    (so that browsing the course never makes ``generate --check`` or ``catalog check`` fail)."""
    try:
        return _content(a) == _content(b)
    except Exception:  # noqa: BLE001 - an unreadable notebook is out of date and written again
        return False


def _dumps(nb) -> str:
    return nbformat.writes(nb) + ("" if nbformat.writes(nb).endswith("\n") else "\n")


def generate(src: Path = SOLUTIONS, dst: Path = NOTEBOOKS, check: bool = False) -> list[str]:
    """Write (or with ``check=True``, compare) the student copy of every solution notebook.

    Returns the names of the notebooks that were written, or in check mode that are out of date
    (including student notebooks with no solution left behind).
    """
    src, dst = Path(src), Path(dst)
    changed = []
    expected_names = set()
    for path in solution_notebooks(src):
        nb = nbformat.read(path, as_version=4)
        text = _dumps(make_student(nb, path.name))
        target = dst / path.name
        expected_names.add(path.name)
        if not target.is_file() or not same_notebook(target.read_text(), text):
            changed.append(path.name)
            if not check:
                dst.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    stale = [p.name for p in dst.glob("[0-9][0-9]_*.ipynb") if p.name not in expected_names]
    if check:
        changed += [f"{n} (no solution notebook)" for n in stale]
    return changed


def record_outputs(path: Path, timeout: int = 600) -> Path:
    """Execute a solution notebook at smoke size, then keep only outputs of cells marked
    ``# NBVAL_CHECK_OUTPUT`` (what nbval compares) and write it back."""
    import os

    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    use_this_checkout()
    os.environ["MLCOURSE_SIZE"] = "smoke"
    os.environ.setdefault("TQDM_DISABLE", "1")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if CHECK_MARK not in cell.source:  # nbval needs the execution count of the cells it compares
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)  # progress-bar widget state of this run: noise in every diff
    path.write_text(_dumps(nb))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlcourse.notebooks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write notebooks/ from solutions/")
    g.add_argument("--check", action="store_true", help="only report, exit 1 if out of date")
    r = sub.add_parser("record", help="execute solutions at smoke size, keep checked outputs")
    r.add_argument("paths", nargs="*", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "generate":
        changed = generate(check=args.check)
        if args.check and changed:
            print("notebooks/ is out of date for: " + ", ".join(changed) +
                  "\nRun `python -m mlcourse.notebooks generate` and commit the result.")
            return 1
        print(("up to date" if args.check else f"wrote {len(changed)} notebook(s)") +
              (f": {', '.join(changed)}" if changed and not args.check else ""))
        return 0
    for path in args.paths or solution_notebooks():
        print(f"recorded {record_outputs(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
