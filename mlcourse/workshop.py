"""Workshop kit: get a room ready ahead of time, offline, so that nobody waits during the session.

    python -m mlcourse.workshop prepare           # check the data, pre-train the slow models at lesson size
    python -m mlcourse.workshop prepare --size smoke   # the same at smoke size (a minute; for a dry run)
    python -m mlcourse.workshop check             # what this machine has: versions, data, cached models
    python -m mlcourse.workshop lab               # JupyterLab on the course, opens on the landing notebook
    python -m mlcourse.workshop lab --ip 0.0.0.0 --port 8888   # one JupyterLab (one learner) on the network
    python -m mlcourse.workshop room --ip 0.0.0.0 --port 8000  # a room: JupyterHub, one space per learner

Notebooks train their slow models through :func:`mlcourse.cache.cached_model`; ``prepare`` runs the same
recipes at the notebooks' default parameters, so that in the session every one of them loads in a second.
Weeks whose slow part is a search (keras-tuner projects, NAS) run it into the instructor's work folder
(:func:`mlcourse.session.work_dir`); a room copies that folder into each learner's own where the learner has
nothing yet (:func:`seed_work_dir`), and keras-tuner resumes the projects from there.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from mlcourse import cache, data, report, weeks
from mlcourse import settings as course_settings
from mlcourse.cache import cache_dir
from mlcourse.processes import child_env, free_port
from mlcourse.session import ROOT, quiet_tensorflow, work_dir

__all__ = ["prepare", "check", "lab_command", "lab", "kernel_check", "lab_settings_dir", "port_to_use",
           "room_command", "configure_room", "room", "seed_work_dir", "RECIPES", "LANDING", "LAB_OVERRIDES"]


# --- the recipes of the notebooks' slow models, at their default parameters (keep in step with them) ---
def _fashion():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data.load_fashion_mnist()


#: The notebooks whose slow models a room gets ahead of time, and the week module whose ``warm_cache(ds, size)``
#: trains them at that notebook's default sizes (the module's own table, which the notebook reads too): from the
#: week registry (:mod:`mlcourse.weeks`, each week's ``prepared``).
RECIPES = {f"{w.stem} {w.prepared}": w.module for w in weeks.WEEKS if w.prepared}


def prepare(size: str = "lesson") -> dict:
    """Check the data and train + cache every slow model at the notebooks' ``size`` (default: lesson, what a
    room's learners run); returns the seconds each recipe took."""
    from tqdm.auto import tqdm

    quiet_tensorflow()
    ds = _fashion()
    if not ds.is_full:
        print(
            f"WARNING: only the embedded subset was found ({len(ds.x_train)} training images). Install the "
            "real Fashion-MNIST first (sudo apt-get install dataset-fashion-mnist, or see the README)."
        )
    size = course_settings.size(size)
    print(f"data: {ds}; size: {size}")
    seconds = {}
    for what, fn in tqdm(RECIPES.items(), desc="room models"):
        t0 = time.perf_counter()
        importlib.import_module(f"mlcourse.{fn}").warm_cache(ds, size)
        seconds[what] = round(time.perf_counter() - t0, 1)
    print(f"cache: {cache_dir()}; prepared work folder (searches): {work_dir(size)}")
    return seconds


def seed_work_dir(src, dst) -> list[str]:
    """Copy the instructor's prepared work folder ``src`` into a learner's ``dst`` where the learner has nothing:
    never overwrites. A folder missing in ``dst`` is copied whole; one present is entered only when it is a mere
    container (no files of its own in ``src``): a keras-tuner project or a run folder the learner already has is
    theirs and is left alone. Returns what was copied (paths relative to ``src``)."""
    import shutil

    src, dst = Path(src), Path(dst)
    copied = []
    if not src.is_dir():
        return copied
    for item in sorted(src.iterdir()):
        target = dst / item.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, target)
            copied.append(item.name)
        elif item.is_dir() and target.is_dir() and not any(p.is_file() for p in item.iterdir()):
            copied += [f"{item.name}/{c}" for c in seed_work_dir(item, target)]
    return copied


