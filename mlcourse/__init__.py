"""mlcourse: the companion package of the *ML modeling in production* notebook course.

One module per concern; each has a docstring (try ``mlcourse.data?`` in JupyterLab):

* :mod:`mlcourse.session`: the run's size, seeds, quiet TensorFlow (call ``mlcourse.setup()`` first), work dirs;
* :mod:`mlcourse.processes`: child processes (the course's one launcher), free ports;
* :mod:`mlcourse.cache`: slow models trained once, loaded in a second afterwards;
* :mod:`mlcourse.data`: Fashion-MNIST (real files or the embedded subset), tabular and synthetic data;
* :mod:`mlcourse.models`: the course's networks from a dict, in either Keras, with portable weights;
* :mod:`mlcourse.evaluation`: metrics under imbalance, splits and leakage, baselines, fitting diagnosis;
* :mod:`mlcourse.drift`: monitoring before deployment (PSI, KS, drift reports);
* :mod:`mlcourse.tuning` and :mod:`mlcourse.nas`: keras-tuner searches, neural architecture search;
* :mod:`mlcourse.reduction`: the curse of dimensionality and dimensionality reduction, measured;
* :mod:`mlcourse.compression`: quantization, pruning, clustering, low rank, compact and binary nets;
* :mod:`mlcourse.distributed` and :mod:`mlcourse.pipelines`: tf.distribute on real processes, tf.data speed;
* :mod:`mlcourse.distillation` and :mod:`mlcourse.ensembles`: teacher/student, bagging/boosting/stacking;
* :mod:`mlcourse.serving`: a model behind a prediction function, benchmarked and monitored;
* :mod:`mlcourse.checks`: the exercise checkers;
* :mod:`mlcourse.results`: headline results that notebooks record for the course report;
* :mod:`mlcourse.notebooks`, :mod:`mlcourse.course`, :mod:`mlcourse.report`, :mod:`mlcourse.workshop`: student
  copies, running the course, the report, getting a room ready.

Modules are imported lazily, so ``import mlcourse`` is instant and does not load TensorFlow.
"""
import importlib
import pkgutil

__version__ = "0.1.0"
#: Every module of the package, found on disk (so a new module is never missing from ``mlcourse.<name>``).
_MODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(f"mlcourse.{name}")
    if name == "setup":
        return importlib.import_module("mlcourse.session").setup
    raise AttributeError(f"module 'mlcourse' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULES) + ["setup"])
