"""The course command: arguments checked before anything moves, unique aside-names, per-cell progress,
notebooks saved as they run, failures with their cell and traceback, figures kept."""
import json
import os

import nbformat
import pytest

from mlcourse import course


def _fake_run(path, out_dir, smoke, timeout=None, expected=None):
    return {"notebook": path.stem, "status": "ok", "seconds": 0.0, "error": "", "output": ""}


def _build(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "report.md").write_text("my earlier results")
    return out


def test_only_with_no_names_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    out = _build(tmp_path)
    with pytest.raises(SystemExit) as exc:
        course.main(["--only", "--out", str(out)])
    assert exc.value.code == 2 and "--only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least one"):
        course.run_course(out, size="smoke", only=[])
    assert (out / "report.md").read_text() == "my earlier results" and not list(out.glob("previous-*"))


def test_unknown_notebook_is_an_error_before_the_build_is_moved(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    out = _build(tmp_path)
    with pytest.raises(SystemExit, match="Unknown notebook"):
        course.main(["--only", "99_nope", "--out", str(out)])
    assert (out / "report.md").read_text() == "my earlier results" and not list(out.glob("previous-*"))


def test_two_runs_in_one_second_keep_both_previous_builds(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    monkeypatch.setattr(course.report, "write", lambda runs, res, out, size: out / "report.md")
    out = _build(tmp_path)
    for _ in range(3):
        course.run_course(out, size="smoke", only=["00_workflow"])
        (out / "report.md").write_text("a run")
    kept = sorted(out.glob("previous-*"))
    assert len(kept) == 3 and (kept[0] / "report.md").read_text() == "my earlier results"


def test_expected_times_come_from_instructor_md():
    full, smoke = course.expected_seconds("full"), course.expected_seconds("smoke")
    assert full["02_tuning"] > 60 * 5 and 0 < smoke["02_tuning"] < full["02_tuning"]
    assert set(full) >= {"00_workflow", "08_deployment"}


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_run_notebook_shows_progress_saves_as_it_goes_and_keeps_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as `make course` sets it: must not reach the kernel
    out = tmp_path / "out"
    nb = _notebook(tmp_path / "00_tiny.ipynb", "SIZE = None", "print('first cell ran')",
                   "import json\n"
                   f"saved = json.load(open({str(out / '00_tiny.ipynb')!r}))\n"
                   "assert 'first cell ran' in json.dumps(saved), 'not saved as it goes'",
                   "import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.title('t')\nplt.show()")
    book = nbformat.read(nb, as_version=4)      # a markdown cell and an empty code cell are not counted
    book.cells[2:2] = [nbformat.v4.new_markdown_cell("# text"), nbformat.v4.new_code_cell("")]
    nbformat.write(book, nb)
    run = course.run_notebook(nb, out, size="smoke", timeout=120, expected=60)
    assert run["status"] == "ok", run
    text = capsys.readouterr().out
    assert "00_tiny: cell 5/5" in text and "cell 6/" not in text    # 4 code cells + papermill's parameters
    assert "expected about 1.0 min" in text
    executed = nbformat.read(run["output"], as_version=4)
    assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))


def test_a_failed_notebook_keeps_its_cell_and_traceback(tmp_path):
    nb = _notebook(tmp_path / "00_bad.ipynb", "SIZE = None", "x = 1",
                   "def broken():\n    return 1 / 0\n\nbroken()", "print('never')")
    run = course.run_notebook(nb, tmp_path / "out", size="smoke", timeout=120)
    assert run["status"] == "failed" and run["error"].startswith("ZeroDivisionError")
    assert run["source"].startswith("def broken():") and run["cell"] == 3   # after papermill's injected cell
    assert "1 / 0" in run["traceback"] and "\x1b[" not in run["traceback"]
    json.dumps(run)


def test_course_never_overwrites_a_previous_build_and_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    out = _build(tmp_path)
    runs, written = course.run_course(out, size="smoke", only=["00_workflow"])
    kept = list(out.glob("previous-*/report.md"))
    assert len(kept) == 1 and kept[0].read_text() == "my earlier results"
    assert written.is_file() and (out / "report.html").is_file() and runs[0]["notebook"] == "00_workflow"
    assert json.loads((out / "runs.json").read_text()) == runs


