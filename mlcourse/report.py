"""The course report: it renders what the notebooks recorded, with each week's headlines and figures.

The headlines are the weeks' own (:mod:`mlcourse.headlines`): each week module's ``headlines(rec)`` picks, from
what its notebook recorded (:mod:`mlcourse.results`), the numbers a reader wants first, and sets each beside the
public reference figure in its ``REFERENCES`` where one exists, with a verdict (meets / misses, and by how much).
:func:`headlines` asks every week of the registry (:mod:`mlcourse.weeks`) in course order; :func:`references`
lists every week's figures. :func:`write` turns a course run into ``report.md`` and a self-contained
``report.html``; :func:`figures` draws the plots the report embeds, as each week declares them in its ``FIGURES``
(:class:`mlcourse.headlines.Figure`). A notebook that did not run, or recorded
something else, simply leaves its headline out: the report never invents a number.

    python -m mlcourse.report rewrite build/       # the report again from a build's runs.json and results
    python -m mlcourse.report publish build/       # copy a full run's report into reference/ (to commit)
    python -m mlcourse.report publish build/ --add # add a build's notebooks to reference/, keeping the others

``reference/`` holds the course's committed reference full run (report, executed notebooks as HTML, the
recorded results), for instructors who cannot run the whole course before a session.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

from mlcourse import data, machine, results, weeks
from mlcourse.headlines import Figure, Headlines
from mlcourse.notebooks import SOLUTIONS, solution_notebooks
from mlcourse.results import json_kind
from mlcourse.session import ROOT

__all__ = [
    "references",
    "headlines",
    "figures",
    "figure_specs",
    "RUN_TIMES",
    "environment",
    "Cell",
    "document",
    "write_markdown",
    "write_html",
    "notebook_html",
    "write",
    "load_runs",
    "rewrite",
    "publish",
    "main",
]

def _week_modules():
    """``(week, its module)`` for every week of the registry, in course order."""
    return [(w, importlib.import_module(f"mlcourse.{w.module}")) for w in weeks.WEEKS]


def references() -> dict[str, str]:
    """Every week's public reference figures, ``{name: figure}`` (each week module's ``REFERENCES``)."""
    out = {}
    for _, module in _week_modules():
        out.update({name: ref.figure for name, ref in getattr(module, "REFERENCES", {}).items()})
    return out


def headlines(rec: dict) -> list[dict]:
    """One dict per headline, ``{"topic", "measured", "reference", "verdict", "notebook"}``, from ``rec``
    (``{notebook: its recorded results}``): each week's own ``headlines`` (:mod:`mlcourse.headlines`), in course
    order. ``verdict`` says whether this run meets the public reference figure, with the margin ("" where there
    is no reference or nothing to compare)."""
    out = []
    for week, module in _week_modules():
        if hasattr(module, "headlines"):
            out += [{**h, "notebook": week.stem} for h in module.headlines(rec.get(week.stem, {}))]
    return out


def _draw(fig_spec: Figure, rows: list[dict], plt):
    """One :class:`~mlcourse.headlines.Figure` of ``rows`` (already :meth:`~Figure.points`) as a matplotlib
    figure."""
    f = fig_spec
    if f.kind == "bars":
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))
        ax.barh([str(r[f.label]) for r in rows], [r[f.x] * f.x_scale for r in rows])
        ax.invert_yaxis()
    elif f.kind == "scatter":
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in rows:
            xy = (r[f.x] * f.x_scale, r[f.y] * f.y_scale)
            ax.scatter(*xy, s=40)
            ax.annotate(str(r[f.label]), xy, fontsize=7, xytext=(4, 2), textcoords="offset points")
    else:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [c for c in f.series if c in rows[0]]
        for r in rows:
            ax.plot(names, [r[c] * f.y_scale for c in names], marker="o", label=f"{f.label_prefix}{r[f.label]}")
        ax.legend(fontsize=8)
    ax.set(xlabel=f.xlabel, ylabel=f.ylabel, title=f.title)
    if f.log_x:
        ax.set_xscale("log")
    return fig


def figure_specs() -> list[tuple[str, Figure]]:
    """``(notebook, Figure)`` for every figure a week declares in its module's ``FIGURES``, in course order."""
    return [(week.stem, spec) for week, module in _week_modules() for spec in getattr(module, "FIGURES", ())]


