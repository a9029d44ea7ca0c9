"""The session of a notebook: the run's size, seeds, quiet TensorFlow, where the checkout and the learner's work
live, and keeping a learner's results aside instead of overwriting them.

Every notebook starts with::

    import mlcourse
    cfg = mlcourse.setup(seed=SEED)

The size of a run (``smoke``, ``lesson`` or ``full``: :mod:`mlcourse.settings`) comes from the notebook's
``SIZE`` parameter, else ``MLCOURSE_SIZE``, else ``lesson``. ``setup`` reports it; papermill can override the
parameters cell.

TensorFlow, Keras 3 and tf_keras are imported one way in the package: :func:`quiet_import` (lazily, inside the
function that needs them, so ``import mlcourse`` stays fast and TensorFlow's start-up chatter stays hidden).
Child processes, ports and the course's one launcher live in :mod:`mlcourse.processes`.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlcourse import settings

__all__ = ["ROOT", "device", "set_seed", "quiet_tensorflow", "quiet_import", "silenced", "setup", "RunInfo",
           "work_dir", "keep_aside"]

#: The course checkout (the folder that holds ``mlcourse/``, ``notebooks/`` and ``solutions/``).
ROOT = Path(__file__).resolve().parent.parent


class silenced:
    """Context manager that hides everything written to stdout/stderr, by Python *and* by native code.

    TensorFlow's C++ start-up lines and the TFLite converter's chatter bypass Python's ``sys.stdout``
    (and some ignore ``TF_CPP_MIN_LOG_LEVEL``), so both the file descriptors and the Python streams are
    redirected. Errors still propagate as exceptions.

    Lesson: 03_nas § 2.3 Bayesian optimisation with keras-tuner's oracle; also used in 05_compression,
    08_deployment, 10_capstone.
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


def quiet_import(name: str):
    """``import name`` (``"tensorflow"``, ``"keras"``, ``"keras_tuner"``, ...) after :func:`quiet_tensorflow`: the one
    way the course's modules import a TensorFlow library lazily, so that importing ``mlcourse`` stays fast."""
    quiet_tensorflow()
    return importlib.import_module(name)


def set_seed(seed: int = 0, tensorflow: bool = True) -> None:
    """Seed Python, NumPy and (if it is importable and ``tensorflow=True``) TensorFlow and both Kerases.

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in
    07_distillation_ensembles, 08_deployment.
    """
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if tensorflow:
        quiet_import("tensorflow").random.set_seed(seed)
        quiet_import("keras").utils.set_random_seed(seed)
        quiet_import("tf_keras").utils.set_random_seed(seed)


_SIZE_WORDS = {
    "smoke": "SMOKE size (tiny data: checks the code runs; its numbers are not the course's results)",
    "lesson": "lesson size (minutes on a laptop; SIZE=\"full\" gives the reference run's numbers)",
    "full": "full size (the reference run)",
}


@dataclass
class RunInfo:
    """What :func:`setup` did: the seed, the run's size (``smoke`` / ``lesson`` / ``full``) and the device."""

    seed: int
    size: str
    device: str = "not checked (TensorFlow not loaded)"

    @property
    def smoke(self) -> bool:
        """True for a smoke-size run, whose numbers are not judged."""
        return self.size == "smoke"

    def __str__(self) -> str:
        return f"mlcourse: seed {self.seed}, {_SIZE_WORDS[self.size]}; device: {self.device}"


def device() -> str:
    """The device TensorFlow will train on: its GPUs by name, else "CPU only (N cores)"."""
    tf = quiet_import("tensorflow")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU " + ", ".join(g.name.split(":", 1)[-1] for g in gpus)
    return f"CPU only ({os.cpu_count()} cores)"


def setup(seed: int = 0, size: str | None = None, tensorflow: bool = True) -> RunInfo:
    """Prepare a notebook: quiet TensorFlow, seed everything, apply matplotlib defaults; prints a status line.

    ``size`` is the notebook's ``SIZE`` parameter (None: ``MLCOURSE_SIZE``, else ``lesson``; see
    :func:`mlcourse.settings.size`). ``tensorflow=False`` leaves TensorFlow unimported (a notebook that needs
    only scikit-learn starts faster).
    """
    size = settings.size(size)
    if tensorflow:
        quiet_tensorflow()
    set_seed(seed, tensorflow=tensorflow)
    from mlcourse import plots

    plots.use_course_style()
    info = RunInfo(seed=seed, size=size)
    if tensorflow:
        info.device = device()
    print(info)
    return info


def work_dir(size: str | None = None, base=None) -> Path:
    """Where a learner's own results live (tuning trials, NAS choices, run folders), one tree per size.

    ``base``, else ``MLCOURSE_WORK_DIR``, else ``runs/`` in the checkout; then ``smoke/``, ``lesson/`` or
    ``full/`` (``size``: None follows :func:`mlcourse.settings.size`). The same folder whichever directory a
    notebook runs in, so 05, 07 and 08 find what 02 and 03 left there.

    Lesson: 02_tuning § 02 · Hyperparameter tuning with keras-tuner, and AutoML; also used in 03_nas,
    05_compression, 06_distributed_training, 07_distillation_ensembles, 08_deployment, 10_capstone.
    """
    if isinstance(size, bool):
        raise TypeError("work_dir takes a size ('smoke', 'lesson' or 'full'), not True/False.")
    size = settings.size(size)
    root = Path(base).expanduser() if base else settings.get("work_dir")
    return root / size


def keep_aside(path) -> Path:
    """Rename ``path`` to ``<name>-previous-<time>`` (so a fresh start loses nothing); returns the new path.

    The name carries microseconds and, should two calls still collide, a counter: nothing is overwritten.

    Lesson: 02_tuning § 5 · Three tuners, one space, one epoch budget; also used in 03_nas.
    """
    path = Path(path)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    kept, n = path.with_name(f"{path.name}-previous-{stamp}"), 1
    while kept.exists():
        kept, n = path.with_name(f"{path.name}-previous-{stamp}-{n}"), n + 1
    shutil.move(str(path), str(kept))
    return kept
