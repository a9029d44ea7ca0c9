"""JupyterLab really opens the course, started by the same command as `make lab`: the landing notebook opens
in a real browser, its links reach a solution and the results report; through the REST API, a kernel
executes a whole notebook over its websocket, as the browser would."""
import asyncio
import json
import os
import shutil
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from _chromium import Chromium, needs_chromium
from _servers import assert_loopback_only, serving

from mlcourse import catalog, report, workshop
from mlcourse.processes import free_port
from mlcourse.session import ROOT

NOTEBOOK = "solutions/00_workflow.ipynb"


def _get(url, token, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read().decode()


def _message(code, session):
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": session,
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


async def _execute_all(ws_url, cells, timeout=300):
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(ws_url)
    session, transcript = uuid.uuid4().hex, []
    try:
        for code in cells:
            msg = _message(code, session)
            await conn.write_message(json.dumps(msg))
            replied, idle, errors, texts = False, False, [], []
            end = time.monotonic() + timeout
            while not (replied and idle):
                raw = await asyncio.wait_for(conn.read_message(), timeout=max(1, end - time.monotonic()))
                if raw is None:
                    raise RuntimeError("the kernel websocket closed")
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind = m["msg_type"]
                if kind == "execute_reply":
                    replied = True
                elif kind == "status" and m["content"]["execution_state"] == "idle":
                    idle = True
                elif kind == "error":
                    errors.append(f"{m['content']['ename']}: {m['content']['evalue']}")
                elif kind == "stream":
                    texts.append(m["content"]["text"])
            transcript.append({"code": code, "errors": errors, "text": "".join(texts)})
            if errors:
                break
    finally:
        conn.close()
    return transcript


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab`'s command on a copy of the course (with a results report in build/), on loopback."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "course"
    for name in ("notebooks", "solutions"):
        shutil.copytree(ROOT / name, root / name)
    for name in ("README.md", "INSTRUCTOR.md"):
        shutil.copy(ROOT / name, root / name)
    (root / "build").mkdir()
    report.write([{"notebook": "00_workflow", "status": "ok", "seconds": 60.0, "error": "", "output": ""}],
                 tmp / "no-results", root / "build", size="smoke")
    port, token = free_port(), "course-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp / "config")}
    cmd = workshop.lab_command(port, "127.0.0.1", token, root=root)
    base = f"http://127.0.0.1:{port}"
    with serving(cmd, tmp / "lab.log", lambda: _get(f"{base}/api/status", token)[0] == 200, "JupyterLab",
                 stop_timeout=20, env=env):
        yield {"base": base, "token": token, "port": port, "root": root, "tmp": tmp}


def test_lab_listens_on_loopback_only(lab):
    assert_loopback_only(lab["port"], "JupyterLab")


def test_jupyterlab_serves_the_course_and_runs_a_notebook_through_its_kernel_api(lab):
    base, token, port = lab["base"], lab["token"], lab["port"]
    status, page = _get(f"{base}/lab", token)
    assert status == 200 and "JupyterLab" in page
    listing = json.loads(_get(f"{base}/api/contents/notebooks", token)[1])
    names = {c["name"] for c in listing["content"]}
    expected = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} | {"index.ipynb"}
    assert expected <= names
    # open a notebook the way the browser does: a session with a Python kernel, then its websocket
    session = json.loads(_get(f"{base}/api/sessions", token, "POST",
                              {"path": NOTEBOOK, "type": "notebook", "name": "", "kernel": {"name": "python3"}})[1])
    kernel = session["kernel"]["id"]
    model = json.loads(_get(f"{base}/api/contents/{NOTEBOOK}", token)[1])  # the notebook, as the browser gets it
    nb = nbformat.reads(json.dumps(model["content"]), as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    ws = f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?token={token}"
    transcript = asyncio.run(_execute_all(ws, cells))
    failed = [t for t in transcript if t["errors"]]
    assert not failed, f"cell failed through JupyterLab: {failed[0]['code'][:300]}\n{failed[0]['errors']}"
    assert len(transcript) == len(cells)
    assert any("mlcourse: seed 0, SMOKE size" in t["text"] for t in transcript)  # the kernel got smoke mode
    assert any("✅ Exercise 0.1 passed" in t["text"] for t in transcript)
    assert _get(f"{base}/api/sessions/{session['id']}", token, "DELETE")[0] == 204


@needs_chromium
def test_a_browser_opens_the_landing_notebook_and_reaches_a_solution_and_the_report(lab):
    """The learner's path: the URL `make lab` prints -> the landing notebook -> a solution -> the report."""
    base, token = lab["base"], lab["token"]
    shots = Path(os.environ.get("MLCOURSE_SCREENSHOTS") or lab["tmp"])
    with Chromium() as browser:
        page = browser.open(f"{base}/?token={token}")  # the default URL leads to the landing notebook
        page.wait_for("document.querySelector('.jp-RenderedMarkdown h1') && "
                      "document.querySelector('.jp-RenderedMarkdown h1').innerText.includes('start here')",
                      timeout=90, what="the landing notebook's title")
        assert "/lab/tree/notebooks/index.ipynb" in page.evaluate("location.href")
        page.screenshot(shots / "lab-landing.png")
        # JupyterLab resolves the markdown's relative links against the served root; it renders the cells as they
        # come into view, so wait for the cell that links the solutions (a slow machine read the links too early)
        page.wait_for("Array.from(document.querySelectorAll('.jp-RenderedMarkdown a'))"
                      ".some(a => a.href.includes('solutions/00_workflow.ipynb'))", timeout=60,
                      what="the landing notebook's link to a solution")
        links = page.evaluate("Array.from(document.querySelectorAll('.jp-RenderedMarkdown a')).map(a => a.href)")
        assert any("solutions/00_workflow.ipynb" in h for h in links), links
        assert any("/files/build/report.html" in h for h in links), links
        assert any("/files/build/smoke/report.html" in h for h in links), links  # make smoke's report too
        time.sleep(3)  # the announcements plugin asks at start-up, if it asks at all
        assert "official Jupyter news" not in page.evaluate("document.body.innerText")
        page.evaluate("Array.from(document.querySelectorAll('.jp-RenderedMarkdown a'))"
                      ".find(a => a.href.includes('solutions/00_workflow.ipynb')).click()")
        page.wait_for("Array.from(document.querySelectorAll('.lm-TabBar-tabLabel'))"
                      ".some(t => t.innerText.includes('00_workflow.ipynb'))", timeout=60, what="the solution's tab")
        page.wait_for("location.href.includes('/lab/tree/solutions/00_workflow.ipynb') && "
                      "Array.from(document.querySelectorAll('.jp-Notebook:not(.lm-mod-hidden) .jp-Cell'))"
                      ".some(c => c.innerText.includes('import mlcourse'))", timeout=60,
                      what="the solution notebook's cells")
        page.screenshot(shots / "lab-solution.png")
        report_page = browser.open(f"{base}/files/build/report.html?token={token}")  # where the link leads
        report_page.wait_for("document.title.includes('mlcourse results report')", what="the results report")
        assert report_page.evaluate("document.querySelectorAll('h2').length") >= 3
    for name in ("README.md", "INSTRUCTOR.md"):  # the course root is reachable, not only notebooks/
        assert _get(f"{base}/api/contents/{name}", token)[0] == 200


def test_no_news_pop_up_offline(lab):
    """JupyterLab 4.6 asks "Would you like to get notified about official Jupyter news?" while the announcements
    plugin's ``fetchNews`` setting is "none" (its default), whatever ``--LabApp.news_url`` says: the course's
    overrides make it "false" (and no update check)."""
    _, text = _get(f"{lab['base']}/lab/api/settings/@jupyterlab/apputils-extension:notification", lab["token"])
    props = json.loads(text)["schema"]["properties"]
    assert props["fetchNews"]["default"] == "false" and props["checkForUpdates"]["default"] is False


def test_the_landing_notebook_saved_by_jupyterlab_still_passes_the_catalog_check(lab):
    """Opening the landing notebook and saving it (as JupyterLab's autosave does, through the contents API, with
    the kernel's language_info, another Python's version and display name) leaves `catalog check` passing."""
    root, path = lab["root"], workshop.LANDING
    shutil.copy(ROOT / "README.md", root / "README.md")
    assert catalog.write(root, check=True) == []
    model = json.loads(_get(f"{lab['base']}/api/contents/{path}", lab["token"])[1])
    nb = model["content"]
    assert nb["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"  # as the kernel names itself
    assert "language_info" in nb["metadata"]  # nothing for a first save to add
    nb["metadata"]["language_info"] = {**nb["metadata"]["language_info"], "version": "3.12.9"}
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3"
    nb["nbformat_minor"] = 4
    status, _ = _get(f"{lab['base']}/api/contents/{path}", lab["token"], "PUT",
                     {"type": "notebook", "format": "json", "content": nb})
    assert status == 200
    assert json.loads((root / path).read_text())["metadata"]["language_info"]["version"] == "3.12.9"
    assert catalog.write(root, check=True) == []  # what a save adds is not a change of content
    assert catalog.write(root) == [] and "3.12.9" in (root / path).read_text()  # and write leaves it as it is


def test_the_landing_notebook_links_both_reports_and_says_what_a_missing_one_means():
    text = "\n".join(c.source for c in catalog.index_notebook().cells[:1])
    assert "(../build/report.html)" in text and "(../build/smoke/report.html)" in text
    assert "make smoke" in text and "404" in text
