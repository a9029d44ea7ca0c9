"""The course report's headlines and figures, drawn from what the notebooks recorded.

:func:`headlines` picks, from every notebook's recorded results (:mod:`mlcourse.results`), the numbers a
reader wants first (ROC-AUC vs PR-AUC, tuned accuracy, NAS, compression ratios, fault tolerance,
pipeline speed-up, distillation gap, ensembles, the deployed model, monitoring) and pairs each with the public
reference figure it should meet, where one exists, with a verdict (meets / misses, and by how much).
:func:`write` turns a course run into ``report.md`` and a self-contained ``report.html``.
:func:`figures` draws the plots the report embeds. A notebook that did not run, or recorded something
else, simply leaves its headline out: the report never invents a number.

    python -m mlcourse.report rewrite build/       # the report again from a build's runs.json and results
    python -m mlcourse.report publish build/       # copy a full run's report into reference/ (to commit)

``reference/`` holds the course's committed reference full run (report, executed notebooks as HTML, the
recorded results), for instructors who cannot run the whole course before a session.
"""

from __future__ import annotations

from pathlib import Path

from mlcourse import data, machine, results
from mlcourse.notebooks import SOLUTIONS, solution_notebooks
from mlcourse.results import json_kind
from mlcourse.runtime import ROOT

__all__ = [
    "REFERENCES",
    "TARGETS",
    "verdict",
    "headlines",
    "figures",
    "environment",
    "write_markdown",
    "write_html",
    "notebook_html",
    "write",
    "load_runs",
    "rewrite",
    "publish",
    "main",
]

#: Public reference figures the course measures itself against (each notebook says where it comes from).
REFERENCES = {
    "Fashion-MNIST small CNN": "0.888 test accuracy (a 2-conv CNN, 3 epochs, on 2 CPU cores)",
    "keras-tuner on Fashion-MNIST": "0.87-0.88 test accuracy "
    "(best-known public keras-tuner lab, Hyperband, 30 trials)",
    "post-training quantization": "84,452 B -> 23,840 B (3.5x), accuracy 0.9624 -> 0.9626 "
    "(TF dynamic-range PTQ tutorial, MNIST)",
    "pruning + quantization": "78,104 B -> 8,268 B gzipped, about 9.5x (public run of the pruning + quantization lab)",
    "depthwise-separable convolutions": "8-9x less computation (MobileNet)",
    "knowledge distillation": "91 % of the gap "
    "(Hinton et al. 2015, MNIST errors: small net 146, distilled 74, teacher 67)",
}


def _biggest_step(pipe: list) -> str:
    """The pipeline step that saved the most epoch time over the row before it, e.g. "+ cache (-0.72 s)"."""
    saved, name = max((a["epoch time (s)"] - b["epoch time (s)"], b["pipeline"]) for a, b in zip(pipe, pipe[1:]))
    return f"{name} (-{saved:.2f} s)"


def _rows(rec, notebook, key):
    v = rec.get(notebook, {}).get(key)
    return v if isinstance(v, list) and v and isinstance(v[0], dict) else None


def _row(rows, **match):
    for r in rows or []:
        if all(str(r.get(k, "")).startswith(v) for k, v in match.items()):
            return r
    return None


def _fmt_rows(rows, fmt, sep="; ") -> str:
    """``fmt(row)`` for each row that has what ``fmt`` reads (a row missing a key is left out, never fatal)."""
    out = []
    for r in rows or []:
        try:
            out.append(fmt(r))
        except (KeyError, TypeError, ValueError):
            continue
    return sep.join(out)


