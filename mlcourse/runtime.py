"""Run-time set-up for a notebook: smoke mode, seeds, quiet TensorFlow.

Every notebook starts with::

    import mlcourse
    cfg = mlcourse.setup(seed=SEED)

Smoke mode (``MLCOURSE_SMOKE=1``, set by the tests and CI) shrinks data and epochs so that a notebook runs
in seconds; the numbers it prints then are not the course's results. ``setup`` does not change smoke mode,
it reports it: the notebook's ``parameters`` cell decides, and papermill can override that cell.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

__all__ = ["is_smoke", "set_seed", "quiet_tensorflow", "silenced", "setup", "RunInfo"]


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
