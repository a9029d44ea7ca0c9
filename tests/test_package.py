"""The package's shape: it imports lazily, every public name is exported and documented, the modules keep
the floors of ARCHITECTURE.md (nothing imports upward, no circle), and each imports on its own."""
import ast
import importlib
import subprocess
import sys

import mlcourse
from mlcourse.session import ROOT

# ../shared/ARCHITECTURE.md: 1 ground, 2 the weeks, 3 what a person runs
FLOORS = {
    1: {"session", "processes", "settings", "weeks", "data", "models", "cache", "results", "plots", "notebooks",
        "timing", "stats", "machine", "litert", "headlines"},
    2: {"evaluation", "training", "drift", "tuning", "nas", "reduction", "compression", "distributed", "pipelines",
        "distillation", "ensembles", "serving", "runtimes",
        "capstone"},
    3: {"course", "report", "workshop", "checks", "catalog", "benchmark", "lessons", "__main__"},
}
FLOOR = {m: f for f, mods in FLOORS.items() for m in mods}


def _imports(path) -> set[str]:
    """The mlcourse modules a file imports, anywhere in it (function-local imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mlcourse":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mlcourse."))
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted((ROOT / "mlcourse").rglob("*.py")):
        rel = path.relative_to(ROOT / "mlcourse")
        name = rel.parts[0].removesuffix(".py")
        if name == "__init__":
            continue
        graph.setdefault(name, set()).update(_imports(path) - {name})
    return graph


def _cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n, [n])
            if found:
                return found
    return None


def test_every_module_has_a_floor():
    missing = set(_graph()) - set(FLOOR)
    assert not missing, f"modules with no floor in ARCHITECTURE.md (add them to FLOORS here and there): {missing}"


def test_no_import_runs_up_a_floor():
    up = [f"{a} (floor {FLOOR[a]}) imports {b} (floor {FLOOR[b]})" for a, deps in _graph().items()
          for b in deps if b in FLOOR and a in FLOOR and FLOOR[b] > FLOOR[a]]
    assert not up, "imports that run up a floor:\n" + "\n".join(up)


def test_no_import_circle():
    assert _cycle(_graph()) is None, f"import circle: {' -> '.join(_cycle(_graph()))}"


def test_the_circle_test_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_each_module_imports_on_its_own():
    """In one fresh interpreter, each mlcourse module is imported first, with every other mlcourse module
    forgotten before it (third-party libraries stay loaded: only the course's own import order matters)."""
    code = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "mlcourse" or m.startswith("mlcourse.")]:
        del sys.modules[m]
    try:
        importlib.import_module("mlcourse." + name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\\n".join(failed))
"""
    proc = subprocess.run([sys.executable, "-c", code, *mlcourse._MODULES], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0 and not proc.stdout.strip(), (
        f"modules that fail on their own:\n{proc.stdout}{proc.stderr[-2000:]}")


def test_every_module_and_public_name_is_exported_and_documented():
    for name in mlcourse._MODULES:
        mod = getattr(mlcourse, name)  # reachable as mlcourse.<name>, as `mlcourse.serving?` needs
        assert mod.__doc__ and len(mod.__doc__) > 80, f"mlcourse.{name} needs a docstring"
        for public in getattr(mod, "__all__", []):
            assert hasattr(mod, public), f"mlcourse.{name}.__all__ names {public!r}, which does not exist"
            obj = getattr(mod, public)
            if callable(obj):
                assert obj.__doc__, f"mlcourse.{name}.{public} needs a docstring"
    assert set(mlcourse._MODULES) <= set(dir(mlcourse))


def test_every_checker_is_exported():
    from mlcourse import checks

    defined = {n for f in (ROOT / "mlcourse" / "checks").glob("[a-z]*.py")
               for n in importlib.import_module(f"mlcourse.checks.{f.stem}").__dict__ if n.startswith("check_")}
    missing = defined - set(checks.__all__)
    assert defined and not missing, f"checkers missing from checks.__all__: {missing}"


def test_import_is_light():
    code = "import sys, mlcourse; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "import mlcourse must not load TensorFlow"


def test_every_mlcourse_name_a_notebook_uses_exists_and_is_documented():
    """From the lesson to the code: each `module.name` a solution notebook calls exists, and a learner who types
    `module.name?` in JupyterLab gets a docstring (classes, functions and modules; tables are data)."""
    import inspect

    from mlcourse import lessons, notebooks

    problems = []
    for path in notebooks.solution_notebooks():
        for module, name in sorted(lessons.code_uses(path)):
            mod = importlib.import_module(f"mlcourse.{module}")
            if not hasattr(mod, name):
                problems.append(f"{path.stem}: mlcourse.{module}.{name} does not exist")
                continue
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                problems.append(f"{path.stem}: mlcourse.{module}.{name} has no docstring")
    assert not problems, "\n".join(problems)


TF_LIBRARIES = ("tensorflow", "keras", "tf_keras")


def _tf_import_lines(path) -> list[int]:
    """The line of every ``import tensorflow`` / ``keras`` / ``tf_keras`` statement in ``path`` (nested ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] in TF_LIBRARIES for n in names):
            found.append(node.lineno)
    return found


def test_tensorflow_and_keras_are_imported_one_way(tmp_path):
    """The package imports TensorFlow, Keras 3 and tf_keras one way: `session.quiet_import(name)` (lazy and quiet),
    or `models.get_keras(flavor)` where the flavor is a variable; only `session` holds the import statements."""
    found = [f"{p.relative_to(ROOT)}:{line}" for p in sorted((ROOT / "mlcourse").rglob("*.py"))
             if p.name != "session.py" for line in _tf_import_lines(p)]
    assert not found, "import these with session.quiet_import(...) instead:\n" + "\n".join(found)
    planted = tmp_path / "planted.py"  # the scan must see a nested, aliased import
    planted.write_text("import os\n\n\ndef f():\n    if os:\n        from keras import layers as L\n    return L\n")
    assert _tf_import_lines(planted) == [6]


def test_no_function_in_the_package_is_longer_than_80_lines():
    long = [f"{p.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p in sorted((ROOT / "mlcourse").rglob("*.py"))
            for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
    assert not long, "split these into smaller functions:\n" + "\n".join(long)