def _newer_headlines(rec: dict) -> list[tuple[str, str, str]]:
    """``(topic, measured, notebook)`` of the results the Keras 3 path, the memory-bound int8 case, adaptive
    sparsity, mixed precision's underflow, the Distillers, shadow retraining and the runtimes' exports and
    microcontroller fit record (each only when its notebook recorded it)."""
    out = []

    def add(topic, notebook, key, fmt, kind="rows"):
        value = rec.get(notebook, {}).get(key)
        text = _fmt_rows(_rows(rec, notebook, key), fmt) if kind == "rows" else (
            _fmt_rows([value], fmt) if isinstance(value, dict) else "")
        if text:
            out.append((topic, text, notebook))

    add("Keras 3 model.quantize('int8'): weights in memory, test accuracy", "05_compression",
        "Keras 3 model.quantize int8", lambda r: f"{r['index']} {r['weights in memory (bytes)']:,.0f} bytes, "
        f"accuracy {r['test accuracy']:.4f}")
    add("int8 paths: the converter's and the LiteRT quantizer's, same model", "05_compression",
        "int8 paths: converter vs LiteRT quantizer",
        lambda r: f"{r['path']} {r['bytes'] / 1e3:,.0f} kB, accuracy {r['accuracy']:.4f}, {r['latency_ms']:.3f} ms")
    add("int8 where it pays: a memory-bound wide MLP at batch 1 (LiteRT)", "05_compression",
        "int8 latency, memory-bound wide MLP", lambda r: f"{r['Dense units']:.0f} units: float32 {r['float32 MB']:.1f} "
        f"MB in {r['float32 ms']:.3f} ms, int8 {r['int8 MB']:.1f} MB in {r['int8 ms']:.3f} ms", kind="dict")
    add("adaptive (per-layer, from a sensitivity scan) vs uniform sparsity, fine-tuned", "05_compression",
        "adaptive vs uniform sparsity", lambda r: f"{r['target (share removed)']:.0%} removed, {r['allocation']}: "
        f"{r['fine-tuned test accuracy (mean over seeds)']:.4f}")
    add("mixed precision: float16 gradients lost to underflow", "06_distributed_training",
        "mixed precision: float16 gradients lost to underflow",
        lambda r: f"{r['variant']}: {r['lost to underflow']:.3%}")
    add("Distillers: same teacher, student, data and steps (test accuracy)", "07_distillation_ensembles",
        "Distillers: same teacher, student, data and steps", lambda r: f"{r['distiller']} {r['test accuracy']:.4f}")
    add("retraining in shadow: the candidate's lead over the serving model, promoted?", "08_deployment",
        "retraining: shadow comparison and promotion", lambda r: f"{r['case']}: {r['lead (points)']:+.2f} points "
        f"[{r['95% interval lo']:+.2f}, {r['95% interval hi']:+.2f}] -> {'promoted' if r['promoted'] else 'kept'}")
    add("Keras 3 model.export vs the converters it wraps: top-1 agreement with Keras", "09_runtimes",
        "runtimes: Keras 3 export vs converters",
        lambda r: f"{r['format']} via {r['route']}: " + (f"{r['agreement']:.1%}" if not r.get("error") else
                                                          f"failed ({r['error'][:60]})"))
    add("TFLite Micro: the int8 model on a microcontroller", "09_runtimes", "runtimes: microcontroller",
        lambda r: f"{r['model bytes']:,} model bytes, arena lower bound {r['arena lower bound']:,} bytes; fits 256 KB "
        f"/ 1 MB: {'yes' if r['fits 256 KB / 1 MB'] else 'no'}", kind="dict")
    return out


def verdict(value, target, unit: str = "", higher_is_better: bool = True, scale: float = 1.0) -> str:
    """ "meets (+0.4x)" or "misses (-1.2 pp)": ``value`` against the reference ``target``, with the margin.

    ``scale`` multiplies the margin for display (100 for accuracies shown in percentage points).
    """
    if not isinstance(value, (int, float)) or not isinstance(target, (int, float)) or value != value:
        return ""
    margin = (value - target) if higher_is_better else (target - value)
    return f"{'meets' if margin >= 0 else 'misses'} ({margin * scale:+.{1 if scale == 1 else 2}f}{unit})"


#: The number each reference figure stands for, for the verdict column: (value, how the margin is shown).
TARGETS = {
    "Fashion-MNIST small CNN": 0.888,  # test accuracy
    "keras-tuner on Fashion-MNIST": 0.87,  # lower end of the lab's 0.87-0.88 test accuracy
    "post-training quantization": 84_452 / 23_840,  # size ratio of dynamic-range PTQ
    "pruning + quantization": 78_104 / 8_268,  # gzipped size ratio, pruned + quantized
    "depthwise-separable convolutions": 8.0,  # x fewer multiply-adds
    "knowledge distillation": (146 - 74) / (146 - 67),  # share of the teacher-student gap closed
}


