"""The course report: verdicts against the public references, minutes, links to the executed notebooks, an
environment block, failures with their cell and traceback; the HTML page renders in a real browser."""
import json

import nbformat
import pytest
from _chromium import Chromium, needs_chromium

from mlcourse import report

RESULTS = {
    "02_tuning": {"baseline vs tuned winner (test set)": [
        {"model": "baseline (untuned)", "test_accuracy": 0.9, "params": 1},
        {"model": "tuned (bayesian)", "test_accuracy": 0.86, "params": 1}]},
    "05_compression": {"compression table": [
        {"variant": "float32 baseline", "bytes": 4000, "gzipped": 3000, "accuracy": 0.90},
        {"variant": "int8 (per-channel)", "bytes": 1000, "gzipped": 800, "accuracy": 0.899}]},
}


@pytest.fixture
def built(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    for nb, values in RESULTS.items():
        (res / f"{nb}.json").write_text(json.dumps(values))
    executed = tmp_path / "executed"
    executed.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello from 02')")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hello from 02\n")]
    nbformat.write(nb, executed / "02_tuning.ipynb")
    runs = [{"notebook": "02_tuning", "status": "ok", "seconds": 150.0, "error": "",
             "output": str(executed / "02_tuning.ipynb")},
            {"notebook": "05_compression", "status": "failed", "seconds": 30.0, "error": "ValueError: boom",
             "cell": 7, "source": "compress(model)", "traceback": "Traceback ...\nValueError: boom",
             "output": str(executed / "missing.ipynb")}]
    out = tmp_path / "build"
    out.mkdir()
    md = report.write(runs, res, out, size="full")
    return out, md


def test_verdicts_say_meets_or_misses_with_the_margin():
    from mlcourse.headlines import Reference, verdict

    assert verdict(0.9, 0.888, " pp", scale=100) == "meets (+1.20 pp)"
    assert verdict(0.86, 0.87, " pp", scale=100) == "misses (-1.00 pp)"
    assert verdict(4.0, 3.54, "x smaller") == "meets (+0.5x smaller)"
    assert verdict(None, 3.5) == "" and verdict(float("nan"), 3.5) == ""
    assert Reference("a figure").verdict(0.9) == ""  # shown, not judged
    assert Reference("f", 0.8, " pp", 100).verdict(0.9) == "meets (+10.00 pp)"
    heads = {h["topic"]: h for h in report.headlines(RESULTS)}
    assert heads["untuned baseline CNN, test accuracy"]["verdict"] == "meets (+1.20 pp)"
    assert heads["tuned model, test accuracy"]["verdict"] == "misses (-1.00 pp)"
    assert heads["int8 post-training quantization: size, accuracy change"]["verdict"].startswith("meets (+0.5")


def test_markdown_report_has_minutes_links_environment_and_the_failure(built):
    out, md = built
    text = md.read_text()
    assert "| [02_tuning](notebooks/02_tuning.html) | ok | 2.5 min |" in text
    assert "| 05_compression | failed | 0.5 min |" in text  # no executed copy: no dead link
    assert "### 05_compression failed" in text and "cell 7" in text and "compress(model)" in text
    assert "ValueError: boom" in text.split("### 05_compression failed")[1]
    assert "## Environment" in text and "| tensorflow |" in text and "| cpu cores |" in text
    assert "| course version |" in text  # the commit the numbers were measured at
    assert "| verdict |" in text and "misses (-1.00 pp)" in text
    assert (out / "notebooks" / "02_tuning.html").read_text().count("hello from 02") >= 1


def test_html_report_is_self_contained(built):
    out, _ = built
    page = (out / "report.html").read_text()
    assert "<img" in page and "data:image/png;base64," in page  # figures embedded
    assert "http://" not in page and "https://" not in page      # nothing to fetch
    assert "href='notebooks/02_tuning.html'" in page and "class='misses'" in page


@needs_chromium
def test_html_report_renders_in_a_real_browser_with_figures_and_working_links(built, tmp_path):
    out, _ = built
    with Chromium() as browser:
        page = browser.open((out / "report.html").as_uri())
        page.wait_for("document.readyState === 'complete'", what="the report loaded")
        images = page.wait_for("Array.from(document.images).every(i => i.complete) && "
                               "Array.from(document.images).map(i => i.naturalWidth)", what="the figures")
        assert images and all(w > 100 for w in images), f"a figure did not render: widths {images}"
        assert "mlcourse results report" in page.evaluate("document.title")
        assert page.evaluate("document.querySelectorAll('.misses').length") >= 1
        links = page.evaluate("Array.from(document.links).map(a => a.href)")
        local = [href for href in links if href.startswith("file://")]
        assert local, "the report links no executed notebook"
        target = out / "notebooks" / "02_tuning.html"
        assert target.as_uri() in local
        page.goto(target.as_uri())
        page.wait_for("document.body && document.body.innerText.includes('hello from 02')",
                      what="the executed notebook behind the report's link")
        page.screenshot(tmp_path / "notebook.png")


def _keys_the_report_reads():
    """``(notebook, key)`` of every recorded result the report reads: from each week module's ``headlines`` (the
    key arguments of its Headlines calls, read from the syntax tree, so a call laid over several lines counts) and
    from every week's FIGURES."""
    import ast
    import importlib
    import inspect

    from mlcourse import report, weeks
    from mlcourse.headlines import KEY_READERS

    pairs = []
    for week in weeks.WEEKS:
        module = importlib.import_module(f"mlcourse.{week.module}")
        if not hasattr(module, "headlines"):
            continue
        for node in ast.walk(ast.parse(inspect.getsource(module.headlines))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in KEY_READERS:
                arg = node.args[KEY_READERS[node.func.attr]] if len(node.args) > KEY_READERS[node.func.attr] else None
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{week.module}.headlines line {node.lineno}: pass the recorded key as a string literal, so this "
                    "test can check that the notebook records it")
                pairs.append((week.stem, arg.value))
    pairs += [(notebook, spec.key) for notebook, spec in report.figure_specs()]
    return sorted(set(pairs))


def test_every_key_the_report_reads_is_recorded_by_its_notebook():
    """Renaming a recorded key in a notebook must not silently drop a headline: each key the report reads is
    recorded, as a string, by a `results.record` call of that notebook's solution."""
    from mlcourse.session import ROOT

    pairs = _keys_the_report_reads()
    assert len(pairs) >= 35, f"the key scan found only {pairs}"
    missing = []
    for notebook, key in pairs:
        path = ROOT / "solutions" / f"{notebook}.ipynb"
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if "results.record(" not in code or (json.dumps(key) not in code and repr(key) not in code):
            missing.append(f"{notebook}: {key!r}")
    assert not missing, "keys the report reads but no notebook records:\n" + "\n".join(missing)


def test_headlines_of_the_new_sections_read_what_the_notebooks_record():
    """The sections added in the last release (grid vs random, AutoML, micro vs macro, extrapolation, the QAT case,
    structured pruning, model parallelism, mixed precision, where tf.data's time goes) each get a headline, built
    from values recorded the way the notebooks record them (timing tables keep their candidates' names)."""
    import pandas as pd

    from mlcourse import results

    timing_table = pd.DataFrame({"median_ms": [2.0, 3.0], "p95_ms": [2.2, 3.3], "spread": [0.1, 0.2]},
                                index=pd.Index(["float32", "mixed_bfloat16"], name="candidate"))
    rec = {
        "02_tuning": {
            "grid vs random search (same budget, over seeds and grid offsets)": [
                {"condition": "gamma matters, tol barely", "seeds": 12, "random ahead in": 8, "mean (points)": 1.83,
                 "95% interval": "[+0.01, +3.66]"},
                {"condition": "both matter", "seeds": 12, "random ahead in": 5, "mean (points)": -1.0,
                 "95% interval": "[-2.59, +0.59]"}],
            "AutoML vs hand-tuned CNN (test set)": {"automl_best": {"model": "SVC()"}, "automl_test_accuracy": 0.85,
                                                    "tuned_cnn_test_accuracy": 0.90, "pipelines": 12,
                                                    "automl_seconds": 40.0}},
        "03_nas": {
            "NAS micro vs macro": {"pairs": 3, "micro wins": 2, "mean difference": 0.01, "holds": True},
            "NAS strategies: gap vs seed spread": {"gap": 0.01, "seed spread": 0.02, "within noise": True,
                                                   "leader": "bayesian (macro)", "runner-up": "random (macro)",
                                                   "interval": [-0.01, 0.03], "n": 3},
            "learning-curve extrapolation": {"fit epochs": 4, "target epoch": 8, "fitted": 7, "fell back": 1,
                                             "mean abs error": 0.012},
            "performance estimation: rank agreement and time saved": [
                {"estimator": "extrapolated from 4 epochs", "spearman vs full": 0.8}]},
        "05_compression": {
            "QAT on a wide-range model": {"float model (outlier)": 0.9, "post-training int8": 0.6,
                                          "QAT (1 epoch) + int8": 0.88,
                                          "control: float fine-tune (1 epoch) + int8": 0.7},
            "structured vs unstructured pruning": [
                {"variant": "dense (all filters)", "MACs": 400, "accuracy (int8)": 0.9, "latency_ms": 1.0},
                {"variant": "magnitude-pruned 50% (zeros)", "MACs": 400, "accuracy (int8)": 0.89, "latency_ms": 1.0},
                {"variant": "filter-pruned, 50% of filters kept", "MACs": 100, "accuracy (int8)": 0.88,
                 "latency_ms": 0.4}]},
        "06_distributed_training": {
            "mixed precision: training step (ms) on this CPU": results._jsonable(timing_table),
            "tf.data: where the time goes": "Sequential epoch 2.00 s; ..."},
    }
    heads = {h["topic"]: h["measured"] for h in report.headlines(rec)}
    grid = heads["grid vs random search, same budget, over seeds and grid offsets"]
    assert "gamma matters, tol barely: random ahead in 8 of 12 seeds, +1.83 points [+0.01, +3.66]" in grid
    assert "both matter: random ahead in 5 of 12 seeds, -1.00 points" in grid
    assert heads["AutoML (scikit-learn pipelines) vs the tuned CNN, test accuracy"].startswith("0.8500 (SVC()")
    assert "won 2 of 3" in heads["NAS: micro (cell) vs macro search space, random search"]
    nas = heads["NAS strategies: leader vs runner-up, per-seed difference (best val accuracy)"]
    assert "bayesian (macro) - random (macro): +0.0100" in nas and "[-0.0100, +0.0300] over n = 3 seeds" in nas
    assert "within the noise (the interval includes 0)" in nas
    assert "Spearman vs full training 0.80" in heads["NAS: learning-curve extrapolation"]
    assert "QAT + int8 0.8800" in heads["QAT on a model with a wide activation range, test accuracy"]
    assert "4.0x fewer MACs" in heads["structured (filter) vs unstructured (magnitude) pruning, int8 latency"]
    assert heads["mixed precision, training step on this CPU"].startswith("float32 2.00 ms (spread 10%)")
    assert heads["tf.data: where the time goes"].startswith("Sequential epoch")


def test_publish_copies_a_whole_full_run_and_refuses_anything_less(built, tmp_path):
    out, _ = built
    with pytest.raises(FileNotFoundError, match="no finished course run"):  # the course command writes runs.json
        report.publish(out, tmp_path / "reference")
    (out / "runs.json").write_text(json.dumps([{"notebook": "05_compression", "status": "failed", "seconds": 1}]))
    with pytest.raises(ValueError, match="05_compression did not finish"):
        report.publish(out, tmp_path / "reference")
    ok = [{"notebook": "02_tuning", "status": "ok", "seconds": 150.0, "error": "",
           "output": str(tmp_path / "executed" / "02_tuning.ipynb")}]
    (out / "runs.json").write_text(json.dumps(ok))
    (out / "notebooks" / "02_tuning.ipynb").write_text("{}")  # executed copies are not published, their HTML is
    (out / "results").mkdir()
    (out / "results" / "02_tuning.json").write_text(json.dumps(RESULTS["02_tuning"]))
    dest = report.publish(out, tmp_path / "reference")
    assert (dest / "report.html").is_file() and (dest / "notebooks" / "02_tuning.html").is_file()
    assert not list(dest.rglob("*.ipynb")) and (dest / "results" / "02_tuning.json").is_file()
    assert json.loads((dest / "runs.json").read_text())[0]["output"] == "notebooks/02_tuning.html"
    assert report.main(["publish", str(tmp_path / "nowhere")]) == 2  # a clear error, no traceback


def test_rewrite_writes_the_report_again_from_a_build(built, tmp_path):
    out, md = built
    runs = [{"notebook": "02_tuning", "status": "ok", "seconds": 150.0, "error": "", "output": "/moved/away.ipynb"}]
    (out / "runs.json").write_text(json.dumps(runs))
    nbformat.write(nbformat.v4.new_notebook(), out / "notebooks" / "02_tuning.ipynb")
    md.unlink()
    assert report.rewrite(out) == md and "| [02_tuning](notebooks/02_tuning.html) | ok |" in md.read_text()
    with pytest.raises(FileNotFoundError, match="no runs.json"):
        report.rewrite(tmp_path / "empty")



def test_the_environment_is_the_one_saved_when_the_run_began(built):
    """The course command saves environment.json as a run begins; a report written again later shows that one."""
    out, md = built
    (out / "environment.json").write_text(json.dumps({"course version": "commit abc1234", "cpu cores": 2}))
    report.write([], out / "results", out, size="full")
    assert "| course version | commit abc1234 |" in md.read_text()


def test_the_report_names_the_notebooks_a_run_left_out_and_each_runs_note(tmp_path):
    runs = [{"notebook": "00_workflow", "status": "ok", "seconds": 60.0, "error": "", "note": "ran alone"}]
    md = report.write(runs, tmp_path / "results", tmp_path, size="full").read_text()
    assert "| 00_workflow | ok | 1.0 min | ran alone |" in md
    left_out = md.split("Not in this run:")[1].splitlines()[0]
    assert "02_tuning" in left_out and "00_workflow" not in left_out


def test_the_committed_reference_run_is_linked_from_every_notebook_it_holds():
    """reference/ (written by `mlcourse report publish`) holds full runs that ran to the end, each with its executed
    HTML; the report names the environment and commit and the notebooks it left out; every notebook's intro links
    its reference run, and no intro links one that is not there."""
    from mlcourse.session import ROOT

    ref = ROOT / "reference"
    md = (ref / "report.md").read_text()
    assert "full run" in md.splitlines()[0] and "| course version | commit " in md
    runs = {r["notebook"]: r for r in json.loads((ref / "runs.json").read_text())}
    assert runs and all(r["status"] == "ok" for r in runs.values())
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        intro = nbformat.read(path, as_version=4).cells[0].source
        link = f"../reference/notebooks/{path.stem}.html"
        if path.stem in runs:
            assert (ref / "notebooks" / f"{path.stem}.html").is_file() and link in intro, path.stem
            page = (ref / "notebooks" / f"{path.stem}.html").read_text()
            assert "has no full run in" not in page, f"{path.stem}'s reference page says it has no full run"
        else:
            assert link not in intro and path.stem in md.split("Not in this run:")[1].splitlines()[0], path.stem


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"[1, 2, 3]", b"null", b"{broken"])
def test_a_bad_results_file_is_named_and_never_sinks_the_report(built, content):
    out, md = built
    (out / "results").mkdir(exist_ok=True)
    (out / "results" / "04_dimensionality_reduction.json").write_bytes(content)
    (out / "results" / "02_tuning.json").write_text(json.dumps(RESULTS["02_tuning"]))
    (out / "runs.json").write_text(json.dumps([{"notebook": "02_tuning", "status": "ok", "seconds": 1.0}]))
    with pytest.warns(UserWarning, match="04_dimensionality_reduction.json"):
        report.rewrite(out)
    text = md.read_text()
    assert "unreadable results file" in text and "04_dimensionality_reduction.json" in text
    assert "NoneType" not in text and "JSON list" not in text  # JSON's own words: null, array
    assert "baseline (untuned)" in text  # the good notebook's results are still there


