"""Run the whole course and write its results report.

    python -m mlcourse.course                 # every solution notebook, full run, into build/
    python -m mlcourse.course --smoke         # the same on tiny data (minutes), e.g. to check a set-up
    python -m mlcourse.course --only 00_workflow

Each notebook is executed by papermill (its ``parameters`` cell overridden with ``SMOKE``), in its own
folder, and saved executed under ``build/notebooks/``. Notebooks record headline results with
:func:`mlcourse.results.record`; the report ``build/report.md`` lists, for each notebook, its status and
run time, then the headline results next to the public reference figures.

A previous build is never overwritten: it is moved aside to ``build/previous-<time>/`` first.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

from mlcourse import report, results
from mlcourse.notebooks import SOLUTIONS, solution_notebooks, use_this_checkout
from mlcourse.runtime import ROOT

__all__ = ["run_notebook", "run_course", "write_report", "REFERENCES"]

REFERENCES = report.REFERENCES  # kept here too: the figures the report compares with


def run_notebook(path: Path, out_dir: Path, smoke: bool, timeout: int | None = None) -> dict:
    """Execute one notebook with papermill; return ``{notebook, status, seconds, error, output}``."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / path.name
    t0 = time.perf_counter()
    status, error = "ok", ""
    try:
        pm.execute_notebook(str(path), str(output), parameters={"SMOKE": smoke}, cwd=str(path.parent),
                            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                            log_output=False)
    except pm.PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"[:500]
    except Exception as exc:  # the kernel died, a timeout: still report, never lose the other notebooks
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:500]
    return {"notebook": path.stem, "status": status, "seconds": round(time.perf_counter() - t0, 1),
            "error": error, "output": str(output)}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and v and isinstance(v[0], dict):
        cols = list(v[0])
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in v]
        return "\n\n" + "\n".join(lines) + "\n"
    if isinstance(v, dict):
        return "; ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    return str(v)


def write_report(runs: list[dict], results_dir: Path, path: Path, smoke: bool) -> Path:
    """Write the Markdown report: run table, headline results per notebook, reference figures."""
    recorded = results.load_all(results_dir)
    lines = [f"# mlcourse results report ({'SMOKE run: tiny data, not the course results' if smoke else 'full run'})",
             "", f"Generated {_dt.datetime.now():%Y-%m-%d %H:%M}. Every number below was measured by this run.", "",
             "## Notebooks", "", "| notebook | status | run time (s) | error |", "|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['notebook']} | {r['status']} | {r['seconds']:.1f} | {r['error'].splitlines()[0] if r['error'] else ''} |")
    total = sum(r["seconds"] for r in runs)
    lines += ["", f"Total: {total:.0f} s ({total / 60:.1f} min).", ""]
    heads = report.headlines(recorded)
    if heads:
        lines += ["## Headlines, next to the public reference figures", "",
                  "| topic | measured here | public reference | notebook |", "|---|---|---|---|"]
        lines += [f"| {h['topic']} | {h['measured']} | {h['reference'] or '-'} | {h['notebook']} |" for h in heads]
        lines.append("")
    figs = report.figures(recorded, runs, path.parent / "figures")
    if figs:
        lines += ["## Figures", ""]
        lines += [f"![{caption}](figures/{p.name})\n\n*{caption}*\n" for caption, p in figs]
    lines += ["## All recorded results", ""]
    for nb, values in recorded.items():
        lines += [f"### {nb}", ""]
        for k, v in values.items():
            text = _fmt(v)
            lines.append(f"- **{k}**: {text}" if not text.startswith("\n") else f"- **{k}**:{text}")
        lines.append("")
    lines += ["## Public reference figures", "", "| reference | figure |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in REFERENCES.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_course(out: Path = ROOT / "build", smoke: bool = False, only: list[str] | None = None,
               timeout: int | None = None) -> tuple[list[dict], Path]:
    """Run the solution notebooks (all, or those named in ``only``) and write ``out/report.md``."""
    from tqdm.auto import tqdm

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        keep = out / f"previous-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        keep.mkdir(parents=True)
        for item in out.iterdir():
            if not item.name.startswith("previous-"):
                shutil.move(str(item), str(keep / item.name))
    out.mkdir(parents=True, exist_ok=True)
    paths = solution_notebooks(SOLUTIONS)
    if only:
        unknown = set(only) - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"Unknown notebook(s) {sorted(unknown)}; known: {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in only]
    results_dir = out / "results"
    os.environ["MLCOURSE_RESULTS_DIR"] = str(results_dir)
    use_this_checkout()
    runs = []
    for path in tqdm(paths, desc="notebooks"):
        runs.append(run_notebook(path, out / "notebooks", smoke, timeout))
        print(f"{runs[-1]['notebook']}: {runs[-1]['status']} in {runs[-1]['seconds']:.0f} s", flush=True)
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    return runs, write_report(runs, results_dir, out / "report.md", smoke)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlcourse.course", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny data: check the set-up in minutes")
    p.add_argument("--out", type=Path, default=ROOT / "build")
    p.add_argument("--only", nargs="*", help="notebook names (e.g. 00_workflow)")
    p.add_argument("--timeout", type=int, default=None, help="per-cell time limit in seconds")
    args = p.parse_args(argv)
    runs, report = run_course(args.out, args.smoke, args.only, args.timeout)
    print(f"report: {report}")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
