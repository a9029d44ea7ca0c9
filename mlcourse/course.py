"""Run the whole course and write its results report.

    python -m mlcourse.course                       # every solution notebook, full size, into build/
    python -m mlcourse.course --size lesson --out build/lesson   # the lesson size a learner gets (about an hour)
    python -m mlcourse.course --size smoke --out build/smoke     # tiny data (minutes), e.g. to check a set-up
    python -m mlcourse.course --only 00_workflow

Each notebook is executed by papermill (its ``parameters`` cell overridden with ``SIZE``; ``MLCOURSE_SIZE`` is
set too, for the processes a notebook starts), in its own
folder, and saved executed under ``build/notebooks/`` after every cell, so a long run can be followed there.
Progress is printed per code cell: which notebook, which cell of how many, the time elapsed and the expected
total (the measured times of INSTRUCTOR.md). Notebooks record headline results with
:func:`mlcourse.results.record`; the report (``build/report.md`` and ``build/report.html``, by
:func:`mlcourse.report.write`) lists each notebook's status and run time (a failed one with its cell and
traceback), then the headline results next to the public reference figures.

Arguments are checked before anything is touched. A previous build is never overwritten: it is moved aside
to ``build/previous-<time>/`` first.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from mlcourse import report, settings
from mlcourse.catalog import timings
from mlcourse.notebooks import SOLUTIONS, solution_notebooks, use_this_checkout
from mlcourse.session import ROOT

__all__ = ["run_notebook", "run_course", "select_notebooks", "expected_seconds", "main"]



def expected_seconds(size: str = "full", root: Path = ROOT) -> dict[str, float]:
    """The measured run time of each notebook at ``size``, in seconds, from INSTRUCTOR.md's timings table (its
    "full", "lesson" or "smoke" column). Notebooks the table lacks are left out."""

    size = settings.size(size)
    out = {}
    for name, row in timings(root).items():
        m = re.search(r"(\d+(?:\.\d+)?)\s*(min|s)\b", row.get(size, ""))
        if m:
            out[name] = float(m.group(1)) * (60 if m.group(2) == "min" else 1)
    return out


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _head(source: str, lines: int = 6) -> str:
    text = source.strip("\n").splitlines()
    return "\n".join(text[:lines] + (["..."] if len(text) > lines else []))


class _Progress:
    """Prints which cell of how many runs, the time elapsed and the expected total (one line per code cell)."""

    def __init__(self, name: str, n_cells: int, expected: float | None):
        self.name, self.n, self.expected = name, n_cells, expected
        self.t0, self.done, self.cell, self.index = time.perf_counter(), 0, None, None

    def __call__(self, cell=None, cell_index=None, **_):
        if cell is None or cell.cell_type != "code" or not cell.source.strip():  # nbclient skips these
            return
        self.done += 1
        self.cell, self.index = cell, cell_index
        exp = f", expected about {_minutes(self.expected)}" if self.expected else ""
        print(f"  {self.name}: cell {self.done}/{self.n} ({_minutes(time.perf_counter() - self.t0)} elapsed{exp})",
              flush=True)


class _env:
    """Set (``name=value``) or remove (``name=None``) variables of ``os.environ`` for the block, then restore
    them (the kernel inherits the environment)."""

    def __init__(self, **changes):
        self.changes, self.saved = changes, {}

    def __enter__(self):
        self.saved = {n: os.environ.get(n) for n in self.changes}
        for n, v in self.changes.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = str(v)

    def __exit__(self, *exc):
        for n, v in self.saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v
        return False


class _kernel_log:
    """Send what the kernel writes to its native stderr (TensorFlow's start-up lines, a CUDA probe's
    "failed call to cuInit" on a machine without GPU, ipykernel's own log) to ``path`` instead of the console,
    where it looked like failures in a passing run. The kernel inherits file descriptor 2 when it starts;
    what a cell prints still goes into the executed notebook."""

    def __init__(self, path: Path):
        self.path, self.saved, self.file = Path(path), None, None

    def __enter__(self):
        sys.stderr.flush()
        self.file = open(self.path, "w")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.close()
        return False


def run_notebook(path: Path, out_dir: Path, size: str, timeout: int | None = None,
                 expected: float | None = None) -> dict:
    """Execute one notebook at ``size`` with papermill; return ``{notebook, size, status, seconds, error, output}``
    and, when it
    failed, ``cell`` (index in the executed notebook), ``source`` (the cell's first lines) and ``traceback``
    (its tail).

    One line per code cell shows progress (which cell of how many, elapsed, ``expected`` seconds as the
    expected total); the executed notebook is saved after every cell, so a long run can be followed in
    ``out_dir``. ``MPLBACKEND`` is kept from the kernel (``Agg`` there would strip the figures). The kernel's
    own log lines go to ``<out_dir>/<name>.kernel.log`` (named in the record as ``kernel_log``), not the console.
    """
    import nbformat
    import papermill as pm

    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / path.name
    source = nbformat.read(path, as_version=4)
    n_code = sum(c.cell_type == "code" and bool(c.source.strip()) for c in source.cells)
    n_code += any("parameters" in c.metadata.get("tags", []) for c in source.cells)  # papermill's injected cell
    progress = _Progress(path.stem, n_code, expected)
    print(f"{path.stem}: {n_code} code cells" + (f", expected about {_minutes(expected)}" if expected else "")
          + f"; follow it in {output}", flush=True)
    t0 = time.perf_counter()
    log = out_dir / f"{path.stem}.kernel.log"
    size = settings.size(size)
    record = {"notebook": path.stem, "size": size, "status": "ok", "seconds": 0.0, "error": "", "output": str(output),
              "kernel_log": str(log)}
    try:
        with _env(MPLBACKEND=None, MLCOURSE_SIZE=size), _kernel_log(log):
            pm.execute_notebook(str(path), str(output), parameters={"SIZE": size}, cwd=str(path.parent),
                                kernel_name="python3", progress_bar=False, log_output=False,
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                request_save_on_cell_execute=True, autosave_cell_every=10,
                                execution_timeout=timeout, on_cell_start=progress)
    except pm.PapermillExecutionError as exc:
        tb = _ANSI.sub("", "\n".join(exc.traceback or [])).strip().splitlines()
        record.update(status="failed", error=f"{exc.ename}: {exc.evalue}"[:500], cell=exc.cell_index,
                      source=_head(exc.source or ""), traceback="\n".join(tb[-20:]))
    except Exception as exc:  # the kernel died, a timeout: still report, never lose the other notebooks
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500], cell=progress.index,
                      source=_head(progress.cell.source) if progress.cell is not None else "",
                      traceback=f"{type(exc).__name__}: {exc}"[-2000:])
    record["seconds"] = round(time.perf_counter() - t0, 1)
    if record["status"] != "ok":
        print(f"{path.stem}: the kernel's own log is in {log}", flush=True)
    return record


def select_notebooks(only: list[str] | None = None, folder: Path = SOLUTIONS) -> list[Path]:
    """The solution notebooks to run: all, or those named in ``only`` (checked: an empty list or an unknown
    name is an error that lists the known names)."""
    paths = solution_notebooks(folder)
    if only is None:
        return paths
    known = [p.stem for p in paths]
    if isinstance(only, str) or not only:
        raise ValueError(f"only must name at least one notebook (a list of names), got {only!r}; known: {known}.")
    unknown = [n for n in only if n not in known]
    if unknown:
        raise SystemExit(f"Unknown notebook(s) {unknown}; known: {known}.")
    return [p for p in paths if p.stem in only]


def _move_previous_build(out: Path) -> Path | None:
    """Move everything in ``out`` (but earlier ``previous-*`` folders) into a new ``out/previous-<time>``.

    The name carries microseconds and, should two runs still collide, a counter: nothing is overwritten."""
    items = [p for p in out.iterdir() if not p.name.startswith("previous-")] if out.is_dir() else []
    if not items:
        return None
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    keep, n = out / f"previous-{stamp}", 1
    while True:
        try:
            keep.mkdir(parents=True)
            break
        except FileExistsError:
            keep, n = out / f"previous-{stamp}-{n}", n + 1
    for item in items:
        shutil.move(str(item), str(keep / item.name))
    return keep


def run_course(out: Path = ROOT / "build", size: str = "full", only: list[str] | None = None,
               timeout: int | None = None, expected: dict[str, float] | None = None) -> tuple[list[dict], Path]:
    """Run the solution notebooks (all, or those named in ``only``) at ``size`` and write the report into ``out``.

    Arguments are checked before anything is touched; a previous build is moved to ``out/previous-<time>/``.
    ``expected`` (seconds per notebook) is the expected total each notebook's progress shows; by default the
    measured times of INSTRUCTOR.md (:func:`expected_seconds`). The report is :func:`mlcourse.report.write`'s
    (``report.md``, ``report.html``, figures, executed notebooks as HTML); ``runs.json`` keeps every run.
    """
    paths = select_notebooks(only)
    size = settings.size(size)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds per cell, got {timeout}.")
    out = Path(out).expanduser().resolve()  # kernels run in solutions/: a relative path would land there
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder: choose another --out folder.")
    if expected is None:
        expected = expected_seconds(size)
    kept = _move_previous_build(out)
    if kept:
        print(f"the previous build was moved to {kept}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "environment.json").write_text(json.dumps(report.environment(), indent=2))  # what the run ran on
    results_dir = out / "results"
    os.environ["MLCOURSE_RESULTS_DIR"] = str(results_dir)
    use_this_checkout()
    runs, t0 = [], time.perf_counter()
    total = sum(expected.get(p.stem, 0) for p in paths)
    current = None  # the notebook running when Ctrl-C came, if any
    try:
        for i, path in enumerate(paths, 1):
            print(f"[{i}/{len(paths)}] {path.stem} ({_minutes(time.perf_counter() - t0)} into the course"
                  + (f", about {_minutes(total)} expected in all" if total else "") + ")", flush=True)
            current, started = path, time.perf_counter()
            runs.append(run_notebook(path, out / "notebooks", size, timeout, expected.get(path.stem)))
            current = None
            r = runs[-1]
            print(f"{r['notebook']}: {r['status']} in {_minutes(r['seconds'])}"
                  + (f" (cell {r.get('cell')}: {r['error']})" if r["status"] != "ok" else ""), flush=True)
            (out / "runs.json").write_text(json.dumps(runs, indent=2))
    except KeyboardInterrupt:
        if current is not None:
            runs.append({"notebook": current.stem, "size": size, "status": "interrupted",
                         "seconds": round(time.perf_counter() - started, 1),
                         "error": "interrupted (Ctrl-C) while it ran", "output": str(out / "notebooks" / current.name)})
        (out / "runs.json").write_text(json.dumps(runs, indent=2))
        written = report.write(runs, results_dir, out, size)
        print(f"\ninterrupted: the report of what ran ({len(runs)} of {len(paths)} notebooks, the last one "
              f"unfinished) is in {written}; after fixing or finishing a notebook, `python -m mlcourse report "
              f"rewrite {out}` writes it again.", flush=True)
        raise
    return runs, report.write(runs, results_dir, out, size)


def main(argv=None) -> int:
    """``python -m mlcourse.course [--size S] [--out DIR] [--only NB ...] [--timeout S]``; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m mlcourse.course", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=settings.SIZES, default="full",
                   help="full (default: the reference run), lesson (what a learner gets) or smoke (tiny data)")
    p.add_argument("--out", type=Path, default=ROOT / "build", help="the build folder (default: build/)")
    p.add_argument("--only", nargs="+", metavar="NB", help="run only these notebooks (e.g. 00_workflow)")
    p.add_argument("--timeout", type=int, default=None, help="per-cell time limit in seconds")
    args = p.parse_args(argv)
    if args.timeout is not None and args.timeout <= 0:
        p.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    try:
        runs, written = run_course(args.out, args.size, args.only, args.timeout)
    except (NotADirectoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"report: {written} (and {written.with_suffix('.html')})")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