def check() -> dict:
    """What the room has: Python and library versions, CPU and GPU, where the data comes from (the report's
    environment block, :func:`mlcourse.report.environment`), and the complete cached models."""

    info = report.environment()
    done = [p.name for p in cache.entries()]
    info["cached models"] = f"{len(done)} in {cache_dir()}" + (f": {', '.join(done)}" if done else "")
    return info


LANDING = "notebooks/index.ipynb"


#: JupyterLab settings for an offline room: no news and no "Would you like to get notified about official Jupyter
#: news?" pop-up (the announcements plugin asks while ``fetchNews`` is "none", its default, whatever
#: ``--LabApp.news_url`` says), no update check.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def lab_settings_dir(where) -> Path:
    """A JupyterLab application settings folder under ``where`` whose ``overrides.json`` holds
    :data:`LAB_OVERRIDES` on top of the installed application's own overrides (written each start: generated)."""
    import json

    from jupyterlab.commands import get_app_dir

    folder = Path(where) / "lab-settings"
    folder.mkdir(parents=True, exist_ok=True)
    merged = {}
    installed = Path(get_app_dir()) / "settings" / "overrides.json"
    if installed.is_file():
        try:
            merged = json.loads(installed.read_text())
        except ValueError:
            merged = {}
    for plugin, values in LAB_OVERRIDES.items():
        merged.setdefault(plugin, {}).update(values)
    (folder / "overrides.json").write_text(json.dumps(merged, indent=2) + "\n")
    return folder


def _lab_settings_args(where) -> list[str]:
    return [
        f"--LabApp.app_settings_dir={lab_settings_dir(where)}",
        # offline rooms: no news feed, no update check (both would call out to the internet)
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]


def _port_free(port: int, ip: str) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind((ip or "0.0.0.0", port))
        except OSError:
            return False
    # a server on 0.0.0.0 or on another address does not stop a bind on loopback: ask it too
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) != 0


def port_to_use(port: int, ip: str = "127.0.0.1", tries: int = 50) -> int:
    """``port`` if nothing listens there, else the next free one (ValueError naming the range if none is)."""
    for p in range(port, port + tries):
        if _port_free(p, ip):
            return p
    raise ValueError(f"ports {port}-{port + tries - 1} on {ip} are all in use: stop a server, or pass --port")


def lab_command(port: int = 8888, ip: str = "127.0.0.1", token: str | None = None, root=ROOT) -> list[str]:
    """The command that starts JupyterLab on the course: the whole checkout is reachable (notebooks/,
    solutions/, README, the report), and it opens on the landing notebook, :data:`LANDING`.

    It listens on ``ip`` (loopback unless you say otherwise: ``0.0.0.0`` serves a room from this machine) and
    needs ``token`` to be opened (a new random one when None). ``root`` is the folder it serves (the checkout).
    No browser is started.
    """
    import secrets

    token = token or secrets.token_urlsafe(24)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        f"--ip={ip}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.default_url=/lab/tree/{LANDING}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
        *_lab_settings_args(Path(root) / "build"),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container or a root shell: JupyterLab needs consent
        cmd.append("--allow-root")
    return cmd


def kernel_check() -> str:
    """One line: does the ``python3`` kernel JupyterLab will start run this Python, with this mlcourse?"""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        return f"kernel: no python3 kernel found ({exc}); run `make setup`"
    exe = spec.argv[0]
    same = exe in ("python", "python3", "{python}") or Path(exe).resolve() == Path(sys.executable).resolve()
    if same:
        return f"kernel: python3 runs {sys.executable}, the course's environment (mlcourse from {ROOT})"
    return (
        f"kernel: WARNING python3 runs {exe}, not this environment ({sys.executable}); run "
        f"`{sys.executable} -m ipykernel install --user --name python3` to fix it"
    )


def lab(port: int = 8888, ip: str = "127.0.0.1") -> None:
    """Print how to open the course (once, with its token) and the kernel check, then become JupyterLab."""
    import secrets

    token = secrets.token_urlsafe(24)
    wanted, port = port, port_to_use(port, ip)
    if port != wanted:
        print(f"port {wanted} is in use (another JupyterLab, or `make lab` already running?): using {port} instead; "
              f"to use that server instead, open the link it printed.")
    host = _public_host(ip)
    print(kernel_check())
    if ip not in ("127.0.0.1", "localhost"):
        print(
            f"WARNING: serving on {ip}: anyone on this network who has the link below can run code here. "
            "Share it only with the room."
        )
    print("\n  Open the course:  " + f"http://{host}:{port}/lab/tree/{LANDING}?token={token}\n", flush=True)
    os.execv(sys.executable, lab_command(port, ip, token) + ["--ServerApp.log_level=WARN"])