@pytest.mark.parametrize("content, message", [
    (b"{not json", "runs.json is not readable JSON"),
    (bytes(range(256)), "runs.json is not readable JSON"),
    (b'{"notebook": "x"}', "holds a JSON object"),
    (b'[{"notebook": "02_tuning", "status": "ok"}]', "entry 0 .* lacks seconds"),
    (b'[{"notebook": "02_tuning", "status": "ok", "seconds": "long"}]', "not a number"),
])
def test_a_broken_runs_json_is_named_with_what_to_do(built, content, message, capsys):
    out, _ = built
    (out / "runs.json").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        report.rewrite(out)
    assert report.main(["rewrite", str(out)]) == 2 and "runs.json" in capsys.readouterr().out


def test_the_newer_results_get_headlines_and_a_missing_field_never_breaks_the_report():
    rec = {
        "05_compression": {
            "Keras 3 model.quantize int8": [
                {"index": "Keras float32", "weights in memory (bytes)": 3297832, "test accuracy": 0.7985},
                {"index": "Keras int8 (model.quantize)", "weights in memory (bytes)": 882768, "test accuracy": 0.798}],
            "int8 latency, memory-bound wide MLP": {"Dense units": 2048, "float32 MB": 23.3, "int8 MB": 5.9,
                                                    "float32 ms": 6.56, "int8 ms": 0.635},
            "adaptive vs uniform sparsity": [{"target (share removed)": 0.95, "allocation": "adaptive"}]},  # no acc
        "08_deployment": {"retraining: shadow comparison and promotion": [
            {"case": "new camera mount", "lead (points)": 48.98, "95% interval lo": 47.38, "95% interval hi": 50.57,
             "promoted": True},
            {"case": "sale (label shift)", "lead (points)": -3.33, "95% interval lo": -5.18, "95% interval hi": -1.47,
             "promoted": False}]},
        "09_runtimes": {"runtimes: Keras 3 export vs converters": [
            {"format": "onnx", "route": "model.export", "agreement": 1.0, "error": ""},
            {"format": "openvino", "route": "model.export", "agreement": None, "error": "ValueError: needs .xml"}]},
    }
    heads = {h["topic"]: h["measured"] for h in report.headlines(rec)}
    quant = heads["Keras 3 model.quantize('int8'): weights in memory, test accuracy"]
    assert "Keras float32 3,297,832 bytes, accuracy 0.7985; Keras int8 (model.quantize) 882,768 bytes" in quant
    assert "2048 units: float32 23.3 MB in 6.560 ms, int8 5.9 MB in 0.635 ms" in heads[
        "int8 where it pays: a memory-bound wide MLP at batch 1 (LiteRT)"]
    retrain = heads["retraining in shadow: the candidate's lead over the serving model, promoted?"]
    assert "new camera mount: +48.98 points [+47.38, +50.57] -> promoted" in retrain and "-> kept" in retrain
    exports = heads["Keras 3 model.export vs the converters it wraps: top-1 agreement with Keras"]
    assert "onnx via model.export: 100.0%" in exports and "openvino via model.export: failed (ValueError" in exports
    assert not any("adaptive" in t for t in heads)  # a row without its accuracy is left out, quietly


