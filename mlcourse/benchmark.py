"""The timing benchmark: every notebook at one size, timed, with its verdicts set beside the full reference run's.

    python -m mlcourse.benchmark --size lesson               # run every notebook at lesson size, print the table
    python -m mlcourse.benchmark --size lesson --prepared    # the same in a prepared room (make workshop first)
    python -m mlcourse.benchmark --table build/bench-lesson  # the table of a build already made, no run
    python -m mlcourse.benchmark --size lesson --write       # ... and write the times into INSTRUCTOR.md

The table has one row per notebook: minutes, the size's budget (lesson: 10 minutes each and 60 for the course;
a prepared room: 5), whether it kept to it, and how many of its **verdicts** agree with the reference full run's
(``reference/results``). A verdict is what a notebook recorded as a judgement, not a measurement: a true/false
(``holds``, ``met``, ``beats the baseline``, ...), or the verdict words of a sentence ("faster", "slower", "too
close to call", "excludes 0", "includes 0", "does not pay", ...). Each disagreement is listed by notebook,
result and row, with both values: a lesson size is only worth having while its verdicts agree with the full
run's.

The course runs through :func:`mlcourse.course.run_course` (the one runner), so a benchmark build is an ordinary
course build (report included). Times depend on the machine: the table names it (:func:`mlcourse.machine.describe`).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mlcourse import course, machine, report, results, settings, workshop
from mlcourse.session import ROOT

__all__ = ["BUDGET_MIN", "verdicts", "compare_verdicts", "table", "run", "write_instructor", "main"]

#: Minutes a notebook may take at each size, and the whole course (None: no budget).
BUDGET_MIN = {"lesson": (10, 60), "prepared": (5, None), "smoke": (None, None), "full": (None, None)}

_VERDICT_WORDS = re.compile(r"\b(faster|slower|too close to call|excludes 0|includes 0|does not hold|holds|"
                            r"does not pay|pays|not promoted|promoted|fits|does not fit)\b", re.IGNORECASE)


def _row_id(row: dict, i: int) -> str:
    for v in row.values():
        if isinstance(v, str) and not _VERDICT_WORDS.search(v):
            return v
    return f"row {i}"


def verdicts(recorded: dict, path: tuple = ()) -> dict[tuple, str]:
    """The verdicts in one notebook's recorded results (:func:`mlcourse.results.load_all`'s value for it):
    ``{(result key, row, field): verdict}``, a verdict being a true/false (``"yes"``/``"no"``) or the verdict words
    of a string (e.g. ``"faster"``, ``"excludes 0"``), lower-cased. Rows of a table are named by their first
    text field, so that two runs' tables line up by row, not by position."""
    out = {}
    if isinstance(recorded, dict):
        for k, v in recorded.items():
            if isinstance(v, bool):
                out[path + (str(k),)] = "yes" if v else "no"
            else:
                out.update(verdicts(v, path + (str(k),)))
    elif isinstance(recorded, list):
        for i, v in enumerate(recorded):
            out.update(verdicts(v, path + ((_row_id(v, i) if isinstance(v, dict) else f"item {i}"),)))
    elif isinstance(recorded, str):
        words = [w.lower() for w in _VERDICT_WORDS.findall(recorded)]
        if words:
            out[path] = " / ".join(dict.fromkeys(words))
    return out


def compare_verdicts(build_results, reference_results) -> dict[str, dict]:
    """Per notebook: ``{"same": n, "compared": m, "differ": [(where, this run, reference)], "only_here": k}`` for the
    verdicts both runs recorded (a verdict only one of them has is counted, not compared)."""
    mine, ref = results.load_all(build_results), results.load_all(reference_results)
    out = {}
    for nb in sorted(set(mine) | set(ref)):
        a, b = verdicts(mine.get(nb, {})), verdicts(ref.get(nb, {}))
        both = sorted(set(a) & set(b))
        differ = [(" > ".join(k), a[k], b[k]) for k in both if a[k] != b[k]]
        out[nb] = {"same": len(both) - len(differ), "compared": len(both), "differ": differ,
                   "only_here": len(set(a) - set(b)), "only_reference": len(set(b) - set(a))}
    return out


