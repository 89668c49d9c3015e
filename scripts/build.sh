#!/usr/bin/env bash
# Configures and builds the project (CMakePresets.json's release preset) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${JOBS:-$(nproc)}"
cmake --preset release -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build build -j "$jobs"
