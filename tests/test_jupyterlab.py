"""JupyterLab really opens the course: start the server, list the notebooks through its REST API, start a
kernel and execute a whole notebook through the kernel's websocket, as the browser would."""
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import nbformat
import pytest

from mlcourse.runtime import ROOT, free_port

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


def test_jupyterlab_serves_the_course_and_runs_a_notebook_through_its_kernel_api(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
    if os.geteuid() == 0:  # CI runs as root; JupyterLab refuses that without this flag
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if _get(f"{base}/api/status", token)[0] == 200:
                    break
            except OSError:
                assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        status, page = _get(f"{base}/lab", token)
        assert status == 200 and "JupyterLab" in page
        listing = json.loads(_get(f"{base}/api/contents/notebooks", token)[1])
        names = {c["name"] for c in listing["content"]}
        expected = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
        assert expected and expected <= names
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
        assert any("mlcourse: seed 0, SMOKE run" in t["text"] for t in transcript)  # the kernel got smoke mode
        assert any("✅ Exercise 0.1 passed" in t["text"] for t in transcript)
        assert _get(f"{base}/api/sessions/{session['id']}", token, "DELETE")[0] == 204
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
