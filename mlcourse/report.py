"""The course report's headlines and figures, drawn from what the notebooks recorded.

:func:`headlines` picks, from every notebook's recorded results (:mod:`mlcourse.results`), the numbers a
reader wants first (ROC-AUC vs PR-AUC, tuned accuracy, NAS, compression ratios, fault tolerance,
pipeline speed-up, distillation gap, ensembles, the deployed model, monitoring) and pairs each with the public reference figure it should meet, where one exists.
:func:`figures` draws the plots the report embeds. A notebook that did not run, or recorded something
else, simply leaves its headline out: the report never invents a number.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["REFERENCES", "headlines", "figures"]

#: Public reference figures the course measures itself against (see shared/STACK.md and the notebooks).
REFERENCES = {
    "Fashion-MNIST small CNN": "0.888 test accuracy (a 2-conv CNN, 3 epochs, on 2 CPU cores)",
    "keras-tuner on Fashion-MNIST": "0.87-0.88 test accuracy (best-known public keras-tuner lab, Hyperband, 30 trials)",
    "post-training quantization": "84,452 B -> 23,840 B (3.5x), accuracy 0.9624 -> 0.9626 (TF dynamic-range PTQ tutorial, MNIST)",
    "pruning + quantization": "78,104 B -> 8,268 B gzipped, about 9.5x (public run of the pruning + quantization lab)",
    "depthwise-separable convolutions": "8-9x less computation (MobileNet)",
    "knowledge distillation": "91 % of the gap (Hinton et al. 2015, MNIST errors: small net 146, distilled 74, teacher 67)",
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


def headlines(rec: dict) -> list[dict]:
    """One dict per headline: ``{"topic", "measured", "reference", "notebook"}``."""
    out = []

    def add(topic, measured, reference, notebook):
        out.append({"topic": topic, "measured": measured, "reference": reference or "", "notebook": notebook})

    rare = _rows(rec, "00_workflow", "ROC-AUC vs PR-AUC as positives get rarer")
    if rare:
        a, b = max(rare, key=lambda r: r["positive_rate"]), min(rare, key=lambda r: r["positive_rate"])
        add("ROC-AUC vs PR-AUC as positives get rarer (one model)",
            f"{a['positive_rate']:.0%} positives: ROC-AUC {a['roc_auc']:.3f}, PR-AUC {a['pr_auc']:.3f}; "
            f"{b['positive_rate']:.0%}: ROC-AUC {b['roc_auc']:.3f}, PR-AUC {b['pr_auc']:.3f}", "", "00_workflow")
    final = _rows(rec, "01_tuning", "baseline vs tuned winner (test set)")
    if final:
        base, tuned = final[0], final[-1]
        add("untuned baseline CNN, test accuracy", f"{base['test_accuracy']:.4f}", REFERENCES["Fashion-MNIST small CNN"], "01_tuning")
        add("tuned model, test accuracy", f"{tuned['test_accuracy']:.4f} ({tuned['model']})", REFERENCES["keras-tuner on Fashion-MNIST"],
            "01_tuning")
    tuners = _rows(rec, "01_tuning", "tuner comparison (same space, same number of trials)")
    if tuners:
        add("tuners, best validation accuracy / wall time",
            "; ".join(f"{r['tuner']} {r['best val accuracy']:.4f} in {r['wall time (s)']:.0f} s" for r in tuners),
            "", "01_tuning")
    nas = _rows(rec, "02_nas", "NAS strategies under one budget")
    if nas:
        best = max(nas, key=lambda r: r["best val accuracy"])
        add("NAS: best strategy under one budget", f"{best['strategy']}: {best['best val accuracy']:.4f} validation "
            f"accuracy in {best['evaluations']} evaluations (of {len(nas)} strategies)", "", "02_nas")
    cheap = _row(_rows(rec, "02_nas", "performance estimation: rank agreement and time saved"), estimator="1 epoch")
    if cheap:
        add("NAS: 1-epoch performance estimate", f"rank agreement with full training (Spearman) "
            f"{cheap['spearman vs full']:.2f}, {cheap['time saved']:.0%} of the time saved", "", "02_nas")
    table = _rows(rec, "04_compression", "compression table")
    base = _row(table, variant="float32")
    if base:
        int8 = _row(table, variant="int8 (per-channel)")
        if int8:
            add("int8 post-training quantization: size, accuracy change",
                f"{base['bytes']:,} B -> {int8['bytes']:,} B ({base['bytes'] / int8['bytes']:.2f}x), "
                f"{100 * (int8['accuracy'] - base['accuracy']):+.2f} pp", REFERENCES["post-training quantization"], "04_compression")
        pruned = next((r for r in table if "pruned" in r["variant"] and "int8" in r["variant"]), None)
        if pruned:
            add("pruned + int8, gzipped", f"{base['gzipped']:,} B -> {pruned['gzipped']:,} B "
                f"({base['gzipped'] / pruned['gzipped']:.1f}x), {100 * (pruned['accuracy'] - base['accuracy']):+.2f} pp",
                REFERENCES["pruning + quantization"], "04_compression")
    macs = rec.get("04_compression", {}).get("conv MACs ratio standard/separable")
    if isinstance(macs, (int, float)):
        add("separable vs standard convolutions, conv MACs", f"{macs:.1f}x fewer", REFERENCES["depthwise-separable convolutions"],
            "04_compression")
    ft = rec.get("05_distributed_training", {}).get("fault tolerance: worker killed mid-training, resumed from BackupAndRestore")
    if isinstance(ft, dict) and ft.get("resumed at epoch"):
        add("fault tolerance (MultiWorkerMirroredStrategy)", f"worker killed after epoch {ft['killed after epoch']}, "
            f"resumed at epoch {ft['resumed at epoch']}, epochs finished {ft['epochs finished']}", "", "05_distributed_training")
    pipe = _rows(rec, "05_distributed_training", "tf.data: epoch time as each step is added")
    if pipe:
        add("tf.data: epoch time, sequential -> all steps",
            f"{pipe[0]['epoch time (s)']:.2f} s -> {pipe[-1]['epoch time (s)']:.2f} s "
            f"({pipe[-1]['speed-up']:.2f}x; biggest single step: {_biggest_step(pipe)})",
            "", "05_distributed_training")
    gap = rec.get("06_distillation_ensembles", {}).get("distillation gap closed (mean over seeds)")
    if isinstance(gap, dict) and gap.get("gap closed") is not None:
        how = ""
        if gap.get("transfer"):
            how = f" with a transfer set of {gap['transfer']:,} unlabelled images"
            if gap.get("gap closed (labelled only)") is not None:
                how += f" ({gap['gap closed (labelled only)']:.0%} on the labelled images alone)"
        add("distillation: share of the teacher-student gap closed",
            f"{gap['gap closed']:.0%}{how}, mean of {gap['seeds']} seed(s) (teacher {gap['teacher']:.4f}, "
            f"scratch {gap['scratch']:.4f}, distilled {gap['distilled']:.4f})", REFERENCES["knowledge distillation"],
            "06_distillation_ensembles")
    ens = _rows(rec, "06_distillation_ensembles", "ensembles on Fashion-MNIST (40 PCA components)")
    if ens:
        best = max(ens, key=lambda r: r["test accuracy"])
        add("best scikit-learn ensemble", f"{best['model']}: {best['test accuracy']:.4f} "
            f"(train {best['train time (s)']:.1f} s)", "", "06_distillation_ensembles")
    dep = _rows(rec, "07_deployment", "deployed model: float32 vs int8 (LiteRT)")
    f32, i8 = _row(dep, variant="float32"), _row(dep, variant="int8")
    if f32 and i8:
        serve = _rows(rec, "07_deployment", "serving benchmark (int8, LiteRT, 1 thread)") or []
        fastest = max(serve, key=lambda r: r["images/s"], default=None)
        add("deployed model: int8 vs float32 (LiteRT)", f"accuracy {i8['accuracy']:.4f} vs {f32['accuracy']:.4f}, "
            f"{f32['bytes'] / i8['bytes']:.1f}x smaller, {i8['latency_ms']:.3f} vs {f32['latency_ms']:.3f} ms per image"
            + (f"; {fastest['images/s']:,.0f} images/s at batch {fastest['batch size']}" if fastest else ""),
            REFERENCES["post-training quantization"], "07_deployment")
    mon = _rows(rec, "07_deployment", "monitoring: alarms per traffic window")
    if mon:
        normal = [r for r in mon if "normal" in r["window"]]
        drifted = [r for r in mon if "normal" not in r["window"]]
        add("monitoring rehearsal: alarms", f"{sum(r['alarm'] for r in normal)}/{len(normal)} false alarms on normal "
            f"days, {sum(r['alarm'] for r in drifted)}/{len(drifted)} drifted days caught", "", "07_deployment")
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
        bars([r["notebook"] for r in runs], [r["seconds"] / 60 for r in runs], "run_times.png",
             "Run time of each notebook", ["tab:green" if r["status"] == "ok" else "tab:red" for r in runs],
             xlabel="run time (minutes)", ylabel="notebook", title="Run time per notebook (red: failed)")
    tuners = _rows(rec, "01_tuning", "tuner comparison (same space, same number of trials)")
    if tuners:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in tuners:
            ax.scatter(r["wall time (s)"], r["best val accuracy"], s=60)
            ax.annotate(r["tuner"], (r["wall time (s)"], r["best val accuracy"]), xytext=(5, 3), textcoords="offset points")
        ax.set(xlabel="wall time (s)", ylabel="best validation accuracy", title="Tuners: same space, same trials")
        save(fig, "tuners.png", "Tuners: best validation accuracy against wall time")
    table = _rows(rec, "04_compression", "compression table")
    if table:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in table:
            ax.scatter(r["gzipped"] / 1024, 100 * r["accuracy"])
            ax.annotate(r["variant"], (r["gzipped"] / 1024, 100 * r["accuracy"]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")
        ax.set(xscale="log", xlabel="gzipped size (KiB, log)", ylabel="test accuracy (%)", title="Compression")
        save(fig, "compression.png", "Compression: size against accuracy")
    pipe = _rows(rec, "05_distributed_training", "tf.data: epoch time as each step is added")
    if pipe:
        bars([r["pipeline"] for r in pipe], [r["epoch time (s)"] for r in pipe], "pipeline.png",
             "Input pipeline: epoch time as each tf.data step is added", xlabel="epoch time (s)",
             ylabel="pipeline", title="tf.data: each step added")
    seeds = _rows(rec, "06_distillation_ensembles", "distillation over seeds (test accuracy)")
    if seeds:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [n for n in ("scratch", "distilled", "distilled + transfer", "teacher") if n in seeds[0]]
        for r in seeds:
            ax.plot(names, [r[n] for n in names], marker="o", label=f"seed {r['seed']}")
        ax.set(xlabel="model", ylabel="test accuracy", title="Distillation, per seed")
        ax.legend(fontsize=8)
        save(fig, "distillation.png", "Distillation: student from scratch, distilled student, teacher")
    return made
