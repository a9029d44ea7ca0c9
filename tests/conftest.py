"""Test set-up: smoke size, no downloads, quiet TensorFlow, for every test and every notebook kernel
(kernels inherit this process's environment)."""
import os

os.environ["MLCOURSE_SIZE"] = "smoke"
os.environ["MLCOURSE_ALLOW_DOWNLOAD"] = "0"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import tempfile

# Tuning/NAS notebooks keep results in MLCOURSE_WORK_DIR (and resume from it): tests start from an empty one.
os.environ["MLCOURSE_WORK_DIR"] = tempfile.mkdtemp(prefix="mlcourse-runs-")
# Slow models are cached between runs (mlcourse.workshop); tests start from an empty cache of their own.
os.environ["MLCOURSE_CACHE_DIR"] = tempfile.mkdtemp(prefix="mlcourse-cache-")

# Kernels (nbval, papermill) import this checkout's mlcourse, whatever an editable install points at.
from mlcourse.notebooks import use_this_checkout  # noqa: E402

use_this_checkout()

import fcntl  # noqa: E402
import json  # noqa: E402

import pytest  # noqa: E402

from mlcourse import workshop  # noqa: E402


@pytest.fixture(scope="session")
def prepared_room(tmp_path_factory):
    """A model cache prepared as `make workshop` does (at smoke size), once per test run: under pytest-xdist the
    workers share it (the first prepares it, the others wait). What each recipe took is in ``seconds.json``.
    test_workshop checks the preparation, test_run_all opens every notebook in it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    room = base / "prepared-room"
    with open(base / "prepared-room.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (room / "READY").exists():
            room.mkdir(exist_ok=True)
            with pytest.MonkeyPatch.context() as env:  # restored afterwards, as monkeypatch does in a test
                env.setenv("MLCOURSE_CACHE_DIR", str(room))
                env.setenv("MLCOURSE_WORK_DIR", str(room / "work"))
                seconds = workshop.prepare(size="smoke")  # models into the cache, searches into room/work/smoke
            (room / "seconds.json").write_text(json.dumps(seconds))
            (room / "READY").write_text("prepared\n")
    return room


# ------------------------------------------------------------------------------ scheduling on 2 workers
# `make test` (and `make test-solutions`) run pytest-xdist with `--dist loadfile`: nbval runs a solution notebook's
# cells in one kernel, so a notebook must stay on one worker. Two refinements keep 2 cores busy to the end (CI's
# budget is 20 minutes): each student notebook test is a unit of its own (they share nothing but the prepared room,
# which is shared across workers), and the units start longest first, notebooks before the package tests (which
# fill the tail).
from mlcourse.course import expected_seconds  # noqa: E402

_SMOKE_S = expected_seconds("smoke")  # INSTRUCTOR.md's smoke column (measured by the tests themselves)
LONGEST_FIRST = tuple(f"{stem[:2]}_" for stem in sorted(_SMOKE_S, key=_SMOKE_S.get, reverse=True))
STUDENT_TESTS = "tests/test_run_all.py::"
# queued right after the longest notebook, whose worker prepares the room first (two to three minutes): files
# that need no room, so that the other worker runs them instead of waiting for it (xdist hands each worker one
# unit, then one more to a worker with at most two tests pending: the first worker takes the second of these)
NO_ROOM_FILLERS = ("tests/test_distributed.py", "tests/test_room.py", "tests/test_jupyterlab.py",
                   "tests/test_checks_tuning.py")


def _unit(nodeid: str) -> str:
    return nodeid if nodeid.startswith(STUDENT_TESTS) else nodeid.split("::", 1)[0]


def _rank(nodeid: str) -> tuple:
    for i, prefix in enumerate(LONGEST_FIRST):
        if nodeid.startswith(STUDENT_TESTS) and f"[{prefix}" in nodeid:
            return (0, i, 0)  # each week: the student test, then nbval's (make test-solutions)
        if nodeid.startswith(f"solutions/{prefix}"):
            return (0, i, 1)
    for j, filler in enumerate(NO_ROOM_FILLERS):
        if nodeid.startswith(filler):
            return (0, 0, 2 + j)
    return (1, 0, 0)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: a notebook's cells keep their order


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NotebookScheduling(LoadFileScheduling):
        """loadfile, but one unit per student notebook, queued in collection order (set above)."""

        def _split_scope(self, nodeid):
            return _unit(nodeid)

    config.option.loadscopereorder = False  # xdist would otherwise queue the units with most tests first
    return NotebookScheduling(config, log)
