"""Run All reaches the end of every student notebook in JupyterLab, clicked as a learner clicks it: a real
browser (headless Chromium) opens the notebook, the menu Run > Run All Cells is clicked, and the notebook, saved
by File > Save Notebook, must hold every code cell executed, the only errors the exercise stubs
(NotImplementedError in cells tagged raises-exception). The server runs at smoke size in a room prepared as
`make workshop` prepares it: the notebooks whose slow models it caches must load them, not train them again,
and the searches it ran ahead are resumed.
Then, in the kernel the Run All left, each exercise's solution from solutions/ runs as a learner who solved it
would: it must pass its checker and print what the solution notebook holds (the cells marked NBVAL_CHECK_OUTPUT,
compared as nbval compares them). The rest of a solution notebook is the student notebook's code, so every
notebook's code runs once here; `make test-solutions` runs the solution notebooks whole with nbval.
Run times are printed and kept in build/smoke-durations.json; a run over its budget fails (a hang guard, not a
benchmark)."""
import configparser
import fcntl
import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from _chromium import CHROMIUM, Chromium
from _servers import serving

from mlcourse import notebooks, workshop
from mlcourse.processes import free_port

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

BUDGET_S = {"default": 600}  # a hang guard on a shared 2-core machine, not a benchmark
STUDENT = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# notebooks whose slow models `make workshop` trains ahead of time: in a prepared room they only load them
PREPARED = {"05_compression", "07_distillation_ensembles", "08_deployment", "09_runtimes"}
_CELLS = "Array.from(document.querySelectorAll('.jp-Notebook:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'))"


@pytest.fixture(scope="session")
def lab(tmp_path_factory, prepared_room):
    """`make lab`'s command on a copy of the course, at smoke size, on loopback, with the prepared cache and the
    prepared searches seeded into its work folder (as a room seeds each learner's); one per xdist worker, for all
    the notebooks it runs."""
    tmp = tmp_path_factory.mktemp("runall")
    root = tmp / "course"
    shutil.copytree(notebooks.ROOT / "notebooks", root / "notebooks")
    port, token = free_port(), "run-all-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp / "config"), "MLCOURSE_SIZE": "smoke",
           "MLCOURSE_CACHE_DIR": str(prepared_room), "MLCOURSE_WORK_DIR": str(tmp / "runs")}
    notebooks.use_this_checkout()  # the kernels import this checkout's mlcourse
    env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    cmd = workshop.lab_command(port, "127.0.0.1", token, root=root)

    def up():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as r:
            return r.status == 200

    with serving(cmd, tmp / "lab.log", up, "JupyterLab", stop_timeout=20, env=env), Chromium() as browser:
        yield {"base": f"http://127.0.0.1:{port}", "token": token, "root": root, "browser": browser,
               "work": tmp / "runs" / "smoke", "prepared": prepared_room / "work" / "smoke", "log": tmp / "lab.log",
               "runtime": tmp / "runtime"}


def _session(lab, path) -> dict | None:
    """JupyterLab's session for ``path`` (REST API: its id, and its kernel's id and execution_state), or None."""
    with urllib.request.urlopen(f"{lab['base']}/api/sessions?token={lab['token']}", timeout=10) as r:
        sessions = [s for s in json.loads(r.read()) if s["path"] == path]
    return sessions[0] if sessions else None


def _kernel_state(lab, path) -> str | None:
    session = _session(lab, path)
    return session["kernel"]["execution_state"] if session else None


def _cpu_seconds(kernel_id: str) -> float:
    """CPU seconds used so far by the kernel process ``kernel_id`` and every process below it (06's workers).
    The ground truth for "the kernel is working": its reported execution_state reads idle after any message it
    answers (a progress widget's comm message, while a cell still runs), and JupyterLab's prompts can lag."""
    tick, procs = os.sysconf("SC_CLK_TCK"), {}
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit():
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                procs[int(d.name)] = (int(stat[1]), sum(map(int, stat[11:15])), (d / "cmdline").read_bytes())
        except OSError:
            continue
    wanted = {pid for pid, (_, _, cmd) in procs.items() if f"kernel-{kernel_id}".encode() in cmd}
    while True:  # the kernel's descendants
        more = {pid for pid, (ppid, _, _) in procs.items() if ppid in wanted} - wanted
        if not more:
            break
        wanted |= more
    return sum(procs[pid][1] for pid in wanted) / tick


_NBVAL_SANITIZE = configparser.ConfigParser()
_NBVAL_SANITIZE.read(Path(__file__).with_name("nbval_sanitize.cfg"))


def _sanitize(text: str) -> str:
    """``text`` with nbval's replacements (tests/nbval_sanitize.cfg) applied, as nbval compares outputs."""
    for section in _NBVAL_SANITIZE.sections():
        text = re.sub(_NBVAL_SANITIZE[section]["regex"], _NBVAL_SANITIZE[section]["replace"], text)
    return text.strip()


