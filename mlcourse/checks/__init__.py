"""Exercise checkers: call one on your answer; it prints a pass line or raises an AssertionError that
says what is wrong (never just "wrong").

    >>> from mlcourse import checks
    >>> checks.check_precision_recall_f1(my_prf)
    ✅ Exercise 0.1 passed: precision, recall and F1 match on 6 cases, including the edge cases.

One file per notebook (``mlcourse/checks/<week>.py``); every public checker of every file is available here,
and ``__all__`` is derived from those files, so a new checker needs no second registration.
"""
from __future__ import annotations

import importlib

from mlcourse import weeks as _registry

_WEEKS = tuple(w.checks for w in _registry.WEEKS)  # each week's checkers, from the week registry

__all__: list[str] = []
for _week in _WEEKS:
    _mod = importlib.import_module(f"mlcourse.checks.{_week}")
    for _name in _mod.__all__:
        globals()[_name] = getattr(_mod, _name)
        __all__.append(_name)
del _week, _mod, _name
