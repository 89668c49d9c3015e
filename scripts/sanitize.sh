#!/usr/bin/env bash
# Builds the project with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ and
# runs the unit tests and the given integration test files against that build (not part of CI:
# it takes a full extra build). Usage: scripts/sanitize.sh [tests/integration/test_x.py ...]
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSRA_SWAGGER_UI=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" >/dev/null
cmake --build build-asan -j "$(nproc)"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build-asan/tests/unit/sra_unit_tests
if (($#)); then
  ASAN_OPTIONS=detect_leaks=0 SRA_BUILD_DIR="$PWD/build-asan" .venv/bin/python -m pytest -q "$@"
fi
