"""Write requirements.lock: every package the course installs, at the exact version it was measured on.

    python tools/lock.py            # after `make setup` with a changed pyproject.toml: rewrite the lock
    python tools/lock.py --check    # exit 1 if the lock is not the closure of pyproject.toml's pins

An optional extra of pyproject (``tvm``, ``micro``) that is installed here gets its own lock,
``requirements-<extra>.lock``: what the extra adds on top of the main lock (``pip install -r requirements.lock -r
requirements-tvm.lock``). An extra that is not installed keeps the lock it has (``--check`` says it skipped it).

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


#: extras too large or too special for every machine (the GPU wheels): never locked here
_UNLOCKED_EXTRAS = ("gpu",)


def extras() -> dict[str, list[str]]:
    """pyproject.toml's optional extras that get a lock of their own."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    return {k: v for k, v in table.items() if k not in _UNLOCKED_EXTRAS}


def _extra_locks(main: dict[str, str]) -> tuple[dict[Path, str], list[str]]:
    """``{lock path: text}`` of the extras installed here, and the extras skipped (not installed)."""
    out, skipped = {}, []
    for name, reqs in extras().items():
        try:
            versions = closure(reqs)
        except SystemExit:
            skipped.append(name)
            continue
        added = {n: v for n, v in versions.items() if main.get(n) != v}
        header = (f"# The optional extra [{name}]: what it adds to requirements.lock, one exact version per package.\n"
                  f"# Written by `python tools/lock.py`; install: pip install -r requirements.lock "
                  f"-r requirements-{name}.lock\n")
        out[ROOT / f"requirements-{name}.lock"] = header + render(added)[len(HEADER):]
    return out, skipped


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
    main_versions = closure(pinned())
    text = render(main_versions)
    locks, skipped = _extra_locks(main_versions)
    if skipped:
        print(f"extras not installed here, their locks left as they are: {', '.join(skipped)}")
    if args.check:
        stale = [p.name for p, t in {LOCK: text, **locks}.items() if not p.is_file() or p.read_text() != t]
        if stale:
            print(f"{', '.join(stale)} not the closure of pyproject.toml's pins here: run `python tools/lock.py`.")
            return 1
        print("requirements.lock is up to date" + (f" (and {', '.join(p.name for p in locks)})" if locks else ""))
        return 0
    for path, body in {LOCK: text, **locks}.items():
        path.write_text(body)
        print(f"wrote {path.name}: {sum(1 for ln in body.splitlines() if ln and not ln.startswith('#'))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
