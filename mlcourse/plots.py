"""Plots the course shows; every one has a title and labelled axes, and returns its matplotlib Axes."""
from __future__ import annotations

import numpy as np

__all__ = ["use_course_style", "plot_images", "plot_pr_roc", "plot_complexity_curve", "plot_drift"]


def use_course_style() -> None:
    """Readable defaults for notebooks (size, grid, no top/right spines)."""
    import matplotlib as mpl

    mpl.rcParams.update({"figure.figsize": (7, 4), "figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False})


def _axes(ax, **kw):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(**kw)[1]


def plot_images(x, y=None, class_names=None, n: int = 10, title: str = "Examples"):
    """A row of images with their labels.

    Lesson: 00_workflow § 1 · Use case and model interface.
    """
    import matplotlib.pyplot as plt

    n = min(n, len(x))
    fig, axes = plt.subplots(1, n, figsize=(1.3 * n, 1.8))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(x[i], cmap="gray_r")
        ax.set_axis_off()
        if y is not None:
            ax.set_title(class_names[y[i]] if class_names else str(y[i]), fontsize=8)
    fig.suptitle(title)
    return axes


def plot_pr_roc(y_true, scores: dict, title: str = ""):
    """ROC and precision-recall curves side by side, for ``{name: scores}``; prevalence drawn as a line.

    Lesson: 00_workflow § 2 · The one metric.
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y_true, s)
        a1.plot(fpr, tpr, label=f"{name} (ROC-AUC {roc_auc_score(y_true, s):.3f})")
        p, r, _ = precision_recall_curve(y_true, s)
        a2.plot(r, p, label=f"{name} (PR-AUC {average_precision_score(y_true, s):.3f})")
    a1.plot([0, 1], [0, 1], "k:", label="random")
    a2.axhline(np.mean(y_true), color="k", ls=":", label=f"random (prevalence {np.mean(y_true):.3f})")
    a1.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=f"ROC {title}")
    a2.set(xlabel="recall", ylabel="precision", title=f"Precision-recall {title}")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    return a1, a2


def plot_complexity_curve(df, param: str, ylabel: str = "accuracy", ax=None, logx: bool = False):
    """Train and validation score against model complexity (from :func:`evaluation.complexity_curve`).

    Lesson: 00_workflow § 5 · Under- vs over-fitting.
    """
    ax = _axes(ax)
    ax.plot(df[param], df["train"], "o-", label="train")
    ax.plot(df[param], df["validation"], "s-", label="validation")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=param, ylabel=ylabel, title=f"Under- vs over-fitting as {param} grows")
    ax.legend()
    return ax


def plot_drift(reference: dict, current: dict, title: str = "Reference vs shifted data"):
    """Histograms of each monitored quantity, reference against current: ``{name: values}`` dicts.

    Lesson: 00_workflow § 6 · Monitoring, rehearsed before deployment; also used in 08_deployment.
    """
    import matplotlib.pyplot as plt

    names = list(reference)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3))
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.hist(reference[name], bins=30, alpha=0.6, density=True, label="reference")
        ax.hist(current[name], bins=30, alpha=0.6, density=True, label="current")
        ax.set(xlabel=name, ylabel="density")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return axes
