#!/bin/sh
# Tests of the Python binding (run by `make test-python`, after the library and the receiver
# are built; from any directory): makes a venv in bindings/python/.venv, installs the package
# (this directory) with pytest, python-dotenv and opentelemetry-api (the optional trace
# correlation) from PyPI, and runs pytest from a temporary
# directory so that the installed package, not the source tree, is what is tested.
# Out of the repository (the directory copied elsewhere), give the library to bundle with
# RARCH_LOGGING_LIB and the receiver with RARCH_RECEIVER.
set -eu

PYDIR=$(cd "$(dirname "$0")" && pwd)
VENV="$PYDIR/.venv"
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pytest python-dotenv \
    opentelemetry-api
# Reinstall every time: the bundled library must be the one just built.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps "$PYDIR"

: "${RARCH_RECEIVER:=$PYDIR/../../examples/receiver/receiver}"
export RARCH_RECEIVER
export RARCH_PYTHON_SOURCE="$PYDIR"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-python-tests.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "$PYDIR/tests" "$@"
