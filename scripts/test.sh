#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, builds,
# assembles the Whisper base model the real-speech tests use, and runs the unit tests
# (GoogleTest) and the integration tests (pytest against the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
python="$(scripts/python-env.sh tests/integration/requirements.txt)"
scripts/build.sh -DSRA_PYTHON="$python"
scripts/fetch-base-model.sh models "$python"
cd build
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
