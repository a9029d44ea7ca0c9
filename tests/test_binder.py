"""Binder (repo2docker) builds the course from binder/: each file checked the way repo2docker reads it
(repo2docker itself needs Docker, which CI does not have)."""
import os
import re
import subprocess

from mlcourse.session import ROOT

BINDER = ROOT / "binder"


def test_runtime_is_the_course_python():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"  # repo2docker's python-X.Y form


def test_apt_txt_installs_the_real_fashion_mnist():
    names = [line.strip() for line in (BINDER / "apt.txt").read_text().splitlines() if line.strip()]
    assert "dataset-fashion-mnist" in names
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.\-]+", n) for n in names), names  # one Debian package a line


def test_requirements_include_the_lock_file_relative_to_binder():
    lines = [line.split("#")[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    includes = [line.split(None, 1)[1] for line in lines if line.startswith("-r ")]
    assert includes == ["../requirements.lock"]  # pip resolves -r relative to the including file
    lock = (BINDER / includes[0]).resolve()
    assert lock == ROOT / "requirements.lock" and lock.is_file()
    pins = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s]+", p) for p in pins)
    assert any(p.startswith("tensorflow==") for p in pins)


def test_post_build_and_start_are_executable_bash_scripts():
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable (repo2docker runs it directly)"
        assert path.read_text().startswith("#!/bin/bash")
        subprocess.run(["bash", "-n", str(path)], check=True)
    assert "pip install --no-cache-dir --no-deps -e ." in (BINDER / "postBuild").read_text()


def test_start_runs_the_server_at_lesson_size():
    env = {k: v for k, v in os.environ.items() if k != "MLCOURSE_SIZE"}
    out = subprocess.run([str(BINDER / "start"), "env"], capture_output=True, text=True, env=env, check=True).stdout
    assert "MLCOURSE_SIZE=lesson" in out.splitlines()


def test_readme_badge_opens_the_landing_notebook():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"\(https://mybinder\.org/v2/[^)]*\)", readme)
    assert m and "urlpath=lab/tree/notebooks/index.ipynb" in m.group(0), "README needs the Binder badge"
    assert (ROOT / "notebooks" / "index.ipynb").is_file()
