"""The week registry: one record per notebook, the one place a fact about a week is written.

The catalogue (landing notebook, README table), the workshop kit (which slow models a room prepares), the
checkers' index (:mod:`mlcourse.checks`), the test scheduling and the report read these records; adding a week is
one :class:`Week` here plus its notebook (``solutions/<stem>.ipynb``), its module and its checkers. Facts that
are *measured* live where the measurement writes them: the minutes in ``INSTRUCTOR.md``'s timings table
(:mod:`mlcourse.benchmark` writes it), a week's sizes in its module's ``SIZES`` table (the notebook reads it).

This module is on the ground floor: it names the other modules by their names and imports none of them.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Week", "WEEKS", "by_stem", "stems"]


@dataclass(frozen=True)
class Week:
    """One notebook of the course.

    stem     the notebook's file name without ``.ipynb`` (``solutions/<stem>.ipynb``, ``notebooks/<stem>.ipynb``)
    title    its topic, as the landing notebook shows it
    outcome  what a learner can do after it
    module   the week module (``mlcourse.<module>``) that holds the tested version of its code and its ``SIZES``
    checks   its checkers (``mlcourse.checks.<checks>``)
    prepared what ``make workshop`` prepares for it (the module's ``warm_cache(ds, size)``), or None
    """

    stem: str
    title: str
    outcome: str
    module: str
    checks: str
    prepared: str | None = None


WEEKS: tuple[Week, ...] = (
    Week("00_workflow", "The ML workflow: one metric, honest splits, baselines, error analysis, monitoring",
         "choose the one metric for a use case (ROC-AUC or PR-AUC under imbalance), build leak-free "
         "splits and pipelines in scikit-learn, diagnose under- and over-fitting, read a confusion "
         "matrix to decide what to fix next, and rehearse drift monitoring before deployment",
         module="evaluation", checks="evaluation"),
    Week("01_training", "Training a model well: batch norm, optimizers, batch size, remedies, debugging",
         "train a Keras network well and tell why one does not: batch normalisation (and folding it into the "
         "convolution for deployment), SGD, momentum, RMSprop, Adam and Adagrad on one budget, a learning-rate range "
         "test and a schedule, batch size against throughput, under- and over-fitting read from learning curves "
         "with each remedy measured, and the diagnostics that find a planted bug",
         module="training", checks="training"),
    Week("02_tuning", "Hyperparameter tuning and AutoML with keras-tuner",
         "write a hypermodel and run keras-tuner's RandomSearch, Hyperband and BayesianOptimization, "
         "compare grid and random search, read and retrain the winner fairly against a baseline, and "
         "run a small AutoML search over preprocessing and model family",
         module="tuning", checks="tuning", prepared="keras-tuner projects"),
    Week("03_nas", "Neural architecture search",
         "define macro and micro search spaces, write random search, regularized evolution and a "
         "REINFORCE controller, estimate performance cheaply (low fidelity, learning-curve "
         "extrapolation, weight inheritance) and judge each estimate by rank agreement",
         module="nas", checks="nas", prepared="NAS searches"),
    Week("04_dimensionality_reduction", "Dimensionality reduction",
         "measure the curse of dimensionality, and apply PCA, LDA, PLS, truncated "
         "SVD, ICA and NMF inside scikit-learn pipelines, choosing the number of "
         "components by cross-validation",
         module="reduction", checks="reduction"),
    Week("05_compression", "Model compression: quantization, pruning, clustering, low rank, compact and binary nets",
         "convert a Keras model with the TFLite converter (dynamic, float16, int8 with a "
         "representative dataset) and with the LiteRT quantizer, quantize it with Keras 3's model.quantize, run it "
         "in LiteRT, prune (uniformly and per layer from a sensitivity scan), quantization-aware train and cluster "
         "with tfmot (the legacy tf_keras track), and measure size, accuracy and latency side by side",
         module="compression", checks="compression", prepared="baseline"),
    Week("06_distributed_training", "Distributed training and input pipelines",
         "train with MirroredStrategy, MultiWorkerMirroredStrategy and "
         "ParameterServerStrategy on real processes from a TF_CONFIG, survive a worker "
         "failure with BackupAndRestore, split a model across devices, train in mixed "
         "precision, and build a fast tf.data pipeline",
         module="distributed", checks="distributed"),
    Week("07_distillation_ensembles", "Knowledge distillation and ensembles",
         "write a Keras Distiller and use Keras 3's keras.distillation.Distiller, choose temperature and alpha on "
         "validation data, measure soft targets against hard pseudo-labels over seeds, "
         "and compare bagging, boosting (scikit-learn and XGBoost) and stacking",
         module="distillation", checks="distillation", prepared="teachers"),
    Week("08_deployment", "Deployment and monitoring",
         "take the chosen model to an int8 LiteRT file behind a prediction function that rejects "
         "bad input, load only verified and safe artefacts, benchmark it by batch size, monitor inputs and "
         "predictions for drift, and retrain in shadow, promoting only a model that wins",
         module="serving", checks="serving", prepared="model"),
    Week("09_runtimes", "Runtimes that take a model to hardware: LiteRT, ONNX Runtime, OpenVINO, TVM",
         "export one model to several runtimes (Keras 3's model.export and the converters it wraps), quantize it "
         "with each runtime's own tools, fit it to a microcontroller (TFLite Micro), and pick a "
         "runtime for a latency and size budget from measurements on your machine",
         module="runtimes", checks="runtimes", prepared="models"),
    Week("10_capstone", "Capstone: MNIST-1D from raw signals to a monitored, compressed model",
         "take a dataset the course never used (MNIST-1D, generated offline) through the whole course with your own "
         "code: the one metric and baselines against the paper's table, a keras-tuner Conv1D search judged over "
         "seeds, int8 and pruning, distillation into a microcontroller-sized student, and LiteRT serving with input "
         "validation and a drift alarm",
         module="capstone", checks="capstone"),
)


def by_stem(weeks=None) -> dict[str, Week]:
    """``{stem: Week}`` of ``weeks`` (default :data:`WEEKS`)."""
    return {w.stem: w for w in (WEEKS if weeks is None else weeks)}


def stems(weeks=None) -> list[str]:
    """The notebooks' stems in course order."""
    return [w.stem for w in (WEEKS if weeks is None else weeks)]