#: The report's own figure: every notebook's run time, from ``runs.json`` (red: failed).
RUN_TIMES = Figure("runs", "run_times.png", "Run time of each notebook", "Run time per notebook (red: failed)",
                   "bars", x="minutes", label="notebook", xlabel="run time (minutes)", ylabel="notebook")


def figures(rec: dict, runs: list[dict], out_dir: Path) -> list[tuple[str, Path]]:
    """Draw the report's figures into ``out_dir``: each notebook's run time, then every week's ``FIGURES`` that
    this run recorded data for. Returns ``[(caption, path)]``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timed = [{"notebook": r["notebook"], "minutes": r["seconds"] / 60, "ok": r.get("status") == "ok"} for r in runs]
    wanted = [(RUN_TIMES, timed)] + [(spec, Headlines(rec.get(nb)).rows(spec.key)) for nb, spec in figure_specs()]
    made = []
    for spec, rows in wanted:
        rows = spec.points(rows)
        if not rows:
            continue
        fig = _draw(spec, rows, plt)
        if spec is RUN_TIMES:
            for bar, r in zip(fig.axes[0].patches, rows):
                bar.set_color("tab:green" if r["ok"] else "tab:red")
        path = out_dir / spec.file
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append((spec.caption, path))
    return made


# ----------------------------------------------------------------------------------------------- writing
def environment() -> dict:
    """Where the results were measured: Python and library versions, CPU (cores, model, the instruction sets
    that matter for int8 / bfloat16), GPU or not, and where Fashion-MNIST came from."""
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in (
        "tensorflow",
        "keras",
        "tf-keras",
        "tensorflow-model-optimization",
        "keras-tuner",
        "ai-edge-litert",
        "onnxruntime",
        "openvino",
        "nncf",
        "scikit-learn",
        "jupyterlab",
    ):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "MISSING: run `make setup`"

    info.update(machine.probe())

    found = data.find_fashion_mnist()
    info["fashion-mnist"] = (
        f"full data set, {found}"
        if found
        else "only the embedded 6,000/1,000-image subset (sudo apt-get install dataset-fashion-mnist)"
    )
    info["course version"] = _course_version()
    return info


def _course_version() -> str:
    """The checkout's git commit (``+ local changes`` when its files differ from it), or "unknown" without git."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" + local changes" if dirty else "")


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


def _minutes(seconds) -> str:
    return f"{seconds / 60:.1f} min"


def _not_run(runs: list[dict]) -> str:
    """" Not in this run: 03_x, 05_y." for the course's notebooks a run left out ("" when it ran them all)."""

    ran = {r["notebook"] for r in runs}
    missing = [p.stem for p in solution_notebooks(SOLUTIONS) if p.stem not in ran] if SOLUTIONS.is_dir() else []
    return f" Not in this run: {', '.join(missing)}." if missing else ""


def _failure(run: dict) -> str:
    """The failing cell and the tail of its traceback, as much as the runner kept."""
    parts = []
    if run.get("cell") is not None:
        parts.append(f"cell {run['cell']}")
    if run.get("source"):
        parts.append(run["source"].strip())
    parts.append(run.get("traceback") or run.get("error") or "")
    return "\n".join(p for p in parts if p)


_TITLE = {"smoke": "SMOKE size: tiny data, not the course results",
          "lesson": "lesson size: minutes per notebook; the full run's numbers are the reference",
          "full": "full run"}


