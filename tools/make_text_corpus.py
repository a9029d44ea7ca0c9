"""Make datasets/stdlib-docstrings.csv.gz: real English technical text the course ships for text lessons.

    python tools/make_text_corpus.py

Every function and class docstring (at least 80 characters) in eight packages of the Python standard
library installed here, labelled by package. The text is the Python Software Foundation's (PSF licence).
Deterministic: files and definitions are read in sorted order; at most 400 documents per package.
"""
import ast
import csv
import gzip
import io
import sysconfig
from pathlib import Path

PACKAGES = ("asyncio", "email", "http", "xml", "unittest", "multiprocessing", "logging", "importlib")
OUT = Path(__file__).resolve().parent.parent / "datasets" / "stdlib-docstrings.csv.gz"


def docstrings(package_dir: Path):
    for path in sorted(package_dir.rglob("*.py")):
        if "test" in path.relative_to(package_dir).parts[:-1]:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = " ".join((ast.get_docstring(node) or "").split())
                if len(doc) >= 80:
                    yield doc


def main():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["text", "label"])
    counts = {}
    for pkg in PACKAGES:
        seen = []
        for doc in docstrings(stdlib / pkg):
            if doc not in seen:
                seen.append(doc)
        for doc in seen[:400]:
            writer.writerow([doc, pkg])
        counts[pkg] = min(len(seen), 400)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        f.write(buf.getvalue().encode())
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): {counts}")


if __name__ == "__main__":
    main()
