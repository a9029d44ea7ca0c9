"""The week registry is the one place a week is written: every notebook has a record and every record a
notebook, a module and checkers; a dummy week added to the registry alone shows up in the catalogue, the
workshop kit, the checkers' index and the landing notebook."""
import importlib
import shutil

import nbformat
import pytest

from mlcourse import weeks
from mlcourse.session import ROOT


def test_every_notebook_has_one_record_and_every_record_its_files():
    on_disk = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    assert weeks.stems() == on_disk, "solutions/ and mlcourse.weeks.WEEKS must list the same notebooks, in order"
    for w in weeks.WEEKS:
        assert (ROOT / "mlcourse" / f"{w.module}.py").is_file(), f"{w.stem}: no module mlcourse/{w.module}.py"
        assert (ROOT / "mlcourse" / "checks" / f"{w.checks}.py").is_file(), f"{w.stem}: no checkers {w.checks}"
        assert w.title and w.outcome
        if w.prepared:
            assert hasattr(importlib.import_module(f"mlcourse.{w.module}"), "warm_cache"), w.stem


@pytest.fixture
def dummy_week(tmp_path, monkeypatch):
    """A course copy with one more notebook, registered in mlcourse.weeks only; modules re-read the registry."""
    for name in ("solutions", "notebooks"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("SIZE = None\nSEED = 0", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("def f():\n    # Exercise 11.1: a dummy exercise\n    ### BEGIN SOLUTION\n"
                                          "    return 1\n    ### END SOLUTION")]
    nbformat.write(nb, tmp_path / "solutions" / "11_dummy.ipynb")
    dummy = weeks.Week("11_dummy", "A dummy week", "see that one record is enough", module="serving",
                       checks="serving", prepared="model")
    monkeypatch.setattr(weeks, "WEEKS", weeks.WEEKS + (dummy,))
    from mlcourse import catalog, checks, workshop

    for module in (catalog, workshop, checks):
        importlib.reload(module)
    yield tmp_path
    monkeypatch.undo()
    for module in (catalog, workshop, checks):
        importlib.reload(module)


def test_a_week_added_to_the_registry_alone_is_seen_everywhere(dummy_week):
    from mlcourse import catalog, checks, workshop

    assert catalog.COURSE["11_dummy"] == ("A dummy week", "see that one record is enough")
    assert [r["name"] for r in catalog.rows(dummy_week)][-1] == "11_dummy"
    assert catalog.exercises("11_dummy", dummy_week) == [("11.1", "a dummy exercise")]
    landing = "\n".join(c.source for c in catalog.index_notebook(dummy_week).cells)
    assert "A dummy week" in landing and "Exercise 9.1" in landing
    assert workshop.RECIPES["11_dummy model"] == "serving"
    assert checks._WEEKS[-1] == "serving"


def test_one_week_one_name():
    """A week's checkers are named after its module (``mlcourse/checks/<module>.py``, tested in
    ``tests/test_checks_<module>.py``): one name per week to search for, whatever its notebook is called."""
    for w in weeks.WEEKS:
        assert w.checks == w.module, f"{w.stem}: checkers {w.checks!r} but module {w.module!r}"
        assert (ROOT / "tests" / f"test_checks_{w.checks}.py").is_file(), f"{w.stem}: no tests of its checkers"
