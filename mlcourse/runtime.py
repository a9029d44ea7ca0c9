"""Run-time set-up for a notebook: smoke mode, seeds, quiet TensorFlow, and the ground-floor services every
week shares: where the checkout and the learner's work live, child processes, free ports, keep-aside.

Every notebook starts with::

    import mlcourse
    cfg = mlcourse.setup(seed=SEED)

Smoke mode (``MLCOURSE_SMOKE=1``, set by the tests and CI) shrinks data and epochs so that a notebook runs
in seconds; the numbers it prints then are not the course's results. ``setup`` does not change smoke mode,
it reports it: the notebook's ``parameters`` cell decides, and papermill can override that cell.
"""
from __future__ import annotations

import datetime as _dt
import os
import random
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "is_smoke", "set_seed", "quiet_tensorflow", "silenced", "setup", "RunInfo", "work_dir",
           "keep_aside", "free_port", "child_env"]

#: The course checkout (the folder that holds ``mlcourse/``, ``notebooks/`` and ``solutions/``).
ROOT = Path(__file__).resolve().parent.parent


def is_smoke() -> bool:
    """True when ``MLCOURSE_SMOKE=1``: run on tiny data, for tests and CI."""
    return os.environ.get("MLCOURSE_SMOKE", "0") == "1"


class silenced:
    """Context manager that hides everything written to stdout/stderr, by Python *and* by native code.

    TensorFlow's C++ start-up lines and the TFLite converter's chatter bypass Python's ``sys.stdout``
    (and some ignore ``TF_CPP_MIN_LOG_LEVEL``), so both the file descriptors and the Python streams are
    redirected. Errors still propagate as exceptions.
    """

    def __enter__(self):
        import contextlib
        import io
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = [os.dup(1), os.dup(2)]
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 1)
        os.dup2(self._null, 2)
        self._py = contextlib.ExitStack()
        self._py.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._py.enter_context(contextlib.redirect_stderr(io.StringIO()))
        return self

    def __exit__(self, *exc):
        self._py.close()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved + [self._null]:
            os.close(fd)
        return False


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter (C++ info logs, absl warnings) so notebook output stays readable."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    import sys

    if "tensorflow" not in sys.modules:
        with silenced():  # the native start-up lines are printed before logging can be configured
            import tensorflow
            import tf_keras  # noqa: F401

            tensorflow.config.list_physical_devices()  # probes CUDA now, quietly, not in a later cell


def set_seed(seed: int = 0, tensorflow: bool = True) -> None:
    """Seed Python, NumPy and (if it is importable and ``tensorflow=True``) TensorFlow and both Kerases."""
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if tensorflow:
        quiet_tensorflow()
        import tensorflow as tf

        tf.random.set_seed(seed)
        import keras

        keras.utils.set_random_seed(seed)
        import tf_keras

        tf_keras.utils.set_random_seed(seed)


@dataclass
class RunInfo:
    """What :func:`setup` did: the seed and whether the run is a smoke run."""

    seed: int
    smoke: bool

    def __str__(self) -> str:
        mode = "SMOKE run (tiny data: numbers are not the course's results)" if self.smoke else "full run"
        return f"mlcourse: seed {self.seed}, {mode}"


def setup(seed: int = 0, smoke: bool | None = None, tensorflow: bool = True) -> RunInfo:
    """Prepare a notebook: quiet TensorFlow, seed everything, apply matplotlib defaults; prints a status line.

    ``tensorflow=False`` leaves TensorFlow unimported (a notebook that needs only scikit-learn starts faster).
    """
    if tensorflow:
        quiet_tensorflow()
    set_seed(seed, tensorflow=tensorflow)
    from mlcourse import plots

    plots.use_course_style()
    info = RunInfo(seed=seed, smoke=is_smoke() if smoke is None else bool(smoke))
    print(info)
    return info


def work_dir(smoke: bool | None = None, base=None) -> Path:
    """Where a learner's own results live (tuning trials, NAS choices, run folders), one tree per mode.

    ``base``, else ``MLCOURSE_WORK_DIR``, else ``runs/`` in the checkout; then ``smoke/`` or ``full/``. The same
    folder whichever directory a notebook runs in, so 04, 06 and 07 find what 01 and 02 left there.
    """
    smoke = is_smoke() if smoke is None else bool(smoke)
    root = Path(base or os.environ.get("MLCOURSE_WORK_DIR") or ROOT / "runs").expanduser()
    return root / ("smoke" if smoke else "full")


def keep_aside(path) -> Path:
    """Rename ``path`` to ``<name>-previous-<time>`` (so a fresh start loses nothing); returns the new path.

    The name carries microseconds and, should two calls still collide, a counter: nothing is overwritten.
    """
    path = Path(path)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    kept, n = path.with_name(f"{path.name}-previous-{stamp}"), 1
    while kept.exists():
        kept, n = path.with_name(f"{path.name}-previous-{stamp}-{n}"), n + 1
    shutil.move(str(path), str(kept))
    return kept


def free_port() -> int:
    """A TCP port on localhost that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra) -> dict:
    """The environment for a child process of the course (a tuning worker, a tf.distribute task): this
    process's environment, with this checkout first on ``PYTHONPATH`` (so the child imports *this* mlcourse,
    whatever an editable install points at), quiet TensorFlow, unbuffered output, and ``extra`` on top."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2",
           "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env
