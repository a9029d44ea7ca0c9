"""Run All reaches the end of every student notebook in JupyterLab, clicked as a learner clicks it: a real
browser (headless Chromium) opens the notebook, the menu Run > Run All Cells is clicked, and the notebook, saved
by File > Save Notebook, must hold every code cell executed, the only errors the exercise stubs
(NotImplementedError in cells tagged raises-exception). The server runs at smoke size in a room prepared as
`make workshop` prepares it: the notebooks whose slow models it caches must load them, not train them again,
and the searches it ran ahead are resumed.
Run times are printed and kept in build/smoke-durations.json; a run over its budget fails (a hang guard, not a
benchmark)."""
import fcntl
import json
import os
import re
import shutil
import time
import urllib.request

import nbformat
import pytest
from _chromium import CHROMIUM, Chromium
from _servers import serving

from mlcourse import notebooks, workshop
from mlcourse.runtime import free_port

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

BUDGET_S = {"default": 600}  # a hang guard on a shared 2-core machine, not a benchmark
STUDENT = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# notebooks whose slow models `make workshop` trains ahead of time: in a prepared room they only load them
PREPARED = {"04_compression", "06_distillation_ensembles", "07_deployment", "08_runtimes"}
_CELLS = "Array.from(document.querySelectorAll('.jp-Notebook:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'))"


@pytest.fixture(scope="session")
def prepared_room(tmp_path_factory):
    """A model cache prepared as `make workshop` does (at smoke size), once per test run: under pytest-xdist the
    workers share it (the first prepares it, the others wait)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    room = base / "prepared-room"
    with open(base / "prepared-room.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (room / "READY").exists():
            room.mkdir(exist_ok=True)
            before = {k: os.environ.get(k) for k in ("MLCOURSE_CACHE_DIR", "MLCOURSE_WORK_DIR")}
            os.environ.update(MLCOURSE_CACHE_DIR=str(room), MLCOURSE_WORK_DIR=str(room / "work"))
            try:
                workshop.prepare(size="smoke")  # the models into the cache, the searches into room/work/smoke
            finally:
                for k, v in before.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            (room / "READY").write_text("prepared\n")
    return room


@pytest.fixture(scope="module")
def lab(tmp_path_factory, prepared_room):
    """`make lab`'s command on a copy of the course, at smoke size, on loopback, with the prepared cache and the
    prepared searches seeded into its work folder (as a room seeds each learner's)."""
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
               "work": tmp / "runs" / "smoke", "prepared": prepared_room / "work" / "smoke"}


def _kernel_state(lab, path) -> str | None:
    """The execution state of the kernel JupyterLab started for ``path`` (REST API), or None before it has one."""
    with urllib.request.urlopen(f"{lab['base']}/api/sessions?token={lab['token']}", timeout=10) as r:
        sessions = [s for s in json.loads(r.read()) if s["path"] == path]
    return sessions[0]["kernel"]["execution_state"] if sessions else None


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


def _run_all(page, lab, path, budget):
    """Click Run > Run All Cells; wait until every code cell shows an execution count (failing, with the
    prompts seen, when the kernel has stayed idle with cells left unrun, or after ``budget`` s); then click
    File > Save Notebook."""
    page.click("Array.from(document.querySelectorAll('.lm-MenuBar-itemLabel')).find(e => e.innerText === 'Run')",
               "the Run menu")
    page.click("Array.from(document.querySelectorAll('.lm-Menu-itemLabel'))"
               ".find(e => e.innerText === 'Run All Cells')", "Run All Cells")
    end, idle_since = time.monotonic() + budget, None
    while True:
        prompts = _prompts(page)
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            break
        idle = _kernel_state(lab, path) == "idle" and not any("*" in p for p in prompts)
        idle_since = (idle_since or time.monotonic()) if idle else None
        if idle_since and time.monotonic() - idle_since > 30:
            unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
            pytest.fail(f"Run All stopped: code cells {unrun[:10]} never ran (prompts: {prompts[:40]})")
        if time.monotonic() > end:
            pytest.fail(f"Run All did not finish within {budget} s (prompts: {prompts[:40]})")
        time.sleep(2)
    page.click("Array.from(document.querySelectorAll('.lm-MenuBar-itemLabel')).find(e => e.innerText === 'File')",
               "the File menu")
    page.click("Array.from(document.querySelectorAll('.lm-Menu-itemLabel'))"
               ".find(e => e.innerText === 'Save Notebook')", "Save Notebook")


@pytest.mark.parametrize("path", STUDENT, ids=[p.stem for p in STUDENT])
def test_run_all_reaches_the_end_with_only_the_stubs_failing(path, lab):
    budget = BUDGET_S.get(path.stem, BUDGET_S["default"])
    saved = lab["root"] / "notebooks" / path.name
    before = saved.stat().st_mtime
    # each notebook as a new learner in a prepared room finds it: the prepared searches seeded into an empty work
    # folder (what an earlier notebook of this run chose, e.g. 02's hand-on, must not change what 06 trains)
    shutil.rmtree(lab["work"], ignore_errors=True)
    workshop.seed_work_dir(lab["prepared"], lab["work"])
    page = lab["browser"].open(f"{lab['base']}/lab/tree/notebooks/{path.name}?token={lab['token']}")
    try:
        page.wait_for(f"{_CELLS}.length > 0", timeout=120, what=f"{path.name}'s cells")
        _wait_idle(lab, f"notebooks/{path.name}")
        t0 = time.perf_counter()
        _run_all(page, lab, f"notebooks/{path.name}", budget)
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
    nb = nbformat.read(saved, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
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
