"""Workshop kit: get a room ready ahead of time, offline, so that nobody waits during the session.

    python -m mlcourse.workshop prepare           # check the data, pre-train and cache the slow models
    python -m mlcourse.workshop prepare --smoke   # the same at smoke-mode sizes (a minute; for a dry run)
    python -m mlcourse.workshop check             # what this machine has: versions, data, cached models
    python -m mlcourse.workshop lab               # start JupyterLab on the course (no browser needed)

Notebooks train their slow models through :func:`mlcourse.cache.cached_model`; ``prepare`` runs the same
recipes at the notebooks' default parameters, so that in the session every one of them loads in a second.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from mlcourse.cache import cache_dir
from mlcourse.runtime import ROOT

__all__ = ["prepare", "check", "lab_command", "RECIPES"]


# --- the recipes of the notebooks' slow models, at their default parameters (keep in step with them) ---
def _fashion():
    import warnings

    from mlcourse import data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data.load_fashion_mnist()


def _prepare_04(ds, smoke: bool, seed: int = 0):
    from mlcourse import compression, data

    x, y = data.stratified_subset(ds.x_train, ds.y_train, 2_000 if smoke else 60_000, seed=seed)
    compression.baseline_model(x, y, epochs=1 if smoke else 4, seed=seed)


def _prepare_06(ds, smoke: bool, seed: int = 0):
    from mlcourse import distillation

    n = 2_000 if smoke else 10_000
    (x, y), _, _ = distillation.split(ds, n, n // 5, 2_000 if smoke else 30_000, seed=seed)
    for s in (0,) if smoke else (0, 1, 2):
        distillation.cached_teacher(x, y, epochs=1 if smoke else 8, seed=s)


def _prepare_07(ds, smoke: bool, seed: int = 0):
    from mlcourse import data, serving

    x, y = data.stratified_subset(ds.x_train, ds.y_train, 2_000 if smoke else 60_000, seed=seed)
    from mlcourse.runtime import work_dir

    hp, _ = serving.deployment_hp(work_dir(smoke))
    serving.deployment_model(x, y, hp, epochs=1 if smoke else 6, seed=seed)


RECIPES = {"04_compression baseline": _prepare_04, "06_distillation_ensembles teachers": _prepare_06,
           "07_deployment model": _prepare_07}


def prepare(smoke: bool = False) -> dict:
    """Check the data and train + cache every slow model at the notebooks' default sizes; returns timings."""
    from tqdm.auto import tqdm

    from mlcourse.runtime import quiet_tensorflow

    quiet_tensorflow()
    ds = _fashion()
    if not ds.is_full:
        print(f"WARNING: only the embedded subset was found ({len(ds.x_train)} training images). Install the "
              "real Fashion-MNIST first (sudo apt-get install dataset-fashion-mnist, or see the README).")
    print(f"data: {ds}")
    seconds = {}
    for what, fn in tqdm(RECIPES.items(), desc="room models"):
        t0 = time.perf_counter()
        fn(ds, smoke)
        seconds[what] = round(time.perf_counter() - t0, 1)
    print(f"cache: {cache_dir()}")
    return seconds


def check() -> dict:
    """What the room has: Python and library versions, where the data comes from, cached models."""
    from importlib.metadata import version

    info = {"python": sys.version.split()[0]}
    for pkg in ("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "keras-tuner",
                "scikit-learn", "jupyterlab"):
        try:
            info[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - report, do not fail
            info[pkg] = "MISSING: run `make setup`"
    from mlcourse import data

    found = data.find_fashion_mnist()
    info["fashion-mnist"] = str(found) if found else "only the embedded subset: sudo apt-get install dataset-fashion-mnist"
    entries = sorted(p.parent.name for p in cache_dir().glob("*/spec.json"))
    info["cached models"] = f"{len(entries)} in {cache_dir()}" + (f": {', '.join(entries)}" if entries else "")
    return info


def lab_command(port: int = 8888) -> list[str]:
    """The command that starts JupyterLab on the course's notebooks (no browser is opened: open the URL with
    the token that it prints, from this machine or, with ``--ip``, from the room's network)."""
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.root_dir={ROOT / 'notebooks'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container or a root shell: JupyterLab needs consent
        cmd.append("--allow-root")
    return cmd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlcourse.workshop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="check the data, pre-train and cache the slow models")
    pr.add_argument("--smoke", action="store_true", help="smoke-mode sizes (a dry run in a minute)")
    sub.add_parser("check", help="versions, data, cache")
    lb = sub.add_parser("lab", help="start JupyterLab on the course")
    lb.add_argument("--port", type=int, default=8888)
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        for what, s in prepare(args.smoke).items():
            print(f"  {what}: {s} s")
    elif args.cmd == "check":
        for k, v in check().items():
            print(f"{k:>32}: {v}")
    else:
        os.execv(sys.executable, lab_command(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
