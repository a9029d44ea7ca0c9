"""Every student notebook runs top to bottom through papermill in smoke mode; the only errors allowed are
the exercise stubs (NotImplementedError in cells tagged raises-exception). Run times are printed and kept
in build/smoke-durations.json; a run over its budget fails (a hang guard, not a benchmark). They run in a
room prepared as `make workshop` prepares it, and the notebooks whose slow models it caches must load them,
not train them again."""
import fcntl
import json
import os
import time

import nbformat
import papermill as pm
import pytest

from mlcourse import notebooks

BUDGET_S = {"default": 600}  # a hang guard on a shared 2-core machine, not a benchmark
STUDENT = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# notebooks whose slow models `make workshop` trains ahead of time: in a prepared room they only load them
PREPARED = {"04_compression", "06_distillation_ensembles", "07_deployment", "08_runtimes"}


@pytest.fixture(scope="session")
def prepared_room(tmp_path_factory):
    """A room prepared as `make workshop` does (at smoke sizes): a model cache the notebooks must hit. Prepared
    once per test run: under pytest-xdist the workers share it (the first prepares it, the others wait)."""
    from mlcourse import workshop

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    room = base / "prepared-room"
    with open(base / "prepared-room.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (room / "READY").exists():
            room.mkdir(exist_ok=True)
            before = os.environ.get("MLCOURSE_CACHE_DIR")
            os.environ["MLCOURSE_CACHE_DIR"] = str(room)
            try:
                workshop.prepare(size="smoke")
            finally:
                if before is None:
                    os.environ.pop("MLCOURSE_CACHE_DIR", None)
                else:
                    os.environ["MLCOURSE_CACHE_DIR"] = before
            (room / "READY").write_text("prepared\n")
    return room


@pytest.mark.parametrize("path", STUDENT, ids=[p.stem for p in STUDENT])
def test_student_notebook_runs_with_only_stub_errors(path, tmp_path, monkeypatch, prepared_room):
    monkeypatch.setenv("MLCOURSE_WORK_DIR", str(tmp_path / "runs"))  # the kernel inherits it: no resuming
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(prepared_room))
    out = tmp_path / path.name
    budget = BUDGET_S.get(path.stem, BUDGET_S["default"])
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(out), cwd=str(path.parent), kernel_name="python3",
                            progress_bar=False, execution_timeout=budget)
    except pm.PapermillExecutionError:
        pass  # expected: the stubs raise; papermill saved the notebook first, checked below
    elapsed = time.perf_counter() - t0
    nb = nbformat.read(out, as_version=4)
    stubs = [c for c in nb.cells if "raises-exception" in c.metadata.get("tags", [])]
    assert stubs, "a student notebook without exercises"
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if "raises-exception" in cell.metadata.get("tags", []):
            assert errors and errors[0].ename == "NotImplementedError", f"cell {i}: the stub did not raise"
            assert "Exercise" in errors[0].evalue
        else:
            assert not errors, f"cell {i} failed: {errors[0].ename}: {errors[0].evalue}"
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    if path.stem in PREPARED:  # the room was prepared: every slow model comes from the cache, none is trained
        assert "loaded from the workshop cache" in text, f"{path.stem} did not use the models `make workshop` cached"
        assert "cached in" not in text, f"{path.stem} trained a model that `make workshop` should have cached"
    report = notebooks.ROOT / "build" / "smoke-durations.json"
    report.parent.mkdir(exist_ok=True)
    with open(report.with_suffix(".lock"), "w") as lock:  # two xdist workers may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        durations = json.loads(report.read_text()) if report.is_file() else {}
        durations[path.stem] = round(elapsed, 1)
        report.write_text(json.dumps(durations, indent=2))
    print(f"{path.stem}: {elapsed:.1f} s in smoke mode (budget {budget} s)")
    assert elapsed < budget, f"{path.stem} took {elapsed:.0f} s in smoke mode, over its {budget} s budget"
