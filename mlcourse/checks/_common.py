"""What every checker shares: the pass line and a float comparison."""
from __future__ import annotations


def _passed(exercise: str, what: str) -> None:
    print(f"✅ Exercise {exercise} passed: {what}")


def _close(a, b, tol=1e-6) -> bool:
    return abs(float(a) - float(b)) <= tol