#: What each learner gets, copied into their own home on their first start (never over their files).
ROOM_COPY = ("notebooks", "solutions", "README.md", "INSTRUCTOR.md", "reference")


def _copy_course(home: Path, root: Path = ROOT) -> None:
    import shutil

    home.mkdir(parents=True, exist_ok=True)
    for name in ROOM_COPY:
        src, dst = Path(root) / name, home / name
        if not src.exists() or dst.exists():  # a learner's own copy is theirs: kept as it is
            continue
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)


def configure_room(c, settings: dict) -> None:
    """Fill a JupyterHub config ``c`` for a workshop room (called by the ``jupyterhub_config.py`` that
    :func:`room_command` writes): shared-password accounts (DummyAuthenticator), one local process and one home
    per learner (SimpleLocalProcessSpawner: ``<room>/learners/<name>``, with their own copy of the course and
    their own ``MLCOURSE_WORK_DIR``), the instructor's prepared cache shared read-only (``MLCOURSE_CACHE_SHARED``:
    loaded from, never written; what a learner trains beyond it goes into their own ``MLCOURSE_CACHE_DIR``)."""
    room_dir = Path(settings["room_dir"])
    learners = room_dir / "learners"
    c.JupyterHub.ip = settings["ip"]
    c.JupyterHub.port = settings["port"]
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings["hub_port"]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
    c.ConfigurableHTTPProxy.should_start = True
    c.JupyterHub.db_url = f"sqlite:///{room_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(room_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(room_dir / "jupyterhub.pid")
    c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
    c.DummyAuthenticator.password = settings["password"]
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = {settings.get("admin", "instructor")}
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    c.SimpleLocalProcessSpawner.home_dir_template = str(learners / "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    c.Spawner.default_url = f"/lab/tree/{LANDING}"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    args = _lab_settings_args(room_dir)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    c.Spawner.args = args
    env = {"PYTHONPATH": child_env()["PYTHONPATH"], "MLCOURSE_CACHE_SHARED": settings["cache_dir"],
           "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": os.environ.get("PATH", "")}
    size = settings.get("size") or "lesson"
    env["MLCOURSE_SIZE"] = size
    c.Spawner.environment = env

    def pre_spawn(spawner):  # the learner's own copy of the course and own work folder, seeded with the prepared one
        home = learners / spawner.user.name
        _copy_course(home, Path(settings["root"]))
        if settings.get("work_dir"):
            seed_work_dir(Path(settings["work_dir"]) / size, home / "runs" / size)
        spawner.environment = {**spawner.environment, "MLCOURSE_WORK_DIR": str(home / "runs"),
                               "MLCOURSE_CACHE_DIR": str(home / "runs" / "cache")}

    c.Spawner.pre_spawn_hook = pre_spawn
    if settings.get("api_token"):  # an admin token, for scripts and tests (never printed)
        c.JupyterHub.services = [{"name": "mlcourse-admin", "api_token": settings["api_token"]}]
        c.JupyterHub.load_roles = [{"name": "mlcourse-admin",
                                    "scopes": ["admin:users", "admin:servers", "access:servers"],
                                    "services": ["mlcourse-admin"]}]


def _proxy_missing() -> str | None:
    import importlib.util
    import shutil

    if importlib.util.find_spec("jupyterhub") is None:
        return "jupyterhub is not installed: run `make setup` (it installs requirements.lock)"
    if shutil.which("configurable-http-proxy") is None:
        return ("JupyterHub's proxy, configurable-http-proxy, is not on PATH: run `make setup`, or "
                "`npm install -g configurable-http-proxy` (needs node and npm)")
    return None


def room_command(room_dir, port: int = 8000, ip: str = "127.0.0.1", password: str | None = None,
                 api_token: str | None = None, size: str = "lesson", root=ROOT,
                 prepared_work=None) -> tuple[list[str], dict]:
    """The command (and settings) that start JupyterHub for a room in ``room_dir``: it writes
    ``room_dir/jupyterhub_config.py``, which calls :func:`configure_room`. Returns ``(cmd, settings)``.

    ``size`` is what the learners run (``MLCOURSE_SIZE`` in their servers); ``prepared_work`` the instructor's work
    root (default: this account's, where ``make workshop`` ran the searches) seeded into each learner's."""
    import json
    import secrets

    room_dir = Path(room_dir).resolve()
    room_dir.mkdir(parents=True, exist_ok=True)
    settings = {"room_dir": str(room_dir), "ip": ip, "port": port, "hub_port": free_port(),
                "proxy_api_port": free_port(), "password": password or secrets.token_urlsafe(6),
                "cache_dir": str(cache_dir().resolve()), "api_token": api_token, "size": course_settings.size(size),
                "work_dir": str(Path(prepared_work or work_dir(size).parent).resolve()),
                "root": str(Path(root).resolve())}
    config = room_dir / "jupyterhub_config.py"
    config.write_text(
        "# Written by `python -m mlcourse.workshop room` at each start: edit mlcourse/workshop.py instead.\n"
        f"import json\nimport sys\n\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from mlcourse.workshop import configure_room  # noqa: E402\n\n"
        f"configure_room(c, json.loads({json.dumps(settings)!r}))  # noqa: F821\n"
    )
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(config), "--no-ssl"]
    return cmd, settings


