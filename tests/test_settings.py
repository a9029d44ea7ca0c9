"""The settings object: the run's size and every MLCOURSE_* variable, read strictly, defaults in one place."""
import pytest

from mlcourse import session, settings


@pytest.mark.parametrize("value, size", [("smoke", "smoke"), ("LESSON", "lesson"), (" full ", "full"), ("", "lesson")])
def test_the_size_comes_from_mlcourse_size_and_defaults_to_lesson(monkeypatch, value, size):
    monkeypatch.setenv("MLCOURSE_SIZE", value)
    assert settings.size() == size and settings.current().size == size
    assert settings.size("full") == "full"  # a notebook's SIZE parameter wins over the environment


def test_a_size_that_is_not_one_is_refused_with_the_three_named(monkeypatch):
    monkeypatch.setenv("MLCOURSE_SIZE", "tiny")
    with pytest.raises(ValueError, match="MLCOURSE_SIZE='tiny' is not a size: use one of smoke, lesson, full"):
        settings.size()
    with pytest.raises(ValueError, match="SIZE='medium'"):
        settings.size("medium")


def test_the_old_smoke_variable_is_refused_with_what_replaced_it(monkeypatch):
    monkeypatch.setenv("MLCOURSE_SMOKE", "1")
    with pytest.raises(ValueError, match="MLCOURSE_SIZE=smoke"):
        settings.size()


@pytest.mark.parametrize("value, flag", [("1", True), ("true", True), ("YES", True), ("on", True),
                                         ("0", False), ("false", False), ("no", False), ("", False)])
def test_on_off_variables_understand_the_usual_spellings(monkeypatch, value, flag):
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", value)
    assert settings.current().allow_download is flag


def test_on_off_variables_refuse_what_they_do_not_understand(monkeypatch):
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", "ture")
    with pytest.raises(ValueError, match="MLCOURSE_ALLOW_DOWNLOAD='ture' is not understood"):
        settings.current()


def test_every_field_has_one_documented_variable_read_one_at_a_time(monkeypatch, tmp_path):
    table = settings.defaults()
    names = [f.name for f in settings.Settings.__dataclass_fields__.values()]
    assert sorted(table) == sorted(names) and all(v[0].startswith("MLCOURSE_") and v[2] for v in table.values())
    monkeypatch.setenv("MLCOURSE_SIZE", "full")
    monkeypatch.setenv("MLCOURSE_WORK_DIR", str(tmp_path))
    now = settings.current()
    assert now.size == "full" and now.work_dir == tmp_path and now.cache_shared is None
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", "ture")  # a typo in one variable never breaks reading another
    assert settings.get("work_dir") == tmp_path
    with pytest.raises(KeyError, match="no setting 'cache'"):
        settings.get("cache")


def test_pick_sizes_takes_the_size_then_what_the_notebook_gave():
    table = {"smoke": {"n": 1, "e": 1}, "lesson": {"n": 10, "e": 2}, "full": {"n": 100, "e": 4}}
    assert settings.pick_sizes(table, "lesson", {"n": None, "e": 3}) == {"n": 10, "e": 3}
    with pytest.raises(ValueError, match=r"unknown size\(s\) \['x'\]"):
        settings.pick_sizes(table, "full", {"x": 1})
    with pytest.raises(ValueError, match="no \\['lesson'\\] entry"):
        settings.pick_sizes({"smoke": {"n": 1}, "full": {"n": 2}}, "full")
    with pytest.raises(ValueError, match="name different parameters"):
        settings.pick_sizes({"smoke": {"n": 1}, "lesson": {"m": 1}, "full": {"n": 2}}, "full")


def test_work_dir_has_one_tree_per_size(monkeypatch, tmp_path):
    monkeypatch.setenv("MLCOURSE_WORK_DIR", str(tmp_path))
    assert session.work_dir("lesson") == tmp_path / "lesson" and session.work_dir("full", base="x").name == "full"
    with pytest.raises(TypeError, match="not True/False"):
        session.work_dir(True)


def test_setup_reports_the_size(monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_SIZE", "smoke")
    info = session.setup(seed=3, tensorflow=False)
    assert info.size == "smoke" and info.smoke and "SMOKE size" in capsys.readouterr().out
    assert not session.setup(seed=3, size="lesson", tensorflow=False).smoke
