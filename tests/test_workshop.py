"""The workshop kit prepares a room (smoke sizes) and reports what it has."""
import json

from mlcourse import workshop


def test_prepare_smoke_fills_the_cache_and_check_reports_it(prepared_room, monkeypatch):
    # the room conftest's fixture prepared with workshop.prepare(size="smoke"), shared with test_run_all
    monkeypatch.setenv("MLCOURSE_CACHE_DIR", str(prepared_room))
    seconds = json.loads((prepared_room / "seconds.json").read_text())
    assert set(seconds) == set(workshop.RECIPES) and all(s > 0 for s in seconds.values())
    from mlcourse import cache

    entries = cache.entries(prepared_room)
    names = {p.name.rsplit("-", 1)[0] for p in entries}
    # one entry family per slow model of 05, 07, 08 and 09 (the week modules' warm_cache decide which)
    assert {"compression-baseline", "teacher", "deployment", "runtimes-tuned", "runtimes-conv_heavy"} <= names
    info = workshop.check()
    assert info["tensorflow"] and f"{len(entries)} in" in info["cached models"]
    assert "--port=9999" in workshop.lab_command(9999) and "--no-browser" in workshop.lab_command()


def test_a_second_lab_uses_the_next_free_port_and_says_so_before_printing_its_link(monkeypatch, capsys):
    import socket

    from mlcourse.processes import free_port

    with socket.socket() as busy:  # the first `make lab`
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        port = busy.getsockname()[1]
        started = []
        monkeypatch.setattr(workshop.os, "execv", lambda exe, cmd: started.append(cmd))
        workshop.lab(port, "127.0.0.1")
    out = capsys.readouterr().out
    used = int(next(a for a in started[0] if a.startswith("--port=")).split("=")[1])
    assert used != port and f"port {port} is in use" in out and f"using {used}" in out
    assert f"http://127.0.0.1:{used}/lab/tree/" in out and f":{port}/" not in out
    assert out.index("in use") < out.index("Open the course")


def test_port_to_use_names_the_range_when_all_are_taken(monkeypatch):
    import pytest

    monkeypatch.setattr(workshop, "_port_free", lambda p, ip: False)
    with pytest.raises(ValueError, match="8888-8890 .* --port"):
        workshop.port_to_use(8888, tries=3)


def test_seed_work_dir_copies_the_prepared_searches_and_never_touches_what_a_learner_has(tmp_path):
    prepared, mine = tmp_path / "prepared", tmp_path / "mine"
    for project in ("tuning/random", "tuning/hyperband", "nas/evolution"):
        (prepared / project).mkdir(parents=True)
        (prepared / project / "oracle.json").write_text('{"prepared": true}')
    (mine / "tuning" / "random").mkdir(parents=True)
    (mine / "tuning" / "random" / "oracle.json").write_text('{"mine": true}')
    copied = workshop.seed_work_dir(prepared, mine)
    assert sorted(copied) == ["nas", "tuning/hyperband"]
    assert (mine / "tuning" / "random" / "oracle.json").read_text() == '{"mine": true}'  # the learner's own
    assert not (mine / "tuning" / "random" / "trial_0").exists()
    assert (mine / "tuning" / "hyperband" / "oracle.json").read_text() == '{"prepared": true}'
    assert workshop.seed_work_dir(prepared, mine) == []  # a second start copies nothing
    assert workshop.seed_work_dir(tmp_path / "absent", mine) == []
