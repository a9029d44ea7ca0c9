"""pyproject.toml and environment.yml pin the same packages; the README's commands are the ones CI runs."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_pyproject_pins_every_dependency_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unpinned = [d for d in deps if "==" not in d]
    assert not unpinned, f"unpinned dependencies in pyproject.toml: {unpinned}"


def test_environment_yml_has_the_same_pins_as_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == _pins(deps), "environment.yml and pyproject.toml disagree"


def test_top_level_layout():
    for name in ("notebooks", "mlcourse", "datasets", "solutions", "tests", "environment.yml", "README.md"):
        assert (ROOT / name).exists(), f"{name} is missing from the top level"


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make course" in readme
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must run the README's test command"


def test_lock_file_holds_every_pin_at_the_same_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    pins = {k.replace(".", "-"): v for k, v in _pins(deps).items()}
    lock = {k.replace(".", "-"): v for k, v in lock.items()}
    wrong = {k: (v, lock.get(k)) for k, v in pins.items() if lock.get(k) != v}
    assert not wrong, f"pyproject.toml pin vs requirements.lock (run `python tools/lock.py`): {wrong}"
    assert len(lock) > len(pins), "the lock must hold the transitive packages too"


def test_set_up_installs_from_the_lock_file():
    setup = (ROOT / "tools" / "setup.sh").read_text()
    assert "-r requirements.lock" in setup and "--no-deps -e ." in setup