class Cell(NamedTuple):
    """One table cell of the report's document: its text, an optional link and an optional style (the HTML
    page colours ``ok`` / ``failed`` / ``meets`` / ``misses``; Markdown shows the text)."""

    text: str
    href: str | None = None
    css: str | None = None


def document(runs: list[dict], recorded: dict, size: str, figs=(), env: dict | None = None) -> list[tuple]:
    """The report as one list of blocks, which :func:`write_markdown` and :func:`write_html` only render:
    ``("h", level, text)``, ``("p", text, style)``, ``("table", header, rows)`` (rows of :class:`Cell`),
    ``("pre", text)``, ``("figure", caption, path)`` and ``("results", {key: value})`` (one notebook's records).
    Sections: notebooks (status, minutes), failures, headlines with verdicts, figures, environment, every
    recorded result, the public reference figures."""
    import datetime as _dt

    doc = [("h", 1, f"mlcourse results report ({_TITLE[size]})"),
           ("p", f"Generated {_dt.datetime.now():%Y-%m-%d %H:%M}. Every number below was measured by this run.", None)]
    if size == "smoke":
        doc.append(("p", "A smoke run: tiny data, so the numbers are not the course's results.", "smoke"))
    rows = []
    for r in runs:
        err = (r.get("error") or "").splitlines()[0] if r.get("error") else r.get("note", "")
        rows.append([Cell(r["notebook"], f"notebooks/{r['notebook']}.html" if r.get("html") else None),
                     Cell(r["status"], css=r["status"]), Cell(_minutes(r["seconds"])), Cell(err)])
    doc += [("h", 2, "Notebooks"), ("table", ["notebook", "status", "run time", "error or note"], rows),
            ("p", f"Total: {_minutes(sum(r['seconds'] for r in runs))}." + _not_run(runs), None)]
    for r in runs:
        if r["status"] != "ok":
            doc += [("h", 3, f"{r['notebook']} failed"), ("pre", _failure(r)[-3000:])]
    heads = headlines(recorded)
    if heads:
        doc += [("h", 2, "Headlines, next to the public reference figures"),
                ("table", ["topic", "measured here", "public reference", "verdict", "notebook"],
                 [[Cell(h["topic"]), Cell(h["measured"]), Cell(h["reference"] or "-"),
                   Cell(h["verdict"] or "-", css=h["verdict"].split()[0] if h["verdict"] else None),
                   Cell(h["notebook"])] for h in heads])]
    if figs:
        doc += [("h", 2, "Figures")] + [("figure", caption, Path(p)) for caption, p in figs]
    if env:
        doc += [("h", 2, "Environment"), ("table", ["", ""], [[Cell(str(k)), Cell(str(v))] for k, v in env.items()])]
    doc.append(("h", 2, "All recorded results"))
    for nb, values in recorded.items():
        doc += [("h", 3, nb), ("results", values)]
    doc += [("h", 2, "Public reference figures"),
            ("table", ["reference", "figure"], [[Cell(k), Cell(v)] for k, v in references().items()])]
    return doc


