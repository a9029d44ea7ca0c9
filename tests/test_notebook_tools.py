"""The student-copy generator, the results recorder and the course report."""
import json

import nbformat
import pytest

from mlcourse import notebooks, report, results


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    for c in nb.cells:
        c.outputs = [nbformat.v4.new_output("stream", text="old output")]
        c.execution_count = 3
    return nb


def test_stub_replaces_region_keeps_indent_and_tags():
    src = ("# Exercise 2.2: the sum\ndef f(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n"
           "    ### END SOLUTION\n\ncheck(f)")
    student = notebooks.make_student(_nb(src, "print(1)"))
    cell = student.cells[0]
    assert "return a + b" not in cell.source
    assert '    raise NotImplementedError("Exercise 2.2: the sum (your code here)")' in cell.source
    assert cell.source.endswith("check(f)") and cell.metadata["tags"] == ["raises-exception"]
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells)
    assert "tags" not in student.cells[1].metadata
    ns = {"check": lambda f: f(1, 2)}
    with pytest.raises(NotImplementedError, match="Exercise 2.2"):
        exec(cell.source, ns)


@pytest.mark.parametrize("src,msg", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
])
def test_malformed_markers_are_errors(src, msg):
    with pytest.raises(notebooks.GeneratorError, match=msg):
        notebooks.make_student(_nb(src), "bad.ipynb")


@pytest.mark.parametrize("line", ["###BEGIN SOLUTION", "### begin solution", "## BEGIN SOLUTION", "# END SOLUTION",
                                  "#### BEGIN SOLUTION", "### BEGIN SOLUTION here", "### END_SOLUTION",
                                  "    ##  End Solution"])
def test_near_miss_markers_are_errors_in_code_cells(line):
    src = f"# Exercise 2.1: x\n### BEGIN SOLUTION\nx = 1\n{line}\nsecret = 2\n### END SOLUTION"
    with pytest.raises(notebooks.GeneratorError, match=r"bad.ipynb, cell 1, line 4: near-miss"):
        notebooks.make_student(_nb("print(0)", src), "bad.ipynb")
    with pytest.raises(notebooks.GeneratorError, match="cell 0"):
        notebooks.make_student(_nb(f"{line}\nsecret = 2"), "bad.ipynb")


@pytest.mark.parametrize("kind", ["markdown", "raw"])
@pytest.mark.parametrize("line", ["### BEGIN SOLUTION", "###BEGIN SOLUTION", "### END SOLUTION"])
def test_markers_outside_code_cells_are_errors(kind, line):
    nb = _nb("print(0)")
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_raw_cell
    nb.cells.append(make(f"Answer:\n{line}\nthe solution"))
    with pytest.raises(notebooks.GeneratorError, match=f"bad.ipynb, cell 1 \\({kind}\\)"):
        notebooks.make_student(nb, "bad.ipynb")


@pytest.mark.parametrize("title", ['say "hi"', "a back\\slash \\n", "braces {x} and {}", "it's", "both ' and \"",
                                   "\u00e9t\u00e9 \U0001f600"])
def test_stub_is_valid_python_for_any_title(title):
    import ast

    src = f"# Exercise 3.1: {title}\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    stub = notebooks.make_student(_nb(src)).cells[0].source
    ast.parse(stub)
    with pytest.raises(NotImplementedError) as exc:
        ns = {}
        exec(stub, ns)
        ns["f"]()
    assert str(exc.value) == f"Exercise 3.1: {title} (your code here)"


