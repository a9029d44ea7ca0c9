"""Test set-up: smoke mode, no downloads, quiet TensorFlow, for every test and every notebook kernel
(kernels inherit this process's environment)."""
import os

os.environ["MLCOURSE_SMOKE"] = "1"
os.environ["MLCOURSE_ALLOW_DOWNLOAD"] = "0"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import tempfile

# Tuning/NAS notebooks keep results in MLCOURSE_WORK_DIR (and resume from it): tests start from an empty one.
os.environ["MLCOURSE_WORK_DIR"] = tempfile.mkdtemp(prefix="mlcourse-runs-")

# Kernels (nbval, papermill) import this checkout's mlcourse, whatever an editable install points at.
from mlcourse.notebooks import use_this_checkout  # noqa: E402

use_this_checkout()
