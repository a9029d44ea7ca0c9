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
import importlib
import os
import sys
import time


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


#: The notebooks whose slow models a room gets ahead of time, and the week module whose ``warm_cache(ds, smoke)``
#: trains them at that notebook's default sizes (the module's own table, which the notebook reads too).
RECIPES = {"04_compression baseline": "compression", "06_distillation_ensembles teachers": "distillation",
           "07_deployment model": "serving"}


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
        importlib.import_module(f"mlcourse.{fn}").warm_cache(ds, smoke)
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
