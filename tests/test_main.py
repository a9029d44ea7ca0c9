"""The one ``mlcourse`` command: subcommands documented in --help, each delegating to its module's main."""
import subprocess
import sys

import pytest

from mlcourse import __main__ as cli

SUBCOMMANDS = ("course", "notebooks", "workshop", "compression", "catalog", "runtimes")


def test_help_lists_every_subcommand_with_what_it_does():
    out = subprocess.run([sys.executable, "-m", "mlcourse", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    for name in SUBCOMMANDS:
        described = " ".join(cli.SUBCOMMANDS[name][1].split())
        assert f" {name} {described}" in text, f"{name} is not described in --help:\n{out.stdout}"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_delegates_its_arguments(monkeypatch, name):
    import importlib

    module = importlib.import_module(f"mlcourse.{name}")
    seen = []
    monkeypatch.setattr(module, "main", lambda argv=None: seen.append(argv) or 7)
    assert cli.main([name, "--flag", "x", "--help"]) == 7
    assert seen == [["--flag", "x", "--help"]]


def test_subcommand_help_is_the_module_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["course", "--help"])
    assert exc.value.code == 0 and "--only" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["nope"]])
def test_no_or_unknown_subcommand_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and "course" in capsys.readouterr().err


def test_python_dash_m_module_still_works():
    out = subprocess.run([sys.executable, "-m", "mlcourse.notebooks", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "generate" in out.stdout