def write_markdown(runs: list[dict], recorded: dict, path: Path, size: str, figs=(), env: dict | None = None) -> Path:
    """The report's :func:`document` as Markdown (figures linked from ``figures/``)."""
    def cell(c):
        text = c.text.replace("|", "\\|")  # a "|" in a value would end the cell
        return f"[{text}]({c.href})" if c.href else text

    lines = []
    for block in document(runs, recorded, size, figs, env):
        kind = block[0]
        if kind == "h":
            lines += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            lines += ["| " + " | ".join(block[1]) + " |", "|" + "---|" * len(block[1])]
            lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in block[2]] + [""]
        elif kind == "pre":
            lines += ["```", block[1], "```", ""]
        elif kind == "figure":
            lines += [f"![{block[1]}](figures/{block[2].name})", "", f"*{block[1]}*", ""]
        elif kind == "results":
            for k, v in block[1].items():
                text = _fmt(v)
                lines.append(f"- **{k}**: {text}" if not text.startswith("\n") else f"- **{k}**:{text}")
            lines.append("")
    path = Path(path)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return path


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#1a7f37;font-weight:600}.failed{color:#b3261e;font-weight:600}.meets{color:#1a7f37}.misses{color:#b3261e}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.85em}figure{margin:1.2em 0}figcaption{font-style:italic}
img{max-width:100%}.smoke{background:#fff4ce;padding:.6em;border:1px solid #e0c200}"""


def write_html(runs: list[dict], recorded: dict, path: Path, size: str, figs=(), env: dict | None = None) -> Path:
    """The report's :func:`document` as one self-contained page (figures embedded, no network), with links to
    the executed notebooks."""
    import base64
    from html import escape as e

    def table(header, rows):
        head = "".join(f"<th>{e(str(h))}</th>" for h in header)
        return f"<table><tr>{head}</tr>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                                                   for r in rows) + "</table>"

    def cell(c):
        if c.href:
            return f"<a href='{e(c.href)}'>{e(c.text)}</a>"
        return f"<span class='{e(c.css)}'>{e(c.text)}</span>" if c.css else e(c.text)

    def value_html(v):
        if isinstance(v, list) and v and isinstance(v[0], dict):
            cols = list(v[0])
            return table(cols, [[e(_fmt(r.get(c))) for c in cols] for r in v])
        return e(_fmt(v))

    html = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mlcourse results report</title>"
            f"<style>{_CSS}</style></head><body>"]
    for block in document(runs, recorded, size, figs, env):
        kind = block[0]
        if kind == "h":
            html.append(f"<h{block[1]}>{e(block[2])}</h{block[1]}>")
        elif kind == "p":
            html.append(f"<p class='{block[2]}'>{e(block[1])}</p>" if block[2] else f"<p>{e(block[1])}</p>")
        elif kind == "table":
            html.append(table(block[1], [[cell(c) for c in r] for r in block[2]]))
        elif kind == "pre":
            html.append(f"<pre>{e(block[1])}</pre>")
        elif kind == "figure":
            data = base64.b64encode(block[2].read_bytes()).decode()
            html.append(f"<figure><img alt='{e(block[1])}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{e(block[1])}</figcaption></figure>")
        elif kind == "results":
            html.append("<ul>" + "".join(f"<li><b>{e(k)}</b>: {value_html(v)}</li>" for k, v in block[1].items())
                        + "</ul>")
    html.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(html) + "\n")
    return path


def notebook_html(executed: Path, out: Path) -> Path | None:
    """An executed notebook as a standalone HTML page (its figures are already embedded); None if unreadable."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(executed, as_version=4)
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    except Exception as exc:  # noqa: BLE001 - a broken notebook must not lose the report
        Path(out).write_text(f"<!doctype html><p>Could not render {executed.name}: {type(exc).__name__}: {exc}</p>")
        return None
    Path(out).write_text(body)
    return Path(out)


def write(runs: list[dict], results_dir: Path, out_dir: Path, size: str) -> Path:
    """Write the whole report into ``out_dir``: ``report.md``, ``report.html``, ``figures/`` and every executed
    notebook as ``notebooks/<name>.html`` (from ``run["output"]``). Returns the path of ``report.md``.

    The environment block is ``out_dir/environment.json`` when the course command saved one as the run began
    (so a report written again later still names the machine and commit the numbers were measured on), else
    this process's :func:`environment`."""
    import json

    out_dir = Path(out_dir)
    recorded = results.load_all(results_dir) if Path(results_dir).is_dir() else {}
    figs = figures(recorded, runs, out_dir / "figures")
    saved = out_dir / "environment.json"
    env = json.loads(saved.read_text()) if saved.is_file() else environment()
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    runs = [dict(r) for r in runs]
    for r in runs:
        executed = Path(r.get("output") or "")
        if executed.is_file():  # a notebook that never started has no executed copy to link to
            r["html"] = bool(notebook_html(executed, out_dir / "notebooks" / f"{r['notebook']}.html"))
    write_html(runs, recorded, out_dir / "report.html", size, figs, env)
    return write_markdown(runs, recorded, out_dir / "report.md", size, figs, env)