def room(port: int = 8000, ip: str = "127.0.0.1", room_dir=None, password: str | None = None) -> None:
    """Print how learners join (the address, the shared password), warn about the network, become JupyterHub."""
    missing = _proxy_missing()
    if missing:
        raise SystemExit(f"mlcourse workshop room: {missing}")
    wanted, port = port, port_to_use(port, ip)
    if port != wanted:
        print(f"port {wanted} is in use: using {port} instead.")
    room_dir = Path(room_dir or ROOT / "build" / "room")
    cmd, settings = room_command(room_dir, port, ip, password)
    host = _public_host(ip)
    print(kernel_check())
    if ip not in ("127.0.0.1", "localhost"):
        print(f"WARNING: serving on {ip} over plain HTTP: anyone on this network who has the password can sign in "
              "and run code on this machine as this user. Use it on the room's own network only.")
    print(f"cache shared with every learner: {settings['cache_dir']} (prepare it first: make workshop)")
    print(f"each learner's copy of the course and work folder: {room_dir / 'learners'}/<name>/")
    print(f"\n  Open the room:  http://{host}:{port}/   any user name, password: {settings['password']}\n",
          flush=True)
    os.execv(sys.executable, cmd)


def _public_host(ip: str) -> str:
    """The address to print in the link for a server listening on ``ip`` (this machine's LAN address for 0.0.0.0)."""
    if ip in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    return ip if ip not in ("0.0.0.0", "") else _lan_address()


def _lan_address() -> str:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return s.getsockname()[0]
    except OSError:
        return "THIS-MACHINE"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mlcourse.workshop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="check the data, pre-train and cache the slow models")
    pr.add_argument("--size", choices=course_settings.SIZES, default="lesson",
                    help="the size the room's learners will run (default: lesson; smoke: a dry run in a minute)")
    sub.add_parser("check", help="versions, data, cache")
    lb = sub.add_parser("lab", help="start JupyterLab on the course")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--ip", default="127.0.0.1", help="address to listen on (0.0.0.0: serve a room; default: loopback)")
    rm = sub.add_parser("room", help="start JupyterHub: one account, one copy of the course per learner")
    rm.add_argument("--port", type=int, default=8000)
    rm.add_argument("--ip", default="127.0.0.1", help="address to listen on (0.0.0.0: the room's network)")
    rm.add_argument("--dir", default=None, help="the room's folder (default: build/room)")
    rm.add_argument("--password", default=None, help="the shared password (default: a new random one, printed)")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        for what, s in prepare(args.size).items():
            print(f"  {what}: {s} s")
    elif args.cmd == "check":
        for k, v in check().items():
            print(f"{k:>32}: {v}")
    elif args.cmd == "room":
        room(args.port, args.ip, args.dir, args.password)
    else:
        lab(args.port, args.ip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
