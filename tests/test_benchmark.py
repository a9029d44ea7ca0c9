"""The timing benchmark: a build's minutes against the size's budget, and its verdicts against the full run's."""
import json

from mlcourse import benchmark


def _build(tmp_path, name, runs, recorded):
    build = tmp_path / name
    (build / "results").mkdir(parents=True)
    (build / "runs.json").write_text(json.dumps(runs))
    for nb, values in recorded.items():
        (build / "results" / f"{nb}.json").write_text(json.dumps(values))
    return build


LESSON = {"02_tuning": {"tuners": [{"tuner": "hyperband", "beats the baseline": True},
                                   {"tuner": "random", "beats the baseline": False}],
                        "what tuning bought": "random search was slower; the interval excludes 0"},
          "05_compression": {"targets": [{"target": "int8 size", "met": True}], "latency": "too close to call"}}
FULL = {"02_tuning": {"tuners": [{"tuner": "random", "beats the baseline": True},  # rows in another order
                                 {"tuner": "hyperband", "beats the baseline": True}],
                      "what tuning bought": "random search was slower; the interval excludes 0"},
        "05_compression": {"targets": [{"target": "int8 size", "met": True}], "latency": "faster",
                           "only in the full run": False}}


def test_verdicts_are_true_false_and_verdict_words_with_rows_named_by_their_text():
    found = benchmark.verdicts(LESSON["02_tuning"])
    assert found == {("tuners", "hyperband", "beats the baseline"): "yes",
                     ("tuners", "random", "beats the baseline"): "no",
                     ("what tuning bought",): "slower / excludes 0"}
    assert benchmark.verdicts({"accuracy": 0.91, "note": "measured on 2 cores"}) == {}  # measurements are not


def test_the_table_flags_the_budget_and_lists_each_verdict_that_differs(tmp_path):
    runs = [{"notebook": "02_tuning", "size": "lesson", "status": "ok", "seconds": 540.0},
            {"notebook": "05_compression", "size": "lesson", "status": "ok", "seconds": 720.0}]
    build = _build(tmp_path, "bench-lesson", runs, LESSON)
    reference = _build(tmp_path, "reference", [], FULL)
    text = benchmark.table(build, reference)
    assert "| 02_tuning | ok | 9.0 | 10 | yes | 2 of 3 |" in text
    assert "| 05_compression | ok | 12.0 | 10 | **no** | 1 of 2 |" in text
    assert "| **course** | | 21.0 | 60 | yes | 3 of 5 |" in text
    assert "- 02_tuning: tuners > random > beats the baseline: no here, yes in the full run" in text
    assert "- 05_compression: latency: too close to call here, faster in the full run" in text
    same = benchmark.table(reference.parent / "bench-lesson", build)
    assert "No verdict differs" in same


def test_write_instructor_fills_one_column_and_names_the_machine(tmp_path):
    md = tmp_path / "INSTRUCTOR.md"
    md.write_text("# x\n\n| notebook | full run | lesson | lesson, prepared room | smoke | where |\n"
                  "|---|---|---|---|---|---|\n"
                  "| 02_tuning | 82.7 min | not measured yet | not measured yet | 91 s | tuners |\n"
                  "| 09_runtimes | 13.9 min | 63 s | not measured yet | 28 s | runtimes |\n\nafter\n")
    build = _build(tmp_path, "bench-lesson", [{"notebook": "02_tuning", "size": "lesson", "status": "ok",
                                               "seconds": 540.0}], {})
    assert benchmark.write_instructor(build, "lesson", md) == 1
    text = md.read_text()
    assert "| 02_tuning | 82.7 min | 9.0 min | not measured yet | 91 s | tuners |" in text
    assert "Measured times (lesson): `python -m mlcourse.benchmark` on " in text and text.endswith("after\n")
    lines = text.splitlines()  # below the whole table (not after the row it measured), set apart by blank lines
    at = next(i for i, ln in enumerate(lines) if ln.startswith("Measured times"))
    assert lines[at - 2].startswith("| 09_runtimes") and lines[at - 1] == lines[at + 1] == "", text
    benchmark.write_instructor(build, "lesson", md)  # again: one machine line, not two, and the same page
    assert md.read_text() == text
