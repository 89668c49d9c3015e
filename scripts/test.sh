#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, builds,
# and runs the unit tests (GoogleTest) and the integration tests (pytest against the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

# Test tooling from PyPI, in a virtual environment of the project's own.
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt

scripts/build.sh -DSRA_PYTHON="$PWD/.venv/bin/python"
cd build
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
