"""A workshop room for real: JupyterHub started by `mlcourse workshop room`'s own command on a free loopback
port, two learners' servers started through the hub's REST API, both running the same tuning code at the same
time through their kernels; each keeps every trial in its own work folder, and shares the instructor's cache."""
import asyncio
import importlib.util
import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from _servers import assert_loopback_only, serving

from mlcourse import workshop
from mlcourse.processes import free_port

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jupyterhub") is None,
                       reason="jupyterhub is not installed (make setup installs it from requirements.lock)"),
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                       reason="JupyterHub's proxy is not installed: npm install -g configurable-http-proxy"),
]
LEARNERS = ("ana", "bo")
TOKEN = "room-test-admin-token"
TUNE = """
import os, json
from mlcourse import data, tuning
from mlcourse.session import work_dir
ds = data.load_fashion_mnist(source="embedded")
x, y, xv, yv = ds.x_train[:200], ds.y_train[:200], ds.x_test[:100], ds.y_test[:100]
t = tuning.make_tuner("random", work_dir() / "tuning", "shared", max_trials=3, max_epochs=1, verbose=False)
table = tuning.search(t, x, y, xv, yv, epochs=1, batch_size=64)
print("ROOM " + json.dumps({"work": os.environ.get("MLCOURSE_WORK_DIR"), "cache": os.environ.get("MLCOURSE_CACHE_DIR"),
                            "shared": os.environ.get("MLCOURSE_CACHE_SHARED"),
                            "cwd": os.getcwd(), "trials": int(table["trial_id"].nunique()),
                            "dir": str(work_dir() / "tuning" / "shared")}))
"""


def _api(base, path, method="GET", body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
        return r.status, (json.loads(text) if text else None)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("room")
    port = free_port()
    cmd, settings = workshop.room_command(tmp / "room", port, "127.0.0.1", "shared-pw", api_token=TOKEN, size="smoke",
                                             prepared_work=tmp / "prepared")
    base = f"http://127.0.0.1:{port}"
    with serving(cmd, tmp / "hub.log", lambda: _api(base, "/hub/api/"), "JupyterHub", cwd=tmp / "room"):
        yield {"base": base, "port": port, "room": tmp / "room", "settings": settings, "log": tmp / "hub.log"}


def test_the_hub_listens_on_loopback_only_and_its_config_says_where_the_room_is(hub):
    assert_loopback_only(hub["port"], "the room")


async def _run_in_kernel(base, user, code, timeout=240):
    from test_jupyterlab import _message
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    _, kernel = await asyncio.to_thread(_api, base, f"/user/{user}/api/kernels", "POST", {"name": "python3"})
    url = base.replace("http", "ws") + f"/user/{user}/api/kernels/{kernel['id']}/channels"
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}))
    msg = _message(code, f"room-{user}")
    await conn.write_message(json.dumps(msg))
    out, errors, end = [], [], time.monotonic() + timeout
    try:
        while True:
            raw = await asyncio.wait_for(conn.read_message(), timeout=max(1, end - time.monotonic()))
            assert raw is not None, f"{user}'s kernel websocket closed"
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                errors.append(f"{m['content']['ename']}: {m['content']['evalue']}")
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
    finally:
        conn.close()
    assert not errors, f"{user}: {errors}\n{''.join(out)[-2000:]}"
    line = [ln for ln in "".join(out).splitlines() if ln.startswith("ROOM ")]
    assert line, f"{user} printed no result:\n{''.join(out)[-2000:]}"
    return json.loads(line[-1][5:])


def test_two_learners_tune_the_same_project_at_once_and_each_keeps_every_trial(hub):
    base, room = hub["base"], hub["room"]
    assert _api(base, "/hub/api/users", "POST", {"usernames": list(LEARNERS)})[0] == 201
    for user in LEARNERS:
        assert _api(base, f"/hub/api/users/{user}/server", "POST", {})[0] in (201, 202)
    for _ in range(240):
        users = [_api(base, f"/hub/api/users/{u}")[1] for u in LEARNERS]
        if all(u["servers"].get("", {}).get("ready") for u in users):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the learners' servers did not start within 120 s:\n" + hub["log"].read_text()[-3000:])
    for user in LEARNERS:  # each has their own copy of the course, opened on the landing notebook
        home = room / "learners" / user
        assert (home / workshop.LANDING).is_file() and (home / "solutions").is_dir()
        status, listing = _api(base, f"/user/{user}/api/contents/notebooks")
        assert status == 200 and "index.ipynb" in {c["name"] for c in listing["content"]}
        _, news = _api(base, f"/user/{user}/lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"  # no news pop-up in the room either

    async def both():
        return await asyncio.gather(*(_run_in_kernel(base, u, TUNE) for u in LEARNERS))

    t0 = time.monotonic()
    results = dict(zip(LEARNERS, asyncio.run(both())))
    seconds = time.monotonic() - t0
    dirs = set()
    for user, r in results.items():
        home = (room / "learners" / user).resolve()
        assert Path(r["work"]).resolve() == home / "runs" and Path(r["cwd"]).resolve() == home
        assert r["shared"] == hub["settings"]["cache_dir"]  # the instructor's prepared cache, shared read-only
        assert Path(r["cache"]).resolve() == home / "runs" / "cache"  # what a learner trains stays theirs
        assert r["trials"] == 3
        on_disk = sorted(p.parent.name for p in Path(r["dir"]).glob("trial_*/trial.json"))
        assert on_disk == ["trial_0", "trial_1", "trial_2"], f"{user} kept {on_disk}"
        assert Path(r["dir"]).resolve().is_relative_to(home)
        dirs.add(Path(r["dir"]).resolve())
    assert len(dirs) == 2, f"the two learners tuned in one folder: {dirs} ({seconds:.0f} s)"


def test_room_refuses_to_start_without_its_proxy_and_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="npm install -g configurable-http-proxy"):
        workshop.room(port=free_port())


def test_room_warns_about_the_network_when_not_on_loopback_and_prints_how_to_join(tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(workshop.os, "execv", lambda exe, cmd: started.append(cmd))  # nothing is started
    workshop.room(port=free_port(), ip="0.0.0.0", room_dir=tmp_path, password="pw-for-the-room")
    out = capsys.readouterr().out
    assert "WARNING: serving on 0.0.0.0" in out and "anyone on this network" in out
    assert "password: pw-for-the-room" in out and "learners" in out
    assert started and started[0][-3:-1] == ["-f", str((tmp_path / "jupyterhub_config.py").resolve())]
    workshop.room(port=free_port(), ip="127.0.0.1", room_dir=tmp_path, password="pw")
    assert "WARNING" not in capsys.readouterr().out
