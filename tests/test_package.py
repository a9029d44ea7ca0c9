"""The package imports lazily and every module has a docstring a learner can read with `?`."""
import importlib
import subprocess
import sys

import mlcourse


def test_every_module_is_documented():
    for name in mlcourse._MODULES:
        mod = importlib.import_module(f"mlcourse.{name}")
        assert mod.__doc__ and len(mod.__doc__) > 80, f"mlcourse.{name} needs a docstring"
        for fn in getattr(mod, "__all__", []):
            obj = getattr(mod, fn)
            if callable(obj) and not isinstance(obj, type(None)):
                assert obj.__doc__, f"mlcourse.{name}.{fn} needs a docstring"


def test_import_is_light():
    code = "import sys, mlcourse; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "import mlcourse must not load TensorFlow"