def test_every_week_figure_is_drawn_from_what_its_notebook_records(tmp_path):
    """The report only draws: each week's FIGURES spec, fed rows shaped as its notebook records them, gives one
    image; a row missing a column (an older record) is left out, and a table with nothing to draw gives none."""
    from mlcourse import report
    from mlcourse.headlines import Figure

    specs = report.figure_specs()
    assert {nb for nb, _ in specs} >= {"02_tuning", "05_compression", "06_distributed_training",
                                      "07_distillation_ensembles"}
    rec = {}
    for nb, spec in specs:
        cols = [spec.x, spec.y, *spec.series]
        good = [{spec.label: f"row {i}", **{c: 1.0 + i for c in cols if c}} for i in range(3)]
        rec.setdefault(nb, {})[spec.key] = good + [{spec.label: "old shape"}]
        assert len(spec.points(rec[nb][spec.key])) == 3, spec
    runs = [{"notebook": "02_tuning", "seconds": 90, "status": "ok"}, {"notebook": "05_compression", "seconds": 30,
                                                                      "status": "failed"}]
    made = report.figures(rec, runs, tmp_path)
    assert [c for c, _ in made] == [report.RUN_TIMES.caption] + [s.caption for _, s in specs]
    assert all(p.is_file() and p.stat().st_size > 2000 for _, p in made)
    assert report.figures({"02_tuning": {specs[0][1].key: [{"tuner": "x"}]}}, [], tmp_path / "none") == []
    with pytest.raises(ValueError, match="kind"):
        Figure("k", "f.png", "c", "t", "pie")


