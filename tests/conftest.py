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
# Slow models are cached between runs (mlcourse.workshop); tests start from an empty cache of their own.
os.environ["MLCOURSE_CACHE_DIR"] = tempfile.mkdtemp(prefix="mlcourse-cache-")

# Kernels (nbval, papermill) import this checkout's mlcourse, whatever an editable install points at.
from mlcourse.notebooks import use_this_checkout  # noqa: E402

use_this_checkout()


