"""The course at a glance: one table of notebooks that the landing notebook and the README are written from.

:data:`COURSE` holds what an author writes by hand (each notebook's topic and what a learner can do after
it), read from the week registry, :mod:`mlcourse.weeks`. Everything else is read from the files it
describes, so it cannot drift: the exercises from the solution notebooks (their ``# Exercise N.M: title``
lines), the times from the measured table in ``INSTRUCTOR.md`` (written by :mod:`mlcourse.benchmark`).

    python -m mlcourse.catalog write     # write notebooks/index.ipynb and the README's course table
    python -m mlcourse.catalog check     # exit 1 if either is out of date (the tests run this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from mlcourse import weeks
from mlcourse.notebooks import same_notebook
from mlcourse.session import ROOT

__all__ = ["COURSE", "exercises", "timings", "rows", "index_notebook", "readme_table", "write", "main"]

#: ``{stem: (topic, what a learner is able to do after it)}``, from the week registry (:mod:`mlcourse.weeks`).
COURSE = {w.stem: (w.title, w.outcome) for w in weeks.WEEKS}

_EXERCISE = re.compile(r"#\s*Exercise\s+(\d+\.\d+)\s*:\s*(.+)")
BEGIN = "### BEGIN SOLUTION"
README_START, README_END = (
    "<!-- course table: written by `python -m mlcourse.catalog write` -->",
    "<!-- end of course table -->",
)


def exercises(name: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """``[(number, title)]`` of one notebook's exercises, read from its solution notebook."""
    path = Path(root) / "solutions" / f"{name}.ipynb"
    if not path.is_file():
        return []
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            m = _EXERCISE.search(cell.source)
            if m:
                found.append((m.group(1), m.group(2).strip()))
    return found


_TIME_COLUMNS = {"full run": "full", "lesson": "lesson", "lesson, prepared room": "prepared", "smoke": "smoke"}


def timings(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """The measured times per notebook from INSTRUCTOR.md's table (written by :mod:`mlcourse.benchmark`):
    ``{name: {"full", "lesson", "prepared", "smoke"}}``, read by the table's header names."""
    path = Path(root) / "INSTRUCTOR.md"
    out, columns = {}, None
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "notebook":
            columns = {i: _TIME_COLUMNS[c] for i, c in enumerate(cells) if c in _TIME_COLUMNS}
        elif columns and re.fullmatch(r"\d\d_\w+", cells[0]):
            out[cells[0]] = {key: cells[i] for i, key in columns.items() if i < len(cells)}
    return out


def rows(root: Path = ROOT) -> list[dict]:
    """One dict per notebook that exists in ``solutions/``: name, title, outcome, exercises, times."""
    times = timings(root)
    out = []
    for path in sorted((Path(root) / "solutions").glob("[0-9][0-9]_*.ipynb")):
        name = path.stem
        if name not in COURSE:
            raise ValueError(f"{name} has no record in mlcourse.weeks.WEEKS: add its Week (topic, outcome, module, "
                             "checkers) there.")
        title, outcome = COURSE[name]
        out.append(
            {
                "name": name,
                "title": title,
                "outcome": outcome,
                "exercises": exercises(name, root),
                "times": times.get(name, {}),
            }
        )
    return out


def _times_text(t: dict) -> str:
    if not t:
        return "not measured yet"
    text = (f"lesson size {t.get('lesson', 'not measured yet')} (in a prepared room "
            f"{t.get('prepared', 'not measured yet')}), full run {t.get('full', 'not measured yet')}, "
            f"smoke {t.get('smoke', 'not measured yet')}")
    if "*" in text:  # INSTRUCTOR.md marks times measured before the notebook last grew
        text = text.replace("*", "") + " (the full-run times were measured before this notebook's newest sections)"
    return text


def index_notebook(root: Path = ROOT):
    """The landing notebook (``notebooks/index.ipynb``): the course map with links, times and exercises."""
    md = nbformat.v4.new_markdown_cell
    cells = [
        md(
            "# ML modeling in production: start here\n\n"
            "A course on making models **good, small, fast and scalable**, one notebook per week. Every notebook "
            "runs on this machine, offline, and prints what *it* measured: your numbers may differ from a "
            "classmate's, and the notebook's conclusions are built from yours.\n\n"
            "**How to work.** Open a notebook, read top to bottom, run each cell (Shift+Enter). Exercises are "
            "marked ✏️: replace `raise NotImplementedError(...)` with your code and run the checker cell under it; "
            "it says what is wrong. The worked answers are in `solutions/` (linked at each notebook below; try "
            "first).\n\n"
            "**Three sizes.** Every notebook's first code cell has `SIZE = None`, which runs the **lesson** size: "
            "minutes per notebook on a laptop, with numbers whose verdicts agree with the full run's (the times "
            "below). `SIZE = \"full\"` runs the course's reference sizes (hours for the course); "
            "`SIZE = \"smoke\"` runs the whole story on tiny data in about a minute, to check that the code runs "
            "(its numbers mean nothing). The environment variable `MLCOURSE_SIZE` sets the same for every "
            "notebook.\n\n"
            "**The course's own measurements**: the committed reference full run ([its report]"
            "(../reference/report.html), every notebook executed at full size in `reference/notebooks/`), and "
            "yours: [build/report.html](../build/report.html) exists once `make course` has run, and "
            "[build/smoke/report.html](../build/smoke/report.html) once `make smoke` has; a link that shows "
            "\"404: Not Found\" means that run has not been made on this machine yet (run the command, then "
            "reload). The measured times per notebook are in "
            "[INSTRUCTOR.md](../INSTRUCTOR.md); set-up and commands in the [README](../README.md)."
        )
    ]
    for r in rows(root):
        ex = "\n".join(f"  - ✏️ Exercise {n}: {t}" for n, t in r["exercises"]) or "  - (none yet)"
        cells.append(
            md(
                f"## [{r['name']}]({r['name']}.ipynb): {r['title']}\n\n"
                f"**After it you can** {r['outcome']}.\n\n"
                f"**Time** (2-core laptop, no GPU): {_times_text(r['times'])}.\n\n"
                f"**Exercises**:\n{ex}\n\n"
                f"Solutions, when you want them: [solutions/{r['name']}.ipynb](../solutions/{r['name']}.ipynb)."
            )
        )
    for i, cell in enumerate(cells):  # stable ids: the file changes only when its content does
        cell.id = f"course-map-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    # as JupyterLab saves it, so that opening the notebook leaves it unchanged (no "unsaved" mark, no autosave)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": ".".join(map(str, sys.version_info[:3])),
    }
    return nb