def test_publish_add_merges_a_run_into_the_reference_and_keeps_the_others(built, tmp_path):
    """`mlcourse report publish BUILD --add`: the build's notebooks replace theirs in the reference, every other
    notebook stays, the added runs say where they ran, and a refused add leaves the reference as it was."""
    out, _ = built

    def full_build(folder, nb, seconds, commit):
        folder.mkdir()
        (folder / "results").mkdir()
        (folder / "results" / f"{nb}.json").write_text(json.dumps(RESULTS.get(nb, {"x": 1})))
        (folder / "environment.json").write_text(json.dumps({"course version": commit, "cpu": "Test CPU",
                                                            "cpu features": "avx2"}))
        executed = tmp_path / f"{folder.name}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"ran {commit}")]), executed)
        runs = [{"notebook": nb, "status": "ok", "seconds": seconds, "error": "", "size": "full",
                 "output": str(executed)}]
        report.write(runs, folder / "results", folder, "full")
        (folder / "runs.json").write_text(json.dumps(runs))
        return folder

    dest = report.publish(full_build(tmp_path / "first", "02_tuning", 100.0, "commit aaa"), tmp_path / "ref")
    with pytest.raises(FileNotFoundError, match="no published report to add to"):
        report.publish(tmp_path / "first", tmp_path / "elsewhere", add=True)
    report.publish(full_build(tmp_path / "second", "00_workflow", 60.0, "commit bbb"), dest, add=True)
    runs = json.loads((dest / "runs.json").read_text())
    assert [r["notebook"] for r in runs] == ["00_workflow", "02_tuning"]  # course order
    assert "commit bbb on Test CPU; avx2" in runs[0]["note"] and "note" not in runs[1]
    assert all(r["output"] == f"notebooks/{r['notebook']}.html" and (dest / r["output"]).is_file() for r in runs)
    assert {p.name for p in (dest / "results").iterdir()} == {"00_workflow.json", "02_tuning.json"}
    assert "ran commit aaa" in (dest / "notebooks" / "02_tuning.html").read_text()
    page = (dest / "report.md").read_text()
    assert "00_workflow" in page and "02_tuning" in page and "notebooks/00_workflow.html" in page
    # a run of a notebook again replaces only that notebook; a build without its HTML is refused, dest unchanged
    report.publish(full_build(tmp_path / "third", "02_tuning", 90.0, "commit ccc"), dest, add=True)
    assert "ran commit ccc" in (dest / "notebooks" / "02_tuning.html").read_text()
    assert [r["seconds"] for r in json.loads((dest / "runs.json").read_text())] == [60.0, 90.0]
    (tmp_path / "third" / "notebooks" / "02_tuning.html").unlink()
    before = (dest / "runs.json").read_text()
    assert report.main(["publish", str(tmp_path / "third"), "--to", str(dest), "--add"]) == 2
    assert (dest / "runs.json").read_text() == before and not (tmp_path / "ref.new").exists()
