"""The one ``mlcourse`` command (``mlcourse <subcommand> ...`` or ``python -m mlcourse <subcommand> ...``).

Each subcommand hands its arguments to the ``main(argv)`` of its module, so ``mlcourse course --size smoke`` and
``python -m mlcourse.course --size smoke`` are the same command, and ``mlcourse <subcommand> --help`` shows that
module's own options. The internal entry points (the tuning worker, the tf.distribute task) stay
``python -m`` modules: they are started by the course, not by people.
"""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["SUBCOMMANDS", "main"]

#: subcommand -> (module, what it does); the module is imported only when its subcommand runs.
SUBCOMMANDS = {
    "course": ("mlcourse.course", "run every solution notebook (or --only some), with progress, and write the "
               "report into build/ (--size lesson | smoke: smaller runs)"),
    "benchmark": ("mlcourse.benchmark", "time every notebook at a size (--size lesson) against its budget, with its "
                  "verdicts beside the full reference run's (--table BUILD: an existing build)"),
    "notebooks": ("mlcourse.notebooks", "generate the student notebooks from solutions/ (generate [--check]), "
                  "or record a solution's checked outputs (record PATH)"),
    "workshop": ("mlcourse.workshop", "prepare a room offline (prepare: data checked, slow models cached), "
                 "check it (check), or open JupyterLab on the course (lab [--ip] [--port])"),
    "compression": ("mlcourse.compression", "the compression benchmark table (float32, int8, pruned, clustered...) "
                    "with its targets (--size smoke: tiny data)"),
    "report": ("mlcourse.report", "write a build's report again (rewrite BUILD), or copy a full run's report "
               "into reference/ (publish BUILD; --add merges it into the published one)"),
    "catalog": ("mlcourse.catalog", "write or check the landing notebook and the README's course table "
                "(write | check)"),
    "runtimes": ("mlcourse.runtimes", "the deployment runtimes table of notebook 09 (LiteRT, ONNX Runtime, "
                 "OpenVINO, TVM) on this machine (--size smoke: tiny data)"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlcourse",
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=20, width=100),
        description="The course's commands. `mlcourse SUBCOMMAND --help` shows the options of one.",
        epilog="Each subcommand is also `python -m mlcourse.SUBCOMMAND ...`.")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, (_, text) in SUBCOMMANDS.items():
        s = sub.add_parser(name, help=text, description=text, add_help=False)
        s.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    """``mlcourse SUBCOMMAND [ARGS...]``: run the subcommand's ``main(ARGS)`` and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _parser()
    if argv and argv[0] in SUBCOMMANDS:  # everything after the subcommand is its own, --help included
        command, rest = argv[0], argv[1:]
    else:
        command, rest = p.parse_args(argv).command, []  # --help, or a usage error (exit 2)
    module = importlib.import_module(SUBCOMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