def readme_table(root: Path = ROOT) -> str:
    """The README's course table (between its two markers)."""
    lines = ["| notebook | topic | exercises | full run |", "|---|---|---|---|"]
    for r in rows(root):
        lines.append(
            f"| `{r['name']}` | {r['title']} | {len(r['exercises'])} | {r['times'].get('full', 'not measured yet')} |"
        )
    return "\n".join(lines)


def _readme_with_table(text: str, table: str) -> str:
    if README_START not in text or README_END not in text:
        raise ValueError(f"README.md has no course-table markers: add the two lines\n{README_START}\n{README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{table}\n{README_END}{tail}"


def write(root: Path = ROOT, check: bool = False) -> list[str]:
    """Write (or with ``check=True`` only compare) ``notebooks/index.ipynb`` and the README's table.

    Returns the files that were (or would be) changed.
    """
    root = Path(root)
    index = root / "notebooks" / "index.ipynb"
    readme = root / "README.md"
    wanted = {
        index: nbformat.writes(index_notebook(root)) + "\n",
        readme: _readme_with_table(readme.read_text(), readme_table(root)),
    }
    changed = []
    for path, text in wanted.items():
        if path == index and path.is_file() and same_notebook(path.read_text(), text):
            continue  # opened and saved by JupyterLab (or written on another Python): same content
        if not path.is_file() or path.read_text() != text:
            changed.append(str(path.relative_to(root)))
            if not check:
                path.write_text(text)
    return changed


def main(argv=None) -> int:
    """``python -m mlcourse.catalog write|check``: write the landing notebook and README table, or check them."""
    p = argparse.ArgumentParser(
        prog="python -m mlcourse.catalog", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("cmd", choices=("write", "check"))
    args = p.parse_args(argv)
    changed = write(check=args.cmd == "check")
    if args.cmd == "check" and changed:
        print(f"out of date: {', '.join(changed)}; run `python -m mlcourse.catalog write` and commit the result.")
        return 1
    print(("up to date" if args.cmd == "check" else f"wrote {', '.join(changed) or 'nothing (up to date)'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