def test_a_relative_out_reaches_the_kernels_as_an_absolute_path(tmp_path, monkeypatch):
    """Kernels run in solutions/: a relative results folder would land in solutions/build/... (the smoke report
    then had no results at all)."""
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    monkeypatch.setenv("MLCOURSE_RESULTS_DIR", "unset")
    monkeypatch.chdir(tmp_path)
    course.run_course("rel/build", size="smoke", only=["00_workflow"])
    results = os.environ["MLCOURSE_RESULTS_DIR"]
    assert os.path.isabs(results) and results == str(tmp_path / "rel" / "build" / "results")


def test_out_that_is_a_file_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course, "run_notebook", _fake_run)
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert course.main(["--size", "smoke", "--only", "00_workflow", "--out", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and f.read_text() == "mine"


def test_ctrl_c_still_writes_the_report_of_what_ran_and_says_how_to_rewrite_it(tmp_path, monkeypatch, capsys):
    def run(path, out_dir, smoke, timeout=None, expected=None):
        if path.stem != "00_workflow":
            raise KeyboardInterrupt
        return _fake_run(path, out_dir, smoke)

    monkeypatch.setattr(course, "run_notebook", run)
    monkeypatch.setenv("MLCOURSE_RESULTS_DIR", "unset")
    out = tmp_path / "build"
    assert course.main(["--size", "smoke", "--only", "00_workflow", "02_tuning", "--out", str(out)]) == 130
    runs = json.loads((out / "runs.json").read_text())
    assert [r["status"] for r in runs] == ["ok", "interrupted"]
    assert (out / "report.md").is_file() and "interrupted" in (out / "report.md").read_text()
    said = capsys.readouterr().out
    assert "interrupted:" in said and f"mlcourse report rewrite {out}" in said


def test_a_smoke_run_into_a_relative_folder_reports_its_headlines(tmp_path, monkeypatch):
    """End to end, as `make smoke` runs it (`--out build/smoke`, relative): the kernel runs in the notebooks'
    folder, records a headline result, and the report shows it (before the fix, the results landed in
    <notebooks>/build/smoke/results and the smoke report had no Headlines section)."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    nb = _notebook(folder / "00_workflow.ipynb", "SIZE = None",
                   "from mlcourse import results\n"
                   "rows = [{'positive_rate': 0.5, 'roc_auc': 0.9, 'pr_auc': 0.88},\n"
                   "        {'positive_rate': 0.01, 'roc_auc': 0.9, 'pr_auc': 0.2}]\n"
                   "results.record('ROC-AUC vs PR-AUC as positives get rarer', rows, notebook='00_workflow')")
    monkeypatch.setattr(course, "select_notebooks", lambda only=None: [nb])
    monkeypatch.setenv("MLCOURSE_RESULTS_DIR", "unset")
    monkeypatch.chdir(tmp_path)
    runs, md = course.run_course("build/smoke", size="smoke", timeout=120, expected={})
    assert runs[0]["status"] == "ok", runs
    assert (tmp_path / "build" / "smoke" / "results" / "00_workflow.json").is_file()
    assert not (folder / "build").exists()
    text = md.read_text()
    assert "## Headlines" in text and "ROC-AUC vs PR-AUC" in text


def test_the_kernels_own_log_lines_stay_off_the_console(tmp_path, capfd):
    """TensorFlow's start-up lines, a CUDA probe's "failed call to cuInit" and ipykernel's TCP warning looked
    like failures in a passing run: they go to the notebook's kernel log."""
    nb = _notebook(tmp_path / "00_noisy.ipynb", "SIZE = None",
                   "import os\nos.write(2, b'E0000 failed call to cuInit: CUDA error\\n')\nprint('cell output')")
    run = course.run_notebook(nb, tmp_path / "out", size="smoke", timeout=120)
    assert run["status"] == "ok", run
    console = capfd.readouterr()
    assert "cuInit" not in console.err + console.out and "TCP without encryption" not in console.err
    assert "cuInit" in open(run["kernel_log"]).read()
    assert "cell output" in json.dumps(nbformat.read(run["output"], as_version=4).cells[-1].outputs)