def headlines(rec: dict) -> list[dict]:
    """One dict per headline: ``{"topic", "measured", "reference", "verdict", "notebook"}``.

    ``verdict`` says whether this run meets the public reference figure, with the margin ("" where there is
    no reference or nothing to compare).
    """
    out = []

    def add(topic, measured, reference, notebook, verdict=""):
        out.append(
            {
                "topic": topic,
                "measured": measured,
                "reference": reference or "",
                "verdict": verdict,
                "notebook": notebook,
            }
        )

    rare = _rows(rec, "00_workflow", "ROC-AUC vs PR-AUC as positives get rarer")
    if rare:
        a, b = max(rare, key=lambda r: r["positive_rate"]), min(rare, key=lambda r: r["positive_rate"])
        add(
            "ROC-AUC vs PR-AUC as positives get rarer (one model)",
            f"{a['positive_rate']:.0%} positives: ROC-AUC {a['roc_auc']:.3f}, PR-AUC {a['pr_auc']:.3f}; "
            f"{b['positive_rate']:.0%}: ROC-AUC {b['roc_auc']:.3f}, PR-AUC {b['pr_auc']:.3f}",
            "",
            "00_workflow",
        )
    final = _rows(rec, "02_tuning", "baseline vs tuned winner (test set)")
    if final:
        base, tuned = final[0], final[-1]
        add(
            "untuned baseline CNN, test accuracy",
            f"{base['test_accuracy']:.4f}",
            REFERENCES["Fashion-MNIST small CNN"],
            "02_tuning",
            verdict(base["test_accuracy"], TARGETS["Fashion-MNIST small CNN"], " pp", scale=100),
        )
        add(
            "tuned model, test accuracy",
            f"{tuned['test_accuracy']:.4f} ({tuned['model']})",
            REFERENCES["keras-tuner on Fashion-MNIST"],
            "02_tuning",
            verdict(tuned["test_accuracy"], TARGETS["keras-tuner on Fashion-MNIST"], " pp", scale=100),
        )
    bought = rec.get("02_tuning", {}).get("what tuning bought (test set)")
    if isinstance(bought, str) and bought:
        add("what tuning bought (winner vs baseline, same schedule, over seeds)", bought, "", "02_tuning")
    tuners = _rows(rec, "02_tuning", "tuner comparison (same space, same epoch budget)")
    if tuners:
        add(
            "tuners at one epoch budget: best validation accuracy, models tried, epochs",
            "; ".join(f"{r['tuner']} {r['best val accuracy']:.4f} ({r.get('models tried', '?')} models, "
                      f"{r.get('epochs trained', '?')} epochs)" for r in tuners),
            "",
            "02_tuning",
        )
    grid = _rows(rec, "02_tuning", "grid vs random search (same budget, over seeds and grid offsets)")
    if grid:
        add(
            "grid vs random search, same budget, over seeds and grid offsets",
            "; ".join(f"{r['condition']}: random ahead in {r['random ahead in']} of {r['seeds']} seeds, "
                      f"{r['mean (points)']:+.2f} points {r['95% interval']}" for r in grid),
            "",
            "02_tuning",
        )
    automl = rec.get("02_tuning", {}).get("AutoML vs hand-tuned CNN (test set)")
    if isinstance(automl, dict) and automl.get("automl_test_accuracy") is not None:
        best = automl.get("automl_best") or {}
        add(
            "AutoML (scikit-learn pipelines) vs the tuned CNN, test accuracy",
            f"{automl['automl_test_accuracy']:.4f} ({best.get('model', '?')}, {automl.get('pipelines')} pipelines in "
            f"{automl.get('automl_seconds', float('nan')):.0f} s) vs {automl['tuned_cnn_test_accuracy']:.4f}",
            "",
            "02_tuning",
        )
    nas = _rows(rec, "03_nas", "NAS strategies under one budget")
    if nas:
        best = max(nas, key=lambda r: r["best val accuracy"])
        add(
            "NAS: best strategy under one budget",
            f"{best['strategy']}: {best['best val accuracy']:.4f} validation "
            f"accuracy in {best['evaluations']} evaluations (of {len(nas)} strategies)",
            "",
            "03_nas",
        )
    cheap = _row(_rows(rec, "03_nas", "performance estimation: rank agreement and time saved"), estimator="1 epoch")
    if cheap:
        add(
            "NAS: 1-epoch performance estimate",
            f"rank agreement with full training (Spearman) "
            f"{cheap['spearman vs full']:.2f}, {cheap['time saved']:.0%} of the time saved",
            "",
            "03_nas",
        )
    noise = rec.get("03_nas", {}).get("NAS strategies: gap vs seed spread")
    if isinstance(noise, dict) and noise.get("gap") is not None:
        interval = noise.get("interval")
        where = (f"95 % t-interval [{interval[0]:+.4f}, {interval[1]:+.4f}] over n = {noise.get('n')} seeds"
                 if isinstance(interval, list) and len(interval) == 2 and None not in interval
                 else f"half-width {noise['seed spread']:.4f}")
        add(
            "NAS strategies: leader vs runner-up, per-seed difference (best val accuracy)",
            f"{noise.get('leader', 'leader')} - {noise.get('runner-up', 'runner-up')}: {noise['gap']:+.4f}, {where}: "
            + ("within the noise (the interval includes 0)" if noise.get("within noise")
               else "more than the noise (the interval excludes 0)"),
            "",
            "03_nas",
        )
    mm = rec.get("03_nas", {}).get("NAS micro vs macro")
    if isinstance(mm, dict) and mm.get("pairs"):
        add(
            "NAS: micro (cell) vs macro search space, random search",
            f"micro won {mm['micro wins']} of {mm['pairs']} same-seed searches, mean difference "
            f"{mm['mean difference']:+.4f}: the claim {'holds' if mm.get('holds') else 'does not hold'} here",
            "",
            "03_nas",
        )
    lc = rec.get("03_nas", {}).get("learning-curve extrapolation")
    if isinstance(lc, dict) and lc.get("mean abs error") is not None:
        est = _rows(rec, "03_nas", "performance estimation: rank agreement and time saved")
        est = _row(est, estimator="extrapolated")
        add(
            "NAS: learning-curve extrapolation",
            f"from {lc['fit epochs']} to {lc['target epoch']} epochs: mean |error| {lc['mean abs error']:.4f}"
            + (f", Spearman vs full training {est['spearman vs full']:.2f}" if est else "")
            + f"; {lc['fitted']} curves fitted, {lc['fell back']} fell back to the last value",
            "",
            "03_nas",
        )
    table = _rows(rec, "05_compression", "compression table")
    base = _row(table, variant="float32")
    if base:
        int8 = _row(table, variant="int8 (per-channel)")
        if int8:
            add(
                "int8 post-training quantization: size, accuracy change",
                f"{base['bytes']:,} B -> {int8['bytes']:,} B ({base['bytes'] / int8['bytes']:.2f}x), "
                f"{100 * (int8['accuracy'] - base['accuracy']):+.2f} pp",
                REFERENCES["post-training quantization"],
                "05_compression",
                verdict(base["bytes"] / int8["bytes"], TARGETS["post-training quantization"], "x smaller"),
            )
        pruned = next((r for r in table if "pruned" in r["variant"] and "int8" in r["variant"]), None)
        if pruned:
            add(
                "pruned + int8, gzipped",
                f"{base['gzipped']:,} B -> {pruned['gzipped']:,} B "
                f"({base['gzipped'] / pruned['gzipped']:.1f}x), "
                f"{100 * (pruned['accuracy'] - base['accuracy']):+.2f} pp",
                REFERENCES["pruning + quantization"],
                "05_compression",
                verdict(base["gzipped"] / pruned["gzipped"], TARGETS["pruning + quantization"], "x smaller"),
            )
    macs = rec.get("05_compression", {}).get("conv MACs ratio standard/separable")
    if isinstance(macs, (int, float)):
        add(
            "separable vs standard convolutions, conv MACs",
            f"{macs:.1f}x fewer",
            REFERENCES["depthwise-separable convolutions"],
            "05_compression",
            verdict(macs, TARGETS["depthwise-separable convolutions"], "x"),
        )
    qat = rec.get("05_compression", {}).get("QAT on a wide-range model")
    if isinstance(qat, dict) and qat.get("QAT (1 epoch) + int8") is not None:
        control = next((v for k, v in qat.items() if k.startswith("control")), None)
        add(
            "QAT on a model with a wide activation range, test accuracy",
            f"float {qat.get('float model (outlier)', float('nan')):.4f}, post-training int8 "
            f"{qat.get('post-training int8', float('nan')):.4f}, QAT + int8 {qat['QAT (1 epoch) + int8']:.4f}"
            + (f", control (float fine-tune + int8) {control:.4f}" if control is not None else ""),
            "",
            "05_compression",
        )
    pr = _rows(rec, "05_compression", "structured vs unstructured pruning")
    dense, mag, filt = _row(pr, variant="dense"), _row(pr, variant="magnitude"), _row(pr, variant="filter")
    if dense and mag and filt:
        add(
            "structured (filter) vs unstructured (magnitude) pruning, int8 latency",
            f"dense {dense['latency_ms']:.3f} ms, magnitude-pruned {mag['latency_ms']:.3f} ms, filter-pruned "
            f"{filt['latency_ms']:.3f} ms ({dense['MACs'] / filt['MACs']:.1f}x fewer MACs; accuracy "
            f"{filt['accuracy (int8)']:.4f} vs {dense['accuracy (int8)']:.4f})",
            "",
            "05_compression",
        )
    ft = rec.get("06_distributed_training", {}).get(
        "fault tolerance: worker killed mid-training, resumed from BackupAndRestore"
    )
    if isinstance(ft, dict) and ft.get("resumed at epoch"):
        add(
            "fault tolerance (MultiWorkerMirroredStrategy)",
            f"worker killed after epoch {ft['killed after epoch']}, "
            f"resumed at epoch {ft['resumed at epoch']}, epochs finished {ft['epochs finished']}",
            "",
            "06_distributed_training",
        )
    pipe = _rows(rec, "06_distributed_training", "tf.data: epoch time as each step is added")
    if pipe:
        add(
            "tf.data: epoch time, sequential -> all steps",
            f"{pipe[0]['epoch time (s)']:.2f} s -> {pipe[-1]['epoch time (s)']:.2f} s "
            f"({pipe[-1]['speed-up']:.2f}x; biggest single step: {_biggest_step(pipe)})",
            "",
            "06_distributed_training",
        )
    goes = rec.get("06_distributed_training", {}).get("tf.data: where the time goes")
    if isinstance(goes, str) and goes:
        add("tf.data: where the time goes", goes, "", "06_distributed_training")
    for topic, steps in (
        ("model parallelism on 2 logical CPU devices, training step",
         _rows(rec, "06_distributed_training", "model parallelism: step time (ms), one device vs split vs pipelined")),
        ("mixed precision, training step on this CPU",
         _rows(rec, "06_distributed_training", "mixed precision: training step (ms) on this CPU")),
    ):
        if steps and "candidate" in steps[0]:
            add(topic, ", ".join(f"{r['candidate']} {r['median_ms']:.2f} ms (spread {r['spread']:.0%})" for r in steps),
                "", "06_distributed_training")
    gap = rec.get("07_distillation_ensembles", {}).get("distillation gap closed (mean over seeds)")
    if isinstance(gap, dict) and gap.get("gap closed") is not None:
        how = ""
        if gap.get("transfer"):
            how = f" with a transfer set of {gap['transfer']:,} unlabelled images"
            if gap.get("gap closed (labelled only)") is not None:
                how += f" ({gap['gap closed (labelled only)']:.0%} on the labelled images alone)"
        if gap.get("gap closed (hard-label control)") is not None:
            how += f"; hard-label control {gap['gap closed (hard-label control)']:.0%}"
        add(
            "distillation: share of the teacher-student gap closed",
            f"{gap['gap closed']:.0%}{how}, mean of {gap['seeds']} seed(s) (teacher {gap['teacher']:.4f}, "
            f"scratch {gap['scratch']:.4f}, distilled {gap['distilled']:.4f})",
            REFERENCES["knowledge distillation"] + " (a different set-up: MNIST, a large net, no transfer set)",
            "07_distillation_ensembles",
            verdict(gap["gap closed"], TARGETS["knowledge distillation"], " pp", scale=100),
        )
    ens = _rows(rec, "07_distillation_ensembles", "ensembles on Fashion-MNIST (40 PCA components)")
    if ens:
        best = max(ens, key=lambda r: r["test accuracy"])
        add(
            "best scikit-learn ensemble",
            f"{best['model']}: {best['test accuracy']:.4f} (train {best['train time (s)']:.1f} s)",
            "",
            "07_distillation_ensembles",
        )
    dep = _rows(rec, "08_deployment", "deployed model: float32 vs int8 (LiteRT)")
    f32, i8 = _row(dep, variant="float32"), _row(dep, variant="int8")
    if f32 and i8:
        serve = _rows(rec, "08_deployment", "serving benchmark (int8, LiteRT, 1 thread)") or []
        fastest = max(serve, key=lambda r: r["images/s"], default=None)
        add(
            "deployed model: int8 vs float32 (LiteRT)",
            f"accuracy {i8['accuracy']:.4f} vs {f32['accuracy']:.4f}, "
            f"{f32['bytes'] / i8['bytes']:.1f}x smaller, {i8['latency_ms']:.3f} vs {f32['latency_ms']:.3f} ms per image"
            + (f"; {fastest['images/s']:,.0f} images/s at batch {fastest['batch size']}" if fastest else ""),
            REFERENCES["post-training quantization"],
            "08_deployment",
            verdict(f32["bytes"] / i8["bytes"], TARGETS["post-training quantization"], "x smaller"),
        )
    rt = _rows(rec, "09_runtimes", "runtimes: headline per runtime (tuned CNN)")
    lite = _row(rt, runtime="LiteRT", precision="float32")
    for r in (rt or []) if lite else []:
        if r is not lite:
            add(
                f"runtime: {r['runtime']} {r['precision']} vs LiteRT float32 (tuned CNN, batch 1, 1 thread)",
                f"{r['p50_ms_1t']:.3f} vs {lite['p50_ms_1t']:.3f} ms (p95 {r['p95_ms_1t']:.3f}), "
                f"{r['size_kb']:.0f} vs {lite['size_kb']:.0f} KB, accuracy {r['accuracy']:.4f} vs "
                f"{lite['accuracy']:.4f}, agreement with Keras {r['agreement']:.1%}",
                "",
                "09_runtimes",
            )
    mon = _rows(rec, "08_deployment", "monitoring: alarms per traffic window")
    if mon:
        normal = [r for r in mon if "normal" in r["window"]]
        drifted = [r for r in mon if "normal" not in r["window"]]
        add(
            "monitoring rehearsal: alarms",
            f"{sum(r['alarm'] for r in normal)}/{len(normal)} false alarms on normal "
            f"days, {sum(r['alarm'] for r in drifted)}/{len(drifted)} drifted days caught",
            "",
            "08_deployment",
        )
    for topic, measured, notebook in _newer_headlines(rec):
        add(topic, measured, "", notebook)
    return out