def build_size(runs: list[dict]) -> str:
    """The size a course build ran at, from its runs (each records its ``size``; a run written before sizes
    existed was a full run). Runs at different sizes in one build are an error."""
    sizes = {r.get("size", "full") for r in runs}
    if len(sizes) > 1:
        raise ValueError(f"this build mixes sizes {sorted(sizes)}: run the course again into a new folder.")
    return sizes.pop() if sizes else "full"


_RUN_KEYS = ("notebook", "status", "seconds")


def load_runs(build) -> list[dict]:
    """The runs of a course build (``build/runs.json``), checked: a missing, unreadable or malformed file is a
    :class:`FileNotFoundError` / :class:`ValueError` that names the file, the entry and what to do."""
    import json

    path = Path(build) / "runs.json"
    if not path.is_file():
        raise FileNotFoundError(f"{Path(build)} holds no runs.json: run the course into it first (mlcourse course "
                                f"--out {build}).")
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not readable JSON ({type(exc).__name__}: {exc}): restore it (git, or the "
                         "build's previous-* copy) or run the course again into a new folder.") from None
    if not isinstance(runs, list):
        raise ValueError(f"{path} holds a JSON {json_kind(runs)}; a course build's runs.json is an array with one "
                         "{notebook, status, seconds, ...} object per notebook run.")
    for i, r in enumerate(runs):
        missing = [k for k in _RUN_KEYS if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"{path}: entry {i} ({str(r)[:60]}) lacks {', '.join(missing)}; each entry needs "
                             f"{', '.join(_RUN_KEYS)} (as `mlcourse course` writes them).")
        if not isinstance(r["seconds"], (int, float)):
            raise ValueError(f"{path}: entry {i} ({r['notebook']}) has seconds={r['seconds']!r}, not a number.")
    return runs


def rewrite(build) -> Path:
    """Write the report of the course run in ``build`` again (from its ``runs.json`` and ``results/``), with
    this version's headlines; the executed notebooks are read from ``build/notebooks/``."""

    build = Path(build)
    runs = load_runs(build)
    for r in runs:  # the build may have been moved since: find the executed notebooks where they are now
        r["output"] = str(build / "notebooks" / f"{r['notebook']}.ipynb")
    return write(runs, build / "results", build, build_size(runs))


PUBLISHED = ("report.md", "report.html", "runs.json", "environment.json", "figures", "notebooks", "results")


def publish(build, dest=None, add: bool = False) -> Path:
    """Copy the report of a **full** course run in ``build`` into ``dest`` (default ``reference/`` in the
    checkout): ``report.md``, ``report.html``, ``figures/``, the executed notebooks as HTML, the recorded
    ``results/``, ``environment.json`` and ``runs.json`` (with paths made relative). A smoke run, or one with a
    failed notebook, is refused; notebooks the run left out are named in its report. A previous ``dest`` is
    replaced (git keeps its history).

    ``add=True`` publishes ``build``'s notebooks *into* the existing ``dest`` instead (a notebook run again, or a
    new one): their HTML and results replace those of the same notebooks, the other notebooks stay, each added
    run gets a note naming the commit and machine it ran on (from ``build/environment.json``), and the report is
    rendered again from the merged results. Either way ``dest`` is swapped in whole at the end: a failure leaves
    it as it was."""
    import json
    import shutil

    build = Path(build)
    dest = Path(dest) if dest is not None else ROOT / "reference"
    md = build / "report.md"
    if not md.is_file() or not (build / "runs.json").is_file():
        raise FileNotFoundError(f"{build} holds no finished course run (report.md and runs.json): run "
                                "`mlcourse course` first.")
    runs = load_runs(build)
    if build_size(runs) != "full":
        raise ValueError(f"{build} is a {build_size(runs)}-size run: publish a full run (`mlcourse course`, "
                         "without --size).")
    failed = [r["notebook"] for r in runs if r.get("status") != "ok"]
    if failed:
        raise ValueError(f"{', '.join(failed)} did not finish in {build}: publish only notebooks that ran to the "
                         "end (run them again, or `mlcourse course --only` the others into a new build).")
    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    if add:
        try:
            _merged_into(build, runs, dest, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _swap_in(staging, dest)
        return dest
    staging.mkdir(parents=True)
    for name in PUBLISHED:
        src = build / name
        if src.is_dir():
            shutil.copytree(src, staging / name, ignore=shutil.ignore_patterns("*.ipynb", "*.kernel.log"))
        elif src.is_file():
            shutil.copy2(src, staging / name)
    for r in runs:
        r["output"] = f"notebooks/{r['notebook']}.html"
    (staging / "runs.json").write_text(json.dumps(runs, indent=2) + "\n")
    _swap_in(staging, dest)
    return dest


def _swap_in(staging: Path, dest: Path) -> None:
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)


