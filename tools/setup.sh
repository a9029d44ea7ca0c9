#!/usr/bin/env bash
# Idempotent set-up for the course, called by `make course`, `make test` and `make lab`.
#  1. the real Fashion-MNIST from Debian's package (when apt-get is there and we may use it; optional:
#     without it the course runs on the embedded subset in datasets/);
#  2. the pinned Python packages of pyproject.toml, and mlcourse itself (editable), into the current Python.
# A stamp (.setup-done) holds a hash of pyproject.toml and the Python used: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's dataset-fashion-mnist (the real Fashion-MNIST, 30 MB)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } \
      || echo "setup: could not install dataset-fashion-mnist; the course will use the embedded subset"
  else
    echo "setup: full Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist, or set"
    echo "       MLCOURSE_DATA_DIR); the course will use the embedded 6,000/1,000-image subset"
  fi
fi

want="$("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest()[:16], sys.executable)')"
# mlcourse must import from *this* checkout (an editable install of another clone would shadow it)
here="$(cd / && "$PYTHON" -c 'import mlcourse, os; print(os.path.dirname(os.path.dirname(os.path.realpath(mlcourse.__file__))))' 2>/dev/null || true)"
if [ -f .setup-done ] && [ "$(cat .setup-done)" = "$want" ] && [ "$here" = "$(pwd -P)" ]; then
  exit 0
fi
echo "setup: installing the pinned packages (first time: a few minutes)"
"$PYTHON" -m pip install --disable-pip-version-check --root-user-action=ignore -q -e . 
"$PYTHON" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
echo "$want" > .setup-done
echo "setup: done"
