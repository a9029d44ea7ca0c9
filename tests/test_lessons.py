"""From the code back to the lesson (d2l's "Defined in"): each public name a notebook uses names, in its
docstring, the notebook section that teaches it; `python -m mlcourse.lessons write` keeps the lines true."""
import nbformat
import pytest

from mlcourse import lessons


def test_every_lesson_line_is_present_and_true():
    problems = lessons.stale()
    assert not problems, ("docstring lesson lines out of date (run `python -m mlcourse.lessons write`):\n"
                          + "\n".join(problems[:20]))


def test_the_links_resolve_both_ways():
    """Each line names a notebook that uses the name, under a heading that notebook has; and each name that a
    notebook's code calls through a module it imported from mlcourse has a line."""
    from mlcourse.notebooks import solution_notebooks

    headings = {p.stem: {h for h, _ in lessons.sections(p)} for p in solution_notebooks()}
    used = {p.stem: lessons.uses(p) for p in solution_notebooks()}
    lines = lessons.expected()
    assert len(lines) >= 250, f"only {len(lines)} public names carry a lesson line"
    for module, name, obj in lessons.public_names():
        line = lessons._current(obj)
        if not line:
            assert not any((module, name) in u for u in used.values()), f"mlcourse.{module}.{name} lacks its lesson"
            continue
        stem, _, heading = line[len(lessons.MARK):].partition(" § ")
        heading = heading.split("; also used in")[0]
        assert stem in headings, f"{module}.{name}: {line!r} names no notebook"
        assert heading.rstrip(".") in {h.rstrip(".") for h in headings[stem]}, (
            f"{module}.{name}: {stem} has no heading {heading!r}")


def _notebook(tmp_path, cells):
    path = tmp_path / "00_demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_the_section_is_that_of_the_first_code_use_else_of_the_first_mention(tmp_path):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    path = _notebook(tmp_path, [
        md("# 00 · Demo\nWe will use `compression.prune` and `mlcourse.litert.interpreter` later."),
        code("from mlcourse import compression as cx, data\nx = data.load_fashion_mnist()"),
        md("## 1 · Pruning\ntext"),
        code("cx.prune(model, x, y)\nnot_mlcourse.prune(1)"),
        md("intro\n## 2 · Later\n### 2.1 Deeper"),
        code("cx.prune(again)"),
    ])
    got = lessons.uses(path)
    assert got[("compression", "prune")] == "1 · Pruning"  # the code use wins over the earlier mention
    assert got[("litert", "interpreter")] == "00 · Demo"  # only mentioned: where it is mentioned
    assert got[("data", "load_fashion_mnist")] == "00 · Demo"
    assert not any(k[1] == "prune" and k[0] != "compression" for k in got)
    assert [h for h, _ in lessons.sections(path)][-1] == "2.1 Deeper"


def test_the_rewriter_adds_replaces_and_removes_a_line_and_keeps_the_rest():
    src = ('def f(x):\n    """One line."""\n    return x\n\n\nclass C:\n    """Two\n    lines.\n\n'
           '    Lesson: old § place.\n    """\n')
    once = lessons._rewrite_docstring(src, "f", "Lesson: 01_training § 2 · Optimizers.")
    assert '"""One line.\n\n    Lesson: 01_training § 2 · Optimizers.\n    """\n    return x' in once
    assert lessons._rewrite_docstring(once, "f", "Lesson: 01_training § 2 · Optimizers.") == once
    assert lessons._rewrite_docstring(once, "f", "") == src
    moved = lessons._rewrite_docstring(src, "C", "Lesson: 05_compression § 6 · Pruning.")
    assert "old § place" not in moved and "    Lesson: 05_compression § 6 · Pruning.\n    \"\"\"" in moved
    assert "lines.\n\n    Lesson" in moved
    long = lessons._rewrite_docstring(src, "f", "Lesson: 05_compression § " + "a very long heading " * 8 + ".")
    assert max(len(line) for line in long.splitlines()) <= 120
    with pytest.raises(ValueError, match="top level"):
        lessons._rewrite_docstring(src, "g", "Lesson: x § y.")


def test_the_home_week_is_named_first():
    from mlcourse import checks, compression, litert

    assert lessons.home(compression.prune) == "05_compression"
    assert lessons.home(checks.check_int8_converter) == "05_compression"
    assert lessons.home(litert.to_tflite) is None  # ground floor: the first notebook that uses it
    line = lessons.expected()[id(litert.to_tflite)]
    assert line.startswith("Lesson: 02_tuning") and "also used in 05_compression" in line
