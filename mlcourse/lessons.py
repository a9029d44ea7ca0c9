"""From the code back to the lesson: which notebook section teaches each public name of the package.

Like d2l's "Defined in", every public function and class that a solution notebook uses (a call such as
``compression.prune(...)``, or a mention such as ```mlcourse.compression.prune``` in its text) ends its docstring
with the section that teaches it::

    Lesson: 05_compression § 6 · Pruning: the loop, the pitfalls, adaptive sparsity, and structured pruning;
    also used in 10_capstone.

so ``compression.prune?`` in JupyterLab says where to read about it. The section named first is in the notebook
of the week whose module (or checker) defines the name, where a notebook of that week uses it; else the first
notebook, in course order, that uses it. The notebooks after ``also used in`` use it too. The lines are generated
from the solution notebooks, never written by hand::

    python -m mlcourse.lessons write    # rewrite the "Taught in" lines of every docstring
    python -m mlcourse.lessons check    # fail (exit 1) when one is missing, stale or points at no section

A public name no notebook uses is course plumbing (a cache, a checker's helper, a command) and has no line.
The other direction, that every ``mlcourse`` name a notebook uses exists and is documented, is
``tests/test_package.py``'s.

Top floor: it reads every module of the package.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import nbformat

import mlcourse
from mlcourse import weeks
from mlcourse.notebooks import solution_notebooks
from mlcourse.session import ROOT

__all__ = ["MARK", "public_names", "sections", "code_uses", "uses", "taught_in", "expected", "stale", "write", "main"]

#: How a docstring's lesson line starts.
MARK = "Lesson: "
_MODULE_CALL = re.compile(r"(?<![\w.])(?:mlcourse\.)?([a-z_]+)\.([A-Za-z_]\w*)")


def public_names() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for every public function and class of the package (each module's ``__all__``;
    a name re-exported by another module, as ``checks`` does, is listed under the module a notebook imports). A
    class built inside a function when first needed (``compression.BinaryWeightDense``, which needs Keras) is left
    out: it has no top-level docstring to carry the line."""
    out = []
    for module in mlcourse._MODULES:
        mod = importlib.import_module(f"mlcourse.{module}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            top_level = "<locals>" not in getattr(inspect.unwrap(obj), "__qualname__", "<locals>")
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and top_level:
                out.append((module, name, obj))
    return out


def sections(path) -> list[tuple[str, object]]:
    """``(heading, cell)`` for each cell of the notebook at ``path``: the heading of the section the cell is in
    (the last Markdown heading above it, or in it before its text; "" before the first)."""
    heading, out = "", []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            first = next((line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("#")), "")
            out.append((first or heading, cell))
            heading = next((line.lstrip("#").strip() for line in reversed(cell.source.splitlines())
                            if line.startswith("#")), heading)
        else:
            out.append((heading, cell))
    return out


def _tree(source: str):
    """The syntax tree of a code cell, its IPython lines (``%magic``, ``!shell``) left out."""
    return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def _aliases(cells) -> dict[str, str]:
    """``{name in the notebook: mlcourse module}`` from the notebook's ``from mlcourse import ...`` statements
    (``... import distillation as kd`` gives ``{"kd": "distillation"}``; parenthesised imports over lines too)."""
    alias = {}
    for cell in cells:
        if cell.cell_type == "code":
            for node in ast.walk(_tree(cell.source)):
                if isinstance(node, ast.ImportFrom) and node.module == "mlcourse":
                    alias.update({a.asname or a.name: a.name for a in node.names})
    return alias


def _code_uses(source: str, alias: dict[str, str]) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``<alias>.<name>`` in a code cell, ``alias`` an mlcourse module it imported."""
    return [(alias[n.value.id], n.attr) for n in ast.walk(_tree(source))
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in alias]


def code_uses(path) -> set[tuple[str, str]]:
    """``(module, name)`` of every mlcourse name the code of the notebook at ``path`` uses (``litert.to_tflite``,
    ``kd.distill`` where ``kd`` is ``distillation``): what ``tests/test_package.py`` checks exists and is
    documented."""
    cells = [cell for _, cell in sections(path)]
    alias = _aliases(cells)
    return {use for cell in cells if cell.cell_type == "code" for use in _code_uses(cell.source, alias)}


def uses(path) -> dict[tuple[str, str], str]:
    """``{(module, name): heading}``: every ``mlcourse`` module's name the notebook at ``path`` uses or mentions,
    with the section of its first use in code (of its first mention in the text, when no code uses it)."""
    cells = sections(path)
    alias = _aliases(cell for _, cell in cells)
    code, text = {}, {}
    for heading, cell in cells:
        if cell.cell_type == "code":
            for key in _code_uses(cell.source, alias):
                code.setdefault(key, heading)
            continue
        for m in _MODULE_CALL.finditer(cell.source):
            module = alias.get(m.group(1), m.group(1))
            if module in mlcourse._MODULES:
                text.setdefault((module, m.group(2)), heading)
    return {**text, **code}


def taught_in(places: list[tuple[str, str]]) -> str:
    """The docstring line for ``places`` (``[(notebook stem, heading)]``, the teaching section first)."""
    (stem, heading), *rest = places
    text = f"{MARK}{stem} § {heading}" + (f"; also used in {', '.join(s for s, _ in rest)}" if rest else "")
    return text if text[-1] in ".?!" else text + "."


def home(obj) -> str | None:
    """The notebook of the week whose module (``mlcourse.compression``) or checker (``mlcourse.checks.compression``)
    defines ``obj``; None for the ground floor and the commands."""
    parts = inspect.unwrap(obj).__module__.split(".")
    for week in weeks.WEEKS:
        if parts[1:] == [week.module] or parts[1:] == ["checks", week.checks]:
            return week.stem
    return None


def expected() -> dict[int, str]:
    """``{id(object): line}`` for every public function and class some solution notebook uses (an object exported
    by two modules gets the places of both)."""
    where: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for path in solution_notebooks():
        for key, heading in uses(path).items():
            where.setdefault(key, []).append((path.stem, heading))
    places: dict[int, list[tuple[str, str]]] = {}
    for module, name, obj in public_names():
        for place in where.get((module, name), []):
            if place not in places.setdefault(id(obj), []):
                places[id(obj)].append(place)
    order = {p.stem: i for i, p in enumerate(solution_notebooks())}
    homes = {id(obj): home(obj) for _, _, obj in public_names()}
    out = {}
    for key, found in places.items():
        first_of_each = {}
        for stem, heading in found:
            first_of_each.setdefault(stem, heading)
        ranked = sorted(first_of_each.items(), key=lambda p: (p[0] != homes[key], order[p[0]]))
        out[key] = taught_in(ranked)
    return out


def _objects() -> list[tuple[str, object]]:
    """``("mlcourse.module.name", object)`` once per public object (under the first module that exports it)."""
    seen, out = set(), []
    for module, name, obj in public_names():
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append((f"mlcourse.{module}.{name}", obj))
    return out


def _current(obj) -> str:
    """The lesson line an object's docstring has now (joined over its wrapped lines), or ""."""
    doc = inspect.getdoc(obj) or ""
    para = doc.split("\n\n")[-1]
    return " ".join(para.split()) if para.startswith(MARK) else ""


def stale() -> list[str]:
    """What :func:`write` would change: one line per public name whose lesson line is missing, stale or left
    where no notebook uses the name any more."""
    want = expected()
    out = []
    for qualname, obj in _objects():
        have, should = _current(obj), want.get(id(obj), "")
        if have != should:
            out.append(f"{qualname}: has {have or 'no lesson line'!r}, should have {should or 'none'!r}")
    return out


def _rewrite_docstring(src: str, obj_name: str, line: str) -> str:
    """``src`` with the docstring of the top-level def/class ``obj_name`` ending in ``line`` ("" removes it)."""
    tree = ast.parse(src)
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == obj_name), None)
    if node is None:
        raise ValueError(f"{obj_name} is not defined at the top level of its file: its docstring cannot be rewritten")
    doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) else None
    if doc is None or not isinstance(doc.value, ast.Constant) or not isinstance(doc.value.value, str):
        raise ValueError(f"{obj_name} has no docstring to add its lesson to: write one first")
    lines = src.splitlines(keepends=True)
    start, end = doc.lineno - 1, doc.end_lineno
    text = "".join(lines[start:end])
    indent = " " * (node.col_offset + 4)
    quote = '"""' if text.rstrip().endswith('"""') else "'''"
    body = text.rstrip()[: -len(quote)]
    prefix, _, inner = body.partition(quote)
    paras = inner.rstrip().split("\n\n")
    if " ".join(paras[-1].split()).startswith(MARK) and len(paras) > 1:
        paras = paras[:-1]
    inner = "\n\n".join(paras).rstrip()
    if line:
        wrapped = textwrap.fill(line, width=116 - len(indent), break_long_words=False, break_on_hyphens=False)
        inner += "\n\n" + textwrap.indent(wrapped, indent) + "\n" + indent
    elif "\n" in inner:
        inner += "\n" + indent
    lines[start:end] = [prefix + quote + inner + quote + "\n"]
    return "".join(lines)


def write() -> list[str]:
    """Rewrite every lesson line that :func:`stale` reports; returns what it changed."""
    want, changed = expected(), []
    for qualname, obj in _objects():
        should = want.get(id(obj), "")
        if _current(obj) == should:
            continue
        path = Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve()
        if ROOT / "mlcourse" not in path.parents:
            raise ValueError(f"{qualname} is defined in {path}, outside the package: give it a plain docstring")
        path.write_text(_rewrite_docstring(path.read_text(), obj.__name__, should))
        changed.append(qualname)
    return changed


def main(argv=None) -> int:
    """``python -m mlcourse.lessons write | check``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m mlcourse.lessons", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["write", "check"])
    args = p.parse_args(argv)
    if args.command == "write":
        changed = write()
        print(f"rewrote {len(changed)} lesson line(s)" + (": " + ", ".join(changed) if changed else ""))
        return 0
    problems = stale()
    print("\n".join(problems) if problems else "up to date")
    if problems:
        print(f"{len(problems)} lesson line(s) out of date: run `python -m mlcourse.lessons write` ({ROOT}).")
    return 1 if problems else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
