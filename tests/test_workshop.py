"""The workshop kit prepares a room (smoke sizes) and reports what it has."""
from mlcourse import workshop


def test_prepare_smoke_fills_the_cache_and_check_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(tmp_path))
    seconds = workshop.prepare(smoke=True)
    assert set(seconds) == set(workshop.RECIPES)
    from mlcourse import cache

    entries = cache.entries(tmp_path)
    names = {p.name.rsplit("-", 1)[0] for p in entries}
    # one entry family per slow model of 04, 06, 07 and 08 (the week modules' warm_cache decide which)
    assert {"compression-baseline", "teacher", "deployment", "runtimes-tuned", "runtimes-conv_heavy"} <= names
    info = workshop.check()
    assert info["tensorflow"] and f"{len(entries)} in" in info["cached models"]
    assert "--port=9999" in workshop.lab_command(9999) and "--no-browser" in workshop.lab_command()