def test_generate_and_check(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(_nb("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), src / "00_a.ipynb")
    assert notebooks.generate(src, dst, check=True) == ["00_a.ipynb"]
    assert notebooks.generate(src, dst) == ["00_a.ipynb"]
    assert notebooks.generate(src, dst, check=True) == []
    (dst / "01_orphan.ipynb").write_text("{}")
    assert notebooks.generate(src, dst, check=True) == ["01_orphan.ipynb (no solution notebook)"]


def test_committed_student_notebooks_are_up_to_date():
    stale = notebooks.generate(check=True)
    assert not stale, f"notebooks/ is out of date: run `python -m mlcourse.notebooks generate` ({stale})"


def test_every_solution_notebook_follows_the_conventions():
    paths = notebooks.solution_notebooks()
    assert paths, "no solution notebooks found"
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), \
            f"{path.name}: first code cell must be tagged parameters"
        assert "SIZE" in first_code.source and "SEED" in first_code.source
        assert any(notebooks.BEGIN in c.source for c in nb.cells), f"{path.name} has no exercise"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        for c in nb.cells:
            if c.cell_type == "code" and notebooks.CHECK_MARK not in c.source:
                assert not c.outputs, f"{path.name}: only NBVAL_CHECK_OUTPUT cells keep outputs"
        assert "widgets" not in nb.metadata, f"{path.name}: progress-bar widget state was committed (re-record it)"


def test_results_record_to_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_RESULTS_DIR", str(tmp_path))
    import numpy as np
    import pandas as pd

    results.record("acc", np.float32(0.5), notebook="nbx")
    results.record("table", pd.DataFrame({"a": [1, 2]}), notebook="nbx")
    results.record("nan", float("nan"), notebook="nbx")
    saved = json.loads((tmp_path / "nbx.json").read_text())
    assert saved == {"acc": 0.5, "table": [{"a": 1}, {"a": 2}], "nan": None}
    assert results.recorded("nbx")["acc"] == 0.5
    with pytest.raises(TypeError, match="Cannot record"):
        results.record("obj", object(), notebook="nbx")


def test_report_lists_runs_results_and_references(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "00_x.json").write_text(json.dumps({"acc": 0.91234, "t": [{"m": "a", "v": 1.5}],
                                                            "d": {"before": 0.9, "after": 0.5}}))
    runs = [{"notebook": "00_x", "status": "ok", "seconds": 12.0, "error": "", "output": ""},
            {"notebook": "01_y", "status": "failed", "seconds": 3.0, "error": "ValueError: boom\nmore", "output": ""}]
    text = report.write(runs, tmp_path / "res", tmp_path, size="full").read_text()
    assert "| 00_x | ok | 0.2 min |" in text and "| 01_y | failed | 0.1 min | ValueError: boom |" in text
    assert "**acc**: 0.9123" in text and "| a | 1.5 |" in text and "before = 0.9; after = 0.5" in text
    assert len(report.references()) >= 6
    for ref in report.references():
        assert ref in text


def test_kernels_import_this_checkout(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    notebooks.use_this_checkout()
    notebooks.use_this_checkout()  # idempotent
    import os

    assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(notebooks.ROOT), "/elsewhere"]


def test_report_headlines_and_figures_from_recorded_results(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "02_tuning.json").write_text(json.dumps({
        "baseline vs tuned winner (test set)": [{"model": "baseline (untuned)", "test_accuracy": 0.9, "params": 1},
                                                {"model": "tuned (bayesian)", "test_accuracy": 0.91, "params": 1}],
        "tuner comparison (same space, same epoch budget)": [
            {"tuner": "random", "models tried": 2, "epochs trained": 4, "training time (s)": 10.0,
             "best val accuracy": 0.8}]}))
    (res / "05_compression.json").write_text(json.dumps({"compression table": [
        {"variant": "float32 baseline", "bytes": 4000, "gzipped": 3000, "accuracy": 0.90},
        {"variant": "int8 (per-channel)", "bytes": 1000, "gzipped": 800, "accuracy": 0.899},
        {"variant": "pruned 85% + int8", "bytes": 1000, "gzipped": 300, "accuracy": 0.895}]}))
    (res / "07_distillation_ensembles.json").write_text(json.dumps({"distillation gap closed (mean over seeds)": {
        "gap closed": 0.25, "seeds": 3, "teacher": 0.9, "scratch": 0.8, "distilled": 0.825}}))
    (res / "03_nas.json").write_text(json.dumps({
        "NAS strategies under one budget": [{"strategy": "random", "evaluations": 4, "best val accuracy": 0.7},
                                            {"strategy": "evolution", "evaluations": 4, "best val accuracy": 0.75}],
        "performance estimation: rank agreement and time saved": [
            {"estimator": "full", "spearman vs full": 1.0, "time saved": 0.0},
            {"estimator": "1 epoch", "spearman vs full": 0.8, "time saved": 0.5}]}))
    (res / "08_deployment.json").write_text(json.dumps({
        "deployed model: float32 vs int8 (LiteRT)": [
            {"variant": "float32", "bytes": 4000, "accuracy": 0.9, "latency_ms": 0.2},
            {"variant": "int8", "bytes": 1000, "accuracy": 0.89, "latency_ms": 0.1}],
        "serving benchmark (int8, LiteRT, 1 thread)": [{"batch size": 1, "images/s": 5000.0},
                                                       {"batch size": 64, "images/s": 20000.0}]}))
    runs = [{"notebook": "02_tuning", "status": "ok", "seconds": 60.0, "error": "", "output": ""}]
    text = report.write(runs, res, tmp_path, size="full").read_text()
    assert "evolution: 0.7500 validation accuracy in 4 evaluations (of 2 strategies)" in text
    assert "(Spearman) 0.80, 50% of the time saved" in text
    assert "accuracy 0.8900 vs 0.9000, 4.0x smaller, 0.100 vs 0.200 ms per image; 20,000 images/s at batch 64" in text
    assert "## Headlines, next to the public reference figures" in text
    assert "| tuned model, test accuracy | 0.9100 (tuned (bayesian))" in text
    assert "4,000 B -> 1,000 B (4.00x), -0.10 pp" in text and "(10.0x), -0.50 pp" in text
    assert "25%, mean of 3 seed(s)" in text
    assert "distillation" in text and "tf.data" not in text.split("## Figures")[0]  # no headline without data
    assert "PR-AUC" not in text.split("## Figures")[0]
    for name in ("run_times.png", "tuners.png", "compression.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 1000 and f"figures/{name}" in text


def test_opening_and_saving_a_student_notebook_in_jupyterlab_keeps_it_up_to_date(tmp_path):
    """A save by JupyterLab rewrites the kernel's self-description (language_info, display name, nbformat minor):
    `generate --check` must not call that out of date; a cell the learner ran (outputs) or edited is a change."""
    import json
    import shutil

    from mlcourse.notebooks import NOTEBOOKS, SOLUTIONS, generate

    dst = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, dst)
    assert generate(SOLUTIONS, dst, check=True) == []
    target = dst / "00_workflow.ipynb"
    nb = json.loads(target.read_text())
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.12.9"}
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3"
    nb["nbformat_minor"] = 4
    target.write_text(json.dumps(nb, indent=1))
    assert generate(SOLUTIONS, dst, check=True) == []
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    target.write_text(json.dumps(nb, indent=1))
    assert generate(SOLUTIONS, dst, check=True) == ["00_workflow.ipynb"]