def table(build, reference=ROOT / "reference", budget: str | None = None) -> str:
    """The benchmark table of a course build (its ``runs.json`` and ``results/``) against ``reference``, as Markdown,
    followed by each verdict that differs. ``budget`` picks the row of :data:`BUDGET_MIN` (default: the build's
    size)."""
    build = Path(build)
    runs = report.load_runs(build)
    size = report.build_size(runs)
    each, total_budget = BUDGET_MIN[budget or size]
    cmp = compare_verdicts(build / "results", Path(reference) / "results")
    lines = [f"Benchmark of {build} at {size} size{' (prepared room)' if budget == 'prepared' else ''}, "
             f"on {machine.describe()}", "",
             "| notebook | status | minutes | budget | kept to it | verdicts as the full run's |",
             "|---|---|---|---|---|---|"]
    total, notes = 0.0, []
    for r in runs:
        minutes = r["seconds"] / 60
        total += minutes
        c = cmp.get(r["notebook"], {"same": 0, "compared": 0, "differ": []})
        kept = "-" if each is None else ("yes" if minutes <= each else "**no**")
        agree = f"{c['same']} of {c['compared']}" if c["compared"] else "none to compare"
        lines.append(f"| {r['notebook']} | {r['status']} | {minutes:.1f} | {each or '-'} | {kept} | {agree} |")
        notes += [f"- {r['notebook']}: {where}: {here} here, {there} in the full run"
                  for where, here, there in c["differ"]]
    kept = "-" if total_budget is None else ("yes" if total <= total_budget else "**no**")
    lines.append(f"| **course** | | {total:.1f} | {total_budget or '-'} | {kept} | "
                 f"{sum(c['same'] for c in cmp.values())} of {sum(c['compared'] for c in cmp.values())} |")
    lines += ["", "Verdicts that differ from the full run's:" if notes else "No verdict differs from the full run's."]
    return "\n".join(lines + notes)


def run(size: str = "lesson", out=None, only=None, prepared: bool = False) -> Path:
    """Run the notebooks (all, or ``only``) at ``size`` into ``out`` (default ``build/bench-<size>``), after
    :func:`mlcourse.workshop.prepare` when ``prepared``; returns the build folder."""
    size = settings.size(size)
    out = Path(out or ROOT / "build" / f"bench-{size}{'-prepared' if prepared else ''}")
    if prepared:
        workshop.prepare(size)
    course.run_course(out, size, only)
    return out


_COLUMNS = {"full": "full run", "lesson": "lesson", "prepared": "lesson, prepared room", "smoke": "smoke"}


def write_instructor(build, column: str, path=ROOT / "INSTRUCTOR.md") -> int:
    """Write a build's minutes into ``column`` (``full``, ``lesson``, ``prepared`` or ``smoke``) of INSTRUCTOR.md's
    timings table, and the machine they were measured on under it; returns how many rows changed."""
    runs = {r["notebook"]: r for r in report.load_runs(build) if r["status"] == "ok"}
    path = Path(path)
    lines, changed, col = path.read_text().splitlines(), 0, None
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "notebook" and _COLUMNS[column] in cells:
            col = cells.index(_COLUMNS[column])
        elif col is not None and cells and cells[0] in runs:
            seconds = runs[cells[0]]["seconds"]
            cells[col] = f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
            lines[i], changed = "| " + " | ".join(cells) + " |", changed + 1
    if col is None:
        raise ValueError(f"{path} has no timings table with a {_COLUMNS[column]!r} column.")
    marker = f"Measured times ({_COLUMNS[column]}):"
    for i in reversed(range(len(lines))):  # the previous marker line, and the blank line that set it apart
        if lines[i].startswith(marker):
            del lines[i:i + 2 if i + 1 < len(lines) and not lines[i + 1].strip() else i + 1]
    head = next(i for i, ln in enumerate(lines) if ln.strip().startswith("| notebook |"))
    end = head
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1  # the table's last row: the machine line goes below the table, never inside it
    lines[end + 1:end + 1] = ["", f"{marker} `python -m mlcourse.benchmark` on {machine.describe()}, build "
                              f"{Path(build).name}."]
    if end + 3 < len(lines) and lines[end + 3].strip():
        lines.insert(end + 3, "")
    path.write_text("\n".join(lines) + "\n")
    return changed


def main(argv=None) -> int:
    """``python -m mlcourse.benchmark [--size S] [--prepared] [--only NB ...] [--table BUILD] [--write]``; returns
    the exit code (2 for a build that cannot be read)."""
    p = argparse.ArgumentParser(prog="python -m mlcourse.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=settings.SIZES, default="lesson")
    p.add_argument("--prepared", action="store_true", help="prepare a room first (make workshop), then time it")
    p.add_argument("--only", nargs="+", metavar="NB", help="only these notebooks")
    p.add_argument("--out", type=Path, default=None, help="the build folder (default: build/bench-<size>)")
    p.add_argument("--table", type=Path, default=None, metavar="BUILD", help="only print the table of BUILD")
    p.add_argument("--reference", type=Path, default=ROOT / "reference", help="the full run to compare with")
    p.add_argument("--write", action="store_true", help="write the minutes into INSTRUCTOR.md's timings table")
    args = p.parse_args(argv)
    try:
        build = args.table or run(args.size, args.out, args.only, args.prepared)
        column = "prepared" if args.prepared else report.build_size(report.load_runs(build))
        print(table(build, args.reference, "prepared" if args.prepared else None))
        if args.write:
            print(f"INSTRUCTOR.md: {write_instructor(build, column)} rows of the {_COLUMNS[column]!r} column written")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