def figures(rec: dict, runs: list[dict], out_dir: Path) -> list[tuple[str, Path]]:
    """Draw the report's figures into ``out_dir``; returns ``[(caption, path)]`` for those that have data."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []

    def save(fig, name, caption):
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append((caption, path))

    def bars(labels, values, name, caption, colors=None, **labels_and_title):
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.2))
        ax.barh(labels, values, color=colors)
        ax.invert_yaxis()
        ax.set(**labels_and_title)
        save(fig, name, caption)

    if runs:
        bars(
            [r["notebook"] for r in runs],
            [r["seconds"] / 60 for r in runs],
            "run_times.png",
            "Run time of each notebook",
            ["tab:green" if r["status"] == "ok" else "tab:red" for r in runs],
            xlabel="run time (minutes)",
            ylabel="notebook",
            title="Run time per notebook (red: failed)",
        )
    tuners = [r for r in _rows(rec, "02_tuning", "tuner comparison (same space, same epoch budget)") or []
              if isinstance(r.get("training time (s)"), (int, float))]
    if tuners:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in tuners:
            ax.scatter(r["training time (s)"], r["best val accuracy"], s=60)
            ax.annotate(
                r["tuner"], (r["training time (s)"], r["best val accuracy"]), xytext=(5, 3), textcoords="offset points"
            )
        ax.set(xlabel="training time (s)", ylabel="best validation accuracy", title="Tuners: same space, same epochs")
        save(fig, "tuners.png", "Tuners: best validation accuracy against training time")
    table = _rows(rec, "05_compression", "compression table")
    if table:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in table:
            ax.scatter(r["gzipped"] / 1024, 100 * r["accuracy"])
            ax.annotate(
                r["variant"],
                (r["gzipped"] / 1024, 100 * r["accuracy"]),
                fontsize=7,
                xytext=(4, 2),
                textcoords="offset points",
            )
        ax.set(xscale="log", xlabel="gzipped size (KiB, log)", ylabel="test accuracy (%)", title="Compression")
        save(fig, "compression.png", "Compression: size against accuracy")
    pipe = _rows(rec, "06_distributed_training", "tf.data: epoch time as each step is added")
    if pipe:
        bars(
            [r["pipeline"] for r in pipe],
            [r["epoch time (s)"] for r in pipe],
            "pipeline.png",
            "Input pipeline: epoch time as each tf.data step is added",
            xlabel="epoch time (s)",
            ylabel="pipeline",
            title="tf.data: each step added",
        )
    seeds = _rows(rec, "07_distillation_ensembles", "distillation over seeds (test accuracy)")
    if seeds:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [n for n in ("scratch", "distilled", "distilled + transfer", "teacher") if n in seeds[0]]
        for r in seeds:
            ax.plot(names, [r[n] for n in names], marker="o", label=f"seed {r['seed']}")
        ax.set(xlabel="model", ylabel="test accuracy", title="Distillation, per seed")
        ax.legend(fontsize=8)
        save(fig, "distillation.png", "Distillation: student from scratch, distilled student, teacher")
    return made


# ----------------------------------------------------------------------------------------------- writing
def environment() -> dict:
    """Where the results were measured: Python and library versions, CPU (cores, model, the instruction sets
    that matter for int8 / bfloat16), GPU or not, and where Fashion-MNIST came from."""
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in (
        "tensorflow",
        "keras",
        "tf-keras",
        "tensorflow-model-optimization",
        "keras-tuner",
        "ai-edge-litert",
        "onnxruntime",
        "openvino",
        "nncf",
        "scikit-learn",
        "jupyterlab",
    ):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "MISSING: run `make setup`"

    info.update(machine.probe())

    found = data.find_fashion_mnist()
    info["fashion-mnist"] = (
        f"full data set, {found}"
        if found
        else "only the embedded 6,000/1,000-image subset (sudo apt-get install dataset-fashion-mnist)"
    )
    info["course version"] = _course_version()
    return info


def _course_version() -> str:
    """The checkout's git commit (``+ local changes`` when its files differ from it), or "unknown" without git."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" + local changes" if dirty else "")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and v and isinstance(v[0], dict):
        cols = list(v[0])
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in v]
        return "\n\n" + "\n".join(lines) + "\n"
    if isinstance(v, dict):
        return "; ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    return str(v)


