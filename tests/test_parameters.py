"""Every parameter of every notebook can be overridden by papermill (the course command, the workshop kit and
a learner's `papermill -p NAME VALUE` all rely on it). papermill parses the cell tagged `parameters` line by
line: a line it cannot parse (a comment holding `>=` once did) is silently left out of the overridable set."""
import ast

import nbformat
import papermill as pm
import pytest

from mlcourse.notebooks import SOLUTIONS, solution_notebooks


def _assigned(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: exactly one cell must be tagged 'parameters', found {len(cells)}"
    names = []
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


@pytest.mark.parametrize("path", solution_notebooks(SOLUTIONS), ids=lambda p: p.stem)
def test_every_parameter_is_overridable(path):
    assigned = _assigned(path)
    assert "SIZE" in assigned and "SEED" in assigned, f"{path.name}: the parameters cell needs SIZE and SEED"
    seen = list(pm.inspect_notebook(str(path)))
    missing = [n for n in assigned if n not in seen]
    assert not missing, (f"{path.name}: papermill cannot override {missing}: keep each parameter line to "
                         "`NAME = value  # comment` (papermill's parser trips on some characters in comments).")
