"""Workshop kit: get a room ready ahead of time, offline, so that nobody waits during the session.

    python -m mlcourse.workshop prepare           # check the data, pre-train and cache the slow models
    python -m mlcourse.workshop prepare --smoke   # the same at smoke-mode sizes (a minute; for a dry run)
    python -m mlcourse.workshop check             # what this machine has: versions, data, cached models
    python -m mlcourse.workshop lab               # JupyterLab on the course, opens on the landing notebook
    python -m mlcourse.workshop lab --ip 0.0.0.0 --port 8888   # serve a classroom from this machine

Notebooks train their slow models through :func:`mlcourse.cache.cached_model`; ``prepare`` runs the same
recipes at the notebooks' default parameters, so that in the session every one of them loads in a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from mlcourse.cache import cache_dir
from mlcourse.runtime import ROOT

__all__ = ["prepare", "check", "lab_command", "lab", "kernel_check", "RECIPES", "LANDING"]


# --- the recipes of the notebooks' slow models, at their default parameters (keep in step with them) ---
def _fashion():
    import warnings

    from mlcourse import data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data.load_fashion_mnist()


#: The notebooks whose slow models a room gets ahead of time, and the week module whose ``warm_cache(ds, smoke)``
#: trains them at that notebook's default sizes (the module's own table, which the notebook reads too).
RECIPES = {
    "04_compression baseline": "compression",
    "06_distillation_ensembles teachers": "distillation",
    "07_deployment model": "serving",
    "08_runtimes models": "runtimes",
}


def prepare(smoke: bool = False) -> dict:
    """Check the data and train + cache every slow model at the notebooks' default sizes; returns timings."""
    from tqdm.auto import tqdm

    from mlcourse.runtime import quiet_tensorflow

    quiet_tensorflow()
    ds = _fashion()
    if not ds.is_full:
        print(
            f"WARNING: only the embedded subset was found ({len(ds.x_train)} training images). Install the "
            "real Fashion-MNIST first (sudo apt-get install dataset-fashion-mnist, or see the README)."
        )
    print(f"data: {ds}")
    seconds = {}
    for what, fn in tqdm(RECIPES.items(), desc="room models"):
        t0 = time.perf_counter()
        importlib.import_module(f"mlcourse.{fn}").warm_cache(ds, smoke)
        seconds[what] = round(time.perf_counter() - t0, 1)
    print(f"cache: {cache_dir()}")
    return seconds


def check() -> dict:
    """What the room has: Python and library versions, CPU and GPU, where the data comes from (the report's
    environment block, :func:`mlcourse.report.environment`), and the complete cached models."""
    from mlcourse import cache, report

    info = report.environment()
    done = [p.name for p in cache.entries()]
    info["cached models"] = f"{len(done)} in {cache_dir()}" + (f": {', '.join(done)}" if done else "")
    return info


LANDING = "notebooks/index.ipynb"


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
        # offline rooms: no news feed, no update check (both would call out to the internet)
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
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
    host = "127.0.0.1" if ip in ("127.0.0.1", "localhost") else (ip if ip not in ("0.0.0.0", "") else _lan_address())
    print(kernel_check())
    if ip not in ("127.0.0.1", "localhost"):
        print(
            f"WARNING: serving on {ip}: anyone on this network who has the link below can run code here. "
            "Share it only with the room."
        )
    print("\n  Open the course:  " + f"http://{host}:{port}/lab/tree/{LANDING}?token={token}\n", flush=True)
    os.execv(sys.executable, lab_command(port, ip, token) + ["--ServerApp.log_level=WARN"])


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
    pr.add_argument("--smoke", action="store_true", help="smoke-mode sizes (a dry run in a minute)")
    sub.add_parser("check", help="versions, data, cache")
    lb = sub.add_parser("lab", help="start JupyterLab on the course")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--ip", default="127.0.0.1", help="address to listen on (0.0.0.0: serve a room; default: loopback)")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        for what, s in prepare(args.smoke).items():
            print(f"  {what}: {s} s")
    elif args.cmd == "check":
        for k, v in check().items():
            print(f"{k:>32}: {v}")
    else:
        lab(args.port, args.ip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
