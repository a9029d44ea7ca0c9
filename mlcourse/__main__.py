"""``mlcourse course ...`` runs the course; ``mlcourse notebooks ...`` manages student copies."""
import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("course", "notebooks"):
        print("usage: mlcourse course [--smoke] [--only NB ...] | mlcourse notebooks generate [--check]")
        return 2
    if argv[0] == "course":
        from mlcourse.course import main as run
    else:
        from mlcourse.notebooks import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
