"""The ground floor's settings: smoke mode is read strictly (a typo never silently runs full size)."""
import pytest

from mlcourse import runtime


@pytest.mark.parametrize("value, smoke", [("1", True), ("true", True), ("YES", True), ("on", True),
                                          ("0", False), ("false", False), ("no", False), ("", False)])
def test_smoke_mode_understands_the_usual_spellings(monkeypatch, value, smoke):
    monkeypatch.setenv("MLCOURSE_SMOKE", value)
    assert runtime.is_smoke() is smoke


def test_smoke_mode_refuses_what_it_does_not_understand(monkeypatch):
    monkeypatch.setenv("MLCOURSE_SMOKE", "ture")
    with pytest.raises(ValueError, match="MLCOURSE_SMOKE='ture' is not understood"):
        runtime.is_smoke()
    monkeypatch.delenv("MLCOURSE_SMOKE")
    assert runtime.is_smoke() is False
