"""The workshop kit prepares a room (smoke sizes) and reports what it has."""
from mlcourse import workshop


def test_prepare_smoke_fills_the_cache_and_check_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    seconds = workshop.prepare(smoke=True)
    assert set(seconds) == set(workshop.RECIPES)
    names = {p.name.rsplit("-", 1)[0] for p in tmp_path.glob("*/spec.json") for p in [p.parent]}
    assert names == {"compression-baseline", "teacher", "deployment"}
    info = workshop.check()
    assert info["tensorflow"] and "3 in" in info["cached models"]
    assert "--port=9999" in workshop.lab_command(9999) and "--no-browser" in workshop.lab_command()