def _merged_into(build: Path, runs: list[dict], dest: Path, staging: Path) -> list[dict]:
    """:func:`publish` with ``add``: a copy of ``dest`` in ``staging`` with ``build``'s notebooks merged in and
    the report rendered again; returns the merged runs (course order)."""
    import json
    import shutil

    if not (dest / "runs.json").is_file():
        raise FileNotFoundError(f"{dest} holds no published report to add to: publish a full run there first "
                                "(without --add).")
    kept = [r for r in load_runs(dest) if r["notebook"] not in {r["notebook"] for r in runs}]
    shutil.copytree(dest, staging)
    saved = build / "environment.json"
    env = json.loads(saved.read_text()) if saved.is_file() else {}
    where = (f"{env.get('course version', 'an unrecorded commit')} on {env.get('cpu', 'an unrecorded machine')}"
             f"{'; ' + env['cpu features'] if env.get('cpu features') else ''}")
    for r in runs:
        nb = r["notebook"]
        html, result = build / "notebooks" / f"{nb}.html", build / "results" / f"{nb}.json"
        if not html.is_file() or not result.is_file():
            raise FileNotFoundError(f"{build} lacks {html.name} or results/{result.name}: write its report first "
                                    f"(python -m mlcourse.report rewrite {build}).")
        shutil.copy2(html, staging / "notebooks" / html.name)
        shutil.copy2(result, staging / "results" / result.name)
        r["note"] = f"added later (mlcourse report publish --add) from a run at {where}"
    order = {w.stem: i for i, w in enumerate(weeks.WEEKS)}
    merged = sorted(kept + runs, key=lambda r: order.get(r["notebook"], len(order)))
    for r in merged:
        r.update(output="", html=(staging / "notebooks" / f"{r['notebook']}.html").is_file())
    write(merged, staging / "results", staging, "full")
    for r in merged:
        r["output"] = f"notebooks/{r['notebook']}.html"
        del r["html"]
    (staging / "runs.json").write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def main(argv=None) -> int:
    """``python -m mlcourse.report rewrite BUILD`` | ``publish BUILD [--to DEST] [--add]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m mlcourse.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("rewrite", help="write a build's report again").add_argument("build", type=Path)
    pub = sub.add_parser("publish", help="copy a full run's report into reference/")
    pub.add_argument("build", type=Path)
    pub.add_argument("--to", type=Path, default=None, help="destination (default: reference/ in the checkout)")
    pub.add_argument("--add", action="store_true",
                     help="add the build's notebooks to the published report instead of replacing it")
    args = p.parse_args(argv)
    try:
        out = rewrite(args.build) if args.command == "rewrite" else publish(args.build, args.to, args.add)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"{args.command}: {out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
