#!/usr/bin/env bash
# Idempotent set-up for the course, called by `make course`, `make test` and `make lab`.
#  1. the real Fashion-MNIST from Debian's package (when apt-get is there and we may use it; optional:
#     without it the course runs on the embedded subset in datasets/);
#  2. the locked Python packages (requirements.lock: the closure of pyproject.toml's pins, exact versions),
#     then mlcourse itself (editable, no dependencies of its own beyond the lock), into the current Python;
#  3. with --tests: Debian's chromium, for the browser tests (optional: they skip without it);
#  4. JupyterHub's proxy, configurable-http-proxy, from npm (for `make room`; optional: only the room needs it).
# A stamp (.setup-done) holds a hash of pyproject.toml, the lock and the Python used: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null 2>&1; then
  if can_apt; then
    echo "setup: installing Debian's chromium for the browser tests"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "setup: could not install chromium; the browser tests will be skipped"
  else
    echo "setup: chromium not installed (sudo apt-get install chromium); the browser tests will be skipped"
  fi
fi

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if can_apt; then
    echo "setup: installing Debian's dataset-fashion-mnist (the real Fashion-MNIST, 30 MB)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } \
      || echo "setup: could not install dataset-fashion-mnist; the course will use the embedded subset"
  else
    echo "setup: full Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist, or set"
    echo "       MLCOURSE_DATA_DIR); the course will use the embedded 6,000/1,000-image subset"
  fi
fi

if ! command -v configurable-http-proxy >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing JupyterHub's proxy for \`make room\` (npm install -g configurable-http-proxy)"
    npm install -g --silent configurable-http-proxy >/dev/null 2>&1 \
      || echo "setup: could not install configurable-http-proxy (try: sudo npm install -g configurable-http-proxy);" \
              "make room will not start without it, make lab works"
  else
    echo "setup: npm not found: \`make room\` needs JupyterHub's proxy (install node and npm, then"
    echo "       npm install -g configurable-http-proxy); make lab works without it"
  fi
fi

want="$("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read() + open("requirements.lock","rb").read()).hexdigest()[:16], sys.executable)')"
# mlcourse must import from *this* checkout (an editable install of another clone would shadow it)
here="$(cd / && "$PYTHON" -c 'import mlcourse, os; print(os.path.dirname(os.path.dirname(os.path.realpath(mlcourse.__file__))))' 2>/dev/null || true)"
if [ -f .setup-done ] && [ "$(cat .setup-done)" = "$want" ] && [ "$here" = "$(pwd -P)" ]; then
  exit 0
fi
echo "setup: installing the locked packages (first time: a few minutes)"
"$PYTHON" -m pip install --disable-pip-version-check --root-user-action=ignore -q -r requirements.lock
"$PYTHON" -m pip install --disable-pip-version-check --root-user-action=ignore -q --no-deps -e .
"$PYTHON" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
echo "$want" > .setup-done
echo "setup: done"
