"""Headlines: how a week says which of its recorded results lead the course report.

Each week module that has headlines defines ``headlines(rec) -> list[dict]``, where ``rec`` is what its notebook
recorded (:func:`mlcourse.results.record`, one key per result), and the public figures it is judged against as
:class:`Reference` objects in its ``REFERENCES`` table. The report (:mod:`mlcourse.report`) only renders: it asks
each week of the registry (:mod:`mlcourse.weeks`) for its headlines and lists every week's references.

A week writes its headlines with a :class:`Headlines` collector, which reads the records defensively (a result a
run did not record, or recorded in an older shape, leaves its headline out; it never breaks the report)::

    def headlines(rec):
        h = Headlines(rec)
        final = h.rows("baseline vs tuned winner (test set)")
        if final:
            h.add("tuned model, test accuracy", f"{final[-1]['test_accuracy']:.4f}",
                  REFERENCES["keras-tuner on Fashion-MNIST"], final[-1]["test_accuracy"])
        h.add_rows("tuners: best validation accuracy", "tuner comparison", lambda r: f"{r['tuner']} ...")
        return h.out

A week's figures in the report are data too: its ``FIGURES``, a tuple of :class:`Figure` specs (which recorded
table, which columns, what kind of plot); the report draws them.

``tests/test_report.py`` reads every key a week's ``headlines`` passes to ``rows``, ``value``, ``add_rows`` and
``add_dict`` (from the source, however the call is laid out) and every ``Figure.key``, and checks that the week's
notebook records it.

Ground floor: this module knows no week.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reference", "Figure", "Headlines", "verdict", "row", "fmt_rows", "KEY_READERS"]

#: The :class:`Headlines` methods that read a recorded key, and the position of the key among their arguments.
KEY_READERS = {"rows": 0, "value": 0, "add_rows": 1, "add_dict": 1}


def verdict(value, target, unit: str = "", higher_is_better: bool = True, scale: float = 1.0) -> str:
    """ "meets (+0.4x)" or "misses (-1.2 pp)": ``value`` against the reference ``target``, with the margin
    (``scale`` multiplies the margin for display: 100 for accuracies shown in percentage points); "" when either
    is not a number."""
    if not isinstance(value, (int, float)) or not isinstance(target, (int, float)) or value != value:
        return ""
    margin = (value - target) if higher_is_better else (target - value)
    return f"{'meets' if margin >= 0 else 'misses'} ({margin * scale:+.{1 if scale == 1 else 2}f}{unit})"


@dataclass(frozen=True)
class Reference:
    """A public figure a headline is set beside: ``figure`` as the report quotes it (with its source), ``target``
    the number the verdict compares with (None: shown, not judged), shown as ``unit`` after ``scale``."""

    figure: str
    target: float | None = None
    unit: str = ""
    scale: float = 1.0
    higher_is_better: bool = True

    def verdict(self, value) -> str:
        """:func:`verdict` of ``value`` against this figure's target ("" when there is none)."""
        if self.target is None:
            return ""
        return verdict(value, self.target, self.unit, self.higher_is_better, self.scale)


@dataclass(frozen=True)
class Figure:
    """A figure of the report, drawn from the recorded table ``key`` into ``file`` with ``caption`` and ``title``.

    ``kind`` is ``"scatter"`` (column ``x`` against column ``y``, each point named by column ``label``), ``"bars"``
    (one horizontal bar of column ``x`` per row, named by ``label``) or ``"series"`` (one line per row over the
    columns ``series``, named ``label_prefix`` + its ``label``). ``x_scale`` / ``y_scale`` multiply the values
    (1/1024 for KiB, 100 for per cent); a row missing a column, or holding a non-number there, is left out."""

    key: str
    file: str
    caption: str
    title: str
    kind: str
    x: str = ""
    y: str = ""
    label: str = ""
    xlabel: str = ""
    ylabel: str = ""
    x_scale: float = 1.0
    y_scale: float = 1.0
    log_x: bool = False
    series: tuple = ()
    label_prefix: str = ""

    def __post_init__(self):
        if self.kind not in ("scatter", "bars", "series"):
            raise ValueError(f"Figure kind {self.kind!r}: use 'scatter', 'bars' or 'series'.")

    def points(self, rows) -> list[dict]:
        """The rows this figure can draw: those whose numeric columns are numbers (``series``: the columns of
        ``series`` the first row has, and rows that have them all)."""
        numeric = ([self.x, self.y] if self.kind == "scatter" else [self.x] if self.kind == "bars"
                   else [c for c in self.series if rows and c in rows[0]])
        ok = [r for r in rows or [] if isinstance(r, dict) and self.label in r
              and all(isinstance(r.get(c), (int, float)) for c in numeric)]
        return ok if numeric else []


def row(rows, **match):
    """The first of ``rows`` whose fields start with the given strings (``row(table, variant="int8")``), or None."""
    for r in rows or []:
        if all(str(r.get(k, "")).startswith(v) for k, v in match.items()):
            return r
    return None


def fmt_rows(rows, fmt, sep: str = "; ") -> str:
    """``fmt(row)`` for each row that has what ``fmt`` reads (a row missing a key is left out, never fatal)."""
    out = []
    for r in rows or []:
        try:
            out.append(fmt(r))
        except (KeyError, TypeError, ValueError):
            continue
    return sep.join(out)


class Headlines:
    """Collects one week's headlines from ``rec``, the results its notebook recorded; ``out`` is the list of
    ``{"topic", "measured", "reference", "verdict"}`` dicts the report renders (it adds the notebook)."""

    def __init__(self, rec: dict | None):
        self.rec = rec if isinstance(rec, dict) else {}
        self.out: list[dict] = []

    def value(self, key: str, kind=None):
        """The recorded value of ``key``, or None (also when it is not of type ``kind``)."""
        v = self.rec.get(key)
        return v if kind is None or isinstance(v, kind) else None

    def rows(self, key: str) -> list[dict] | None:
        """The recorded table ``key`` as a list of row dicts, or None when it was not recorded as a table."""
        v = self.rec.get(key)
        return v if isinstance(v, list) and v and isinstance(v[0], dict) else None

    def add(self, topic: str, measured: str, reference: Reference | None = None, value=None) -> None:
        """One headline; with a ``reference``, its verdict judges ``value`` against the reference's target."""
        self.out.append({"topic": topic, "measured": measured,
                         "reference": reference.figure if reference else "",
                         "verdict": reference.verdict(value) if reference else ""})

    def add_rows(self, topic: str, key: str, fmt) -> None:
        """A headline that lists ``fmt(row)`` for each row of the table ``key`` (none when nothing formats)."""
        text = fmt_rows(self.rows(key), fmt)
        if text:
            self.add(topic, text)

    def add_dict(self, topic: str, key: str, fmt) -> None:
        """A headline ``fmt(value)`` of the dict recorded under ``key`` (none when it is absent or lacks a field)."""
        value = self.value(key, dict)
        text = fmt_rows([value], fmt) if value is not None else ""
        if text:
            self.add(topic, text)