def _minutes(seconds) -> str:
    return f"{seconds / 60:.1f} min"


def _not_run(runs: list[dict]) -> str:
    """" Not in this run: 03_x, 05_y." for the course's notebooks a run left out ("" when it ran them all)."""

    ran = {r["notebook"] for r in runs}
    missing = [p.stem for p in solution_notebooks(SOLUTIONS) if p.stem not in ran] if SOLUTIONS.is_dir() else []
    return f" Not in this run: {', '.join(missing)}." if missing else ""


def _failure(run: dict) -> str:
    """The failing cell and the tail of its traceback, as much as the runner kept."""
    parts = []
    if run.get("cell") is not None:
        parts.append(f"cell {run['cell']}")
    if run.get("source"):
        parts.append(run["source"].strip())
    parts.append(run.get("traceback") or run.get("error") or "")
    return "\n".join(p for p in parts if p)


_TITLE = {"smoke": "SMOKE size: tiny data, not the course results",
          "lesson": "lesson size: minutes per notebook; the full run's numbers are the reference",
          "full": "full run"}


def write_markdown(runs: list[dict], recorded: dict, path: Path, size: str, figs=(), env: dict | None = None) -> Path:
    """The Markdown report: notebooks (status, minutes), headlines with verdicts, figures, environment,
    every recorded result, the public reference figures."""
    import datetime as _dt

    path = Path(path)
    lines = [
        f"# mlcourse results report ({_TITLE[size]})",
        "",
        f"Generated {_dt.datetime.now():%Y-%m-%d %H:%M}. Every number below was measured by this run.",
        "",
        "## Notebooks",
        "",
        "| notebook | status | run time | error or note |",
        "|---|---|---|---|",
    ]
    for r in runs:
        link = f"[{r['notebook']}](notebooks/{r['notebook']}.html)" if r.get("html") else r["notebook"]
        err = (r.get("error") or "").splitlines()[0] if r.get("error") else r.get("note", "")
        lines.append(f"| {link} | {r['status']} | {_minutes(r['seconds'])} | {err} |")
    total = sum(r["seconds"] for r in runs)
    lines += ["", f"Total: {_minutes(total)}." + _not_run(runs), ""]
    for r in runs:
        if r["status"] != "ok":
            lines += [f"### {r['notebook']} failed", "", "```", _failure(r)[-3000:], "```", ""]
    heads = headlines(recorded)
    if heads:
        lines += [
            "## Headlines, next to the public reference figures",
            "",
            "| topic | measured here | public reference | verdict | notebook |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {h['topic']} | {h['measured']} | {h['reference'] or '-'} | {h['verdict'] or '-'} | {h['notebook']} |"
            for h in heads
        ]
        lines.append("")
    if figs:
        lines += ["## Figures", ""]
        lines += [f"![{caption}](figures/{Path(p).name})\n\n*{caption}*\n" for caption, p in figs]
    if env:
        lines += ["## Environment", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in env.items()] + [""]
    lines += ["## All recorded results", ""]
    for nb, values in recorded.items():
        lines += [f"### {nb}", ""]
        for k, v in values.items():
            text = _fmt(v)
            lines.append(f"- **{k}**: {text}" if not text.startswith("\n") else f"- **{k}**:{text}")
        lines.append("")
    lines += ["## Public reference figures", "", "| reference | figure |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in REFERENCES.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#1a7f37;font-weight:600}.failed{color:#b3261e;font-weight:600}.meets{color:#1a7f37}.misses{color:#b3261e}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.85em}figure{margin:1.2em 0}figcaption{font-style:italic}
img{max-width:100%}.smoke{background:#fff4ce;padding:.6em;border:1px solid #e0c200}"""


def write_html(runs: list[dict], recorded: dict, path: Path, size: str, figs=(), env: dict | None = None) -> Path:
    """The report as one self-contained page (figures embedded, no network): notebooks with links to their
    executed copies, verdicts against the public references, figures, environment, every recorded result."""
    import base64
    import datetime as _dt
    from html import escape as e

    path = Path(path)

    def table(header, body_rows):
        head = "".join(f"<th>{e(str(h))}</th>" for h in header)
        return (
            f"<table><tr>{head}</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body_rows)
            + "</table>"
        )

    def value_html(v):
        if isinstance(v, list) and v and isinstance(v[0], dict):
            cols = list(v[0])
            return table(cols, [[e(_fmt(r.get(c))) for c in cols] for r in v])
        return e(_fmt(v))

    html = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mlcourse results report</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>mlcourse results report: {e(_TITLE[size])}</h1>",
        f"<p>Generated {_dt.datetime.now():%Y-%m-%d %H:%M}. Every number below was measured by this run.</p>",
    ]
    if size == "smoke":
        html.append("<p class='smoke'>A smoke run: tiny data, so the numbers are <b>not</b> the course's results.</p>")
    rows = []
    for r in runs:
        link = (
            f"<a href='notebooks/{e(r['notebook'])}.html'>{e(r['notebook'])}</a>" if r.get("html") else e(r["notebook"])
        )
        err = e((r.get("error") or "").splitlines()[0]) if r.get("error") else e(r.get("note", ""))
        rows.append([link, f"<span class='{e(r['status'])}'>{e(r['status'])}</span>", _minutes(r["seconds"]), err])
    html += [
        "<h2>Notebooks</h2>",
        table(["notebook", "status", "run time", "error or note"], rows),
        f"<p>Total: {_minutes(sum(r['seconds'] for r in runs))}.{e(_not_run(runs))}</p>",
    ]
    for r in runs:
        if r["status"] != "ok":
            html += [f"<h3>{e(r['notebook'])} failed</h3>", f"<pre>{e(_failure(r)[-3000:])}</pre>"]
    heads = headlines(recorded)
    if heads:
        def verdict_cell(v):
            return f"<span class='{v.split()[0]}'>{e(v)}</span>" if v else "-"

        html += [
            "<h2>Headlines, next to the public reference figures</h2>",
            table(
                ["topic", "measured here", "public reference", "verdict", "notebook"],
                [
                    [
                        e(h["topic"]),
                        e(h["measured"]),
                        e(h["reference"] or "-"),
                        verdict_cell(h["verdict"]),
                        e(h["notebook"]),
                    ]
                    for h in heads
                ],
            ),
        ]
    if figs:
        html.append("<h2>Figures</h2>")
        for caption, p in figs:
            data = base64.b64encode(Path(p).read_bytes()).decode()
            html.append(
                f"<figure><img alt='{e(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    if env:
        html += ["<h2>Environment</h2>", table(["", ""], [[e(str(k)), e(str(v))] for k, v in env.items()])]
    html.append("<h2>All recorded results</h2>")
    for nb, values in recorded.items():
        html.append(f"<h3>{e(nb)}</h3><ul>")
        html += [f"<li><b>{e(k)}</b>: {value_html(v)}</li>" for k, v in values.items()]
        html.append("</ul>")
    html += [
        "<h2>Public reference figures</h2>",
        table(["reference", "figure"], [[e(k), e(v)] for k, v in REFERENCES.items()]),
        "</body></html>",
    ]
    path.write_text("\n".join(html) + "\n")
    return path


def notebook_html(executed: Path, out: Path) -> Path | None:
    """An executed notebook as a standalone HTML page (its figures are already embedded); None if unreadable."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(executed, as_version=4)
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    except Exception as exc:  # noqa: BLE001 - a broken notebook must not lose the report
        Path(out).write_text(f"<!doctype html><p>Could not render {executed.name}: {type(exc).__name__}: {exc}</p>")
        return None
    Path(out).write_text(body)
    return Path(out)


def write(runs: list[dict], results_dir: Path, out_dir: Path, size: str) -> Path:
    """Write the whole report into ``out_dir``: ``report.md``, ``report.html``, ``figures/`` and every executed
    notebook as ``notebooks/<name>.html`` (from ``run["output"]``). Returns the path of ``report.md``.

    The environment block is ``out_dir/environment.json`` when the course command saved one as the run began
    (so a report written again later still names the machine and commit the numbers were measured on), else
    this process's :func:`environment`."""
    import json

    out_dir = Path(out_dir)
    recorded = results.load_all(results_dir) if Path(results_dir).is_dir() else {}
    figs = figures(recorded, runs, out_dir / "figures")
    saved = out_dir / "environment.json"
    env = json.loads(saved.read_text()) if saved.is_file() else environment()
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    runs = [dict(r) for r in runs]
    for r in runs:
        executed = Path(r.get("output") or "")
        if executed.is_file():  # a notebook that never started has no executed copy to link to
            r["html"] = bool(notebook_html(executed, out_dir / "notebooks" / f"{r['notebook']}.html"))
    write_html(runs, recorded, out_dir / "report.html", size, figs, env)
    return write_markdown(runs, recorded, out_dir / "report.md", size, figs, env)


def build_size(runs: list[dict]) -> str:
    """The size a course build ran at, from its runs (each records its ``size``; a run written before sizes
    existed was a full run). Runs at different sizes in one build are an error."""
    sizes = {r.get("size", "full") for r in runs}
    if len(sizes) > 1:
        raise ValueError(f"this build mixes sizes {sorted(sizes)}: run the course again into a new folder.")
    return sizes.pop() if sizes else "full"


_RUN_KEYS = ("notebook", "status", "seconds")


def load_runs(build) -> list[dict]:
    """The runs of a course build (``build/runs.json``), checked: a missing, unreadable or malformed file is a
    :class:`FileNotFoundError` / :class:`ValueError` that names the file, the entry and what to do."""
    import json

    path = Path(build) / "runs.json"
    if not path.is_file():
        raise FileNotFoundError(f"{Path(build)} holds no runs.json: run the course into it first (mlcourse course "
                                f"--out {build}).")
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not readable JSON ({type(exc).__name__}: {exc}): restore it (git, or the "
                         "build's previous-* copy) or run the course again into a new folder.") from None
    if not isinstance(runs, list):
        raise ValueError(f"{path} holds a JSON {json_kind(runs)}; a course build's runs.json is an array with one "
                         "{notebook, status, seconds, ...} object per notebook run.")
    for i, r in enumerate(runs):
        missing = [k for k in _RUN_KEYS if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"{path}: entry {i} ({str(r)[:60]}) lacks {', '.join(missing)}; each entry needs "
                             f"{', '.join(_RUN_KEYS)} (as `mlcourse course` writes them).")
        if not isinstance(r["seconds"], (int, float)):
            raise ValueError(f"{path}: entry {i} ({r['notebook']}) has seconds={r['seconds']!r}, not a number.")
    return runs


def rewrite(build) -> Path:
    """Write the report of the course run in ``build`` again (from its ``runs.json`` and ``results/``), with
    this version's headlines; the executed notebooks are read from ``build/notebooks/``."""

    build = Path(build)
    runs = load_runs(build)
    for r in runs:  # the build may have been moved since: find the executed notebooks where they are now
        r["output"] = str(build / "notebooks" / f"{r['notebook']}.ipynb")
    return write(runs, build / "results", build, build_size(runs))


PUBLISHED = ("report.md", "report.html", "runs.json", "environment.json", "figures", "notebooks", "results")


def publish(build, dest=None) -> Path:
    """Copy the report of a **full** course run in ``build`` into ``dest`` (default ``reference/`` in the
    checkout): ``report.md``, ``report.html``, ``figures/``, the executed notebooks as HTML, the recorded
    ``results/``, ``environment.json`` and ``runs.json`` (with paths made relative). A smoke run, or one with a
    failed notebook, is refused; notebooks the run left out are named in its report. A previous ``dest`` is
    replaced (git keeps its history)."""
    import json
    import shutil

    build = Path(build)
    dest = Path(dest) if dest is not None else ROOT / "reference"
    md = build / "report.md"
    if not md.is_file() or not (build / "runs.json").is_file():
        raise FileNotFoundError(f"{build} holds no finished course run (report.md and runs.json): run "
                                "`mlcourse course` first.")
    runs = load_runs(build)
    if build_size(runs) != "full":
        raise ValueError(f"{build} is a {build_size(runs)}-size run: publish a full run (`mlcourse course`, "
                         "without --size).")
    failed = [r["notebook"] for r in runs if r.get("status") != "ok"]
    if failed:
        raise ValueError(f"{', '.join(failed)} did not finish in {build}: publish only notebooks that ran to the "
                         "end (run them again, or `mlcourse course --only` the others into a new build).")
    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in PUBLISHED:
        src = build / name
        if src.is_dir():
            shutil.copytree(src, staging / name, ignore=shutil.ignore_patterns("*.ipynb", "*.kernel.log"))
        elif src.is_file():
            shutil.copy2(src, staging / name)
    for r in runs:
        r["output"] = f"notebooks/{r['notebook']}.html"
    (staging / "runs.json").write_text(json.dumps(runs, indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest


def main(argv=None) -> int:
    """``python -m mlcourse.report rewrite BUILD`` | ``publish BUILD [--to DEST]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m mlcourse.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("rewrite", help="write a build's report again").add_argument("build", type=Path)
    pub = sub.add_parser("publish", help="copy a full run's report into reference/")
    pub.add_argument("build", type=Path)
    pub.add_argument("--to", type=Path, default=None, help="destination (default: reference/ in the checkout)")
    args = p.parse_args(argv)
    try:
        out = rewrite(args.build) if args.command == "rewrite" else publish(args.build, args.to)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"{args.command}: {out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
