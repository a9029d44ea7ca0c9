"""Write requirements.lock: every package the course installs, at the exact version it was measured on.

    python tools/lock.py            # after `make setup` with a changed pyproject.toml: rewrite the lock
    python tools/lock.py --check    # exit 1 if the lock is not the closure of pyproject.toml's pins

The lock is the dependency closure of ``pyproject.toml``'s pinned dependencies, read from the metadata of the
distributions installed in this environment (Python 3.11, Linux x86-64), with environment markers evaluated
here. Install it with ``pip install -r requirements.lock`` and then ``pip install --no-deps -e .``; that is
what ``tools/setup.sh`` does. It resolves through pip's own configuration (index, constraints), because the
versions are the ones pip chose when it installed the pins.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
HEADER = ("# The whole stack the course is measured on: the closure of pyproject.toml's pins, one exact version\n"
          "# per package, for Python 3.11 on Linux x86-64. Written by `python tools/lock.py`; do not edit by hand.\n"
          "# Set-up installs it (`pip install -r requirements.lock`, then `pip install --no-deps -e .`).\n")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str]) -> dict[str, str]:
    """``{name: version}`` of every distribution the requirements pull in, as installed here."""
    env = default_environment()
    todo = [(Requirement(r), frozenset()) for r in requirements]
    seen: dict[str, str] = {}
    done: set[tuple[str, frozenset]] = set()
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})):
            continue
        name = _norm(req.name)
        key = (name, frozenset(req.extras))
        if key in done:
            continue
        done.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise SystemExit(f"{req.name} is required but not installed: run `make setup` first.") from None
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            raise SystemExit(f"{req.name} {dist.version} is installed, but {req} is required: run `make setup`.")
        seen[name] = dist.version
        for sub in dist.requires or []:
            todo.append((Requirement(sub), frozenset(req.extras)))
    return seen


def pinned() -> list[str]:
    """pyproject.toml's dependencies."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def render(versions: dict[str, str]) -> str:
    return HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(versions.items()) if n != "mlcourse")


def read(path: Path = LOCK) -> dict[str, str]:
    """The lock as ``{name: version}``."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[_norm(name)] = version
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if the lock is stale")
    args = p.parse_args(argv)
    text = render(closure(pinned()))
    if args.check:
        if not LOCK.is_file() or LOCK.read_text() != text:
            print("requirements.lock is not the closure of pyproject.toml's pins here: run `python tools/lock.py`.")
            return 1
        print("requirements.lock is up to date")
        return 0
    LOCK.write_text(text)
    print(f"wrote {LOCK.name}: {text.count(chr(10)) - HEADER.count(chr(10))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