def _shown(outputs) -> str:
    """What nbval compares of a cell's outputs: streams and text/plain results, sanitized."""
    return _sanitize("".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs
                             if o["output_type"] in ("stream", "execute_result")))


def _solve_in_kernel(lab, kernel_id: str, path: Path) -> list[str]:
    """Run every exercise's solution from ``solutions/`` in the kernel the Run All left, one after another, as a
    learner who has solved them all would at the end; returns what went wrong: a cell that raised, or one marked
    NBVAL_CHECK_OUTPUT whose output differs from the one the solution notebook holds. (The rest of a solution
    notebook is the student notebook's code, cell for cell, which Run All has just run: lint's generate --check
    keeps them so.)"""
    from jupyter_client import BlockingKernelClient

    solution = nbformat.read(notebooks.SOLUTIONS / path.name, as_version=4)
    client = BlockingKernelClient(connection_file=str(lab["runtime"] / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    problems = []
    try:
        client.wait_for_ready(timeout=60)
        for i, cell in enumerate(solution.cells):
            if cell.cell_type != "code" or notebooks.BEGIN not in cell.source:
                continue
            outputs = []

            def keep(msg, outputs=outputs):
                if msg["msg_type"] in ("stream", "execute_result", "error"):
                    outputs.append({"output_type": msg["msg_type"], **msg["content"]})

            reply = client.execute_interactive(cell.source, timeout=600, output_hook=keep)
            if reply["content"]["status"] != "ok":
                problems.append(f"solution cell {i} raised {reply['content'].get('ename')}: "
                                f"{str(reply['content'].get('evalue'))[:300]}")
            elif notebooks.CHECK_MARK in cell.source and _shown(outputs) != _shown(cell.outputs):
                problems.append(f"solution cell {i} printed {_shown(outputs)!r}, the notebook holds "
                                f"{_shown(cell.outputs)!r}")
    finally:
        client.stop_channels()
    return problems


def _shut_down(lab, path) -> None:
    """End the session of ``path`` and its kernel (one kernel at a time on the worker: each holds TensorFlow)."""
    session = _session(lab, path)
    if session:
        request = urllib.request.Request(f"{lab['base']}/api/sessions/{session['id']}?token={lab['token']}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()


def _wait_idle(lab, path, timeout=120):
    """Until the kernel JupyterLab started for ``path`` has started and is idle."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _kernel_state(lab, path) == "idle":
            return
        time.sleep(0.5)
    pytest.fail(f"no idle kernel for {path} within {timeout} s")


def _prompts(page) -> list[str]:
    return page.evaluate(f"{_CELLS}.map(p => p.textContent.trim())") or []  # offscreen cells: no innerText


def _save(page):
    page.click("Array.from(document.querySelectorAll('.lm-MenuBar-itemLabel')).find(e => e.innerText === 'File')",
               "the File menu")
    page.click("Array.from(document.querySelectorAll('.lm-Menu-itemLabel'))"
               ".find(e => e.innerText === 'Save Notebook')", "Save Notebook")


def _why_stopped(page, lab, path, log_from: int) -> str:
    """What a failed Run All left behind: the error outputs of the saved notebook and what the server logged about
    the kernel from byte ``log_from`` of its log on (a restart means it died, e.g. out of memory)."""
    saved = lab["root"] / path
    before = saved.stat().st_mtime
    _save(page)
    end = time.monotonic() + 30
    while time.monotonic() < end and saved.stat().st_mtime == before:
        time.sleep(1)
    nb = nbformat.read(saved, as_version=4)
    errors = [f"code cell {i}: {o.ename}: {str(o.evalue)[:300]}"
              for i, c in enumerate(c for c in nb.cells if c.cell_type == "code")
              for o in c.get("outputs", []) if o.output_type == "error"]
    with open(lab["log"], "rb") as f:
        f.seek(log_from)
        log = [line for line in f.read().decode(errors="replace").splitlines()
               if re.search(r"restart|died|dead|Traceback|Error", line)]
    return f"\n errors in the saved notebook: {errors or 'none'}\n server log: {log[-15:] or 'nothing on the kernel'}"


def _run_all(page, lab, path, budget, kernel_id):
    """Click Run > Run All Cells; wait until every code cell shows an execution count (failing, with the prompts
    seen, when the kernel has stayed idle, using no CPU, for 30 s with cells left unrun, or after ``budget`` s);
    then click File > Save Notebook."""
    page.click("Array.from(document.querySelectorAll('.lm-MenuBar-itemLabel')).find(e => e.innerText === 'Run')",
               "the Run menu")
    page.click("Array.from(document.querySelectorAll('.lm-Menu-itemLabel'))"
               ".find(e => e.innerText === 'Run All Cells')", "Run All Cells")
    end, idle_since, log_from = time.monotonic() + budget, None, Path(lab["log"]).stat().st_size
    while True:
        prompts = _prompts(page)
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            break
        idle = _kernel_state(lab, path) == "idle" and not any("*" in p for p in prompts)
        if not idle:
            idle_since = None
        elif idle_since is None:
            idle_since, cpu_then = time.monotonic(), _cpu_seconds(kernel_id)
        elif time.monotonic() - idle_since > 30 and _cpu_seconds(kernel_id) - cpu_then > 1.0:
            idle_since = None  # it looked idle but computed all along: still running
        elif time.monotonic() - idle_since > 30:
            unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
            pytest.fail(f"Run All stopped: code cells {unrun[:10]} never ran and the kernel has been idle for 30 s "
                        f"(prompts: {prompts[:40]})"
                        + _why_stopped(page, lab, path, log_from))
        if time.monotonic() > end:
            pytest.fail(f"Run All did not finish within {budget} s (prompts: {prompts[:40]})"
                        + _why_stopped(page, lab, path, log_from))
        time.sleep(2)
    _save(page)


@pytest.mark.parametrize("path", STUDENT, ids=[p.stem for p in STUDENT])
def test_run_all_reaches_the_end_with_only_the_stubs_failing(path, lab):
    budget = BUDGET_S.get(path.stem, BUDGET_S["default"])
    saved = lab["root"] / "notebooks" / path.name
    before = saved.stat().st_mtime
    # each notebook as a new learner in a prepared room finds it: the prepared searches seeded into an empty work
    # folder (what an earlier notebook of this run chose, e.g. 03's hand-on, must not change what 07 trains)
    shutil.rmtree(lab["work"], ignore_errors=True)
    workshop.seed_work_dir(lab["prepared"], lab["work"])
    page = lab["browser"].open(f"{lab['base']}/lab/tree/notebooks/{path.name}?token={lab['token']}")
    try:
        page.wait_for(f"{_CELLS}.length > 0", timeout=120, what=f"{path.name}'s cells")
        _wait_idle(lab, f"notebooks/{path.name}")
        kernel_id = _session(lab, f"notebooks/{path.name}")["kernel"]["id"]
        t0 = time.perf_counter()
        _run_all(page, lab, f"notebooks/{path.name}", budget, kernel_id)
        elapsed = time.perf_counter() - t0
        end = time.monotonic() + 60  # the save lands on disk a moment after the click
        while time.monotonic() < end:
            if saved.stat().st_mtime != before:
                nb = nbformat.read(saved, as_version=4)
                code = [c for c in nb.cells if c.cell_type == "code"]
                if all(c.execution_count for c in code):
                    break
            time.sleep(1)
    finally:
        page.close()
    try:
        _check_saved(path, saved, elapsed, budget)
        # then the solutions, in the same kernel: each exercise solved must pass its checker
        problems = _solve_in_kernel(lab, kernel_id, path)
        assert not problems, f"{path.stem}'s solutions in the learner's kernel: " + "; ".join(problems)
    finally:
        _shut_down(lab, f"notebooks/{path.name}")


def _check_saved(path, saved, elapsed, budget):
    """The notebook Run All saved: every code cell executed, only the stubs raising, at smoke size, in a prepared
    room loading what it prepared; its time kept in build/smoke-durations.json and under ``budget``."""
    nb = nbformat.read(saved, as_version=4)
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.execution_count]
    assert not unrun, f"{path.stem}: cells {unrun} have no execution count in the saved notebook"
    stubs = [c for c in nb.cells if "raises-exception" in c.metadata.get("tags", [])]
    assert stubs, "a student notebook without exercises"
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if "raises-exception" in cell.metadata.get("tags", []):
            assert errors and errors[0].ename == "NotImplementedError", f"cell {i}: the stub did not raise"
            assert "Exercise" in errors[0].evalue
        else:
            assert not errors, f"cell {i} failed: {errors[0].ename}: {errors[0].evalue}"
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "SMOKE size" in text, f"{path.stem}: the kernel did not run at smoke size"
    if path.stem in PREPARED:  # the room was prepared: every slow model comes from the cache, none is trained
        assert "loaded from the workshop cache" in text, f"{path.stem} did not use the models `make workshop` cached"
        assert "cached in" not in text, f"{path.stem} trained a model that `make workshop` should have cached"
    report = notebooks.ROOT / "build" / "smoke-durations.json"
    report.parent.mkdir(exist_ok=True)
    with open(report.with_suffix(".lock"), "w") as lock:  # two xdist workers may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        durations = json.loads(report.read_text()) if report.is_file() else {}
        durations[path.stem] = round(elapsed, 1)
        report.write_text(json.dumps(durations, indent=2))
    print(f"{path.stem}: Run All in {elapsed:.1f} s at smoke size (budget {budget} s)")
    assert elapsed < budget, f"{path.stem} took {elapsed:.0f} s at smoke size, over its {budget} s budget"
