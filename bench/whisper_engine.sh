#!/usr/bin/env bash
# Runs `speech-recognition-api bench` on every test model and on the assembled base model, and
# writes the report bench/whisper-engine.md. All figures come from one run on one machine.
# Usage: bench/whisper_engine.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
shared="${SRA_SHARED_DIR:-../shared}"
bin=build/app/speech-recognition-api
out=bench/whisper-engine.md
{
  echo "# Whisper engine benchmark"
  echo
  echo "\`bench/whisper_engine.sh $threads\` on $(hostname) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores), $(date -u +%Y-%m-%d)."
  echo "OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0 2>/dev/null), f32 compute (f16 files are widened at load)."
  echo "Encoder: one 30 s window. Decoder: greedy steps with the end of text suppressed, time per token"
  echo "including the first pass over the prompt. Transcribe: OpenAI's transcribe() defaults (timestamps,"
  echo "temperature fallback, conditioning on previous text)."
  echo
  for m in tiny-test-f32 tiny-test-f16 random-tiny-ml-f32 random-v3-small-f32; do
    "$bin" bench "$shared/whisper/models/ggml-$m.bin" --audio "$shared/whisper/audio/long/long_00000.wav" --threads "$threads" | grep -v '^| text'
    echo
  done
  if [[ -f models/ggml-base.bin ]]; then
    "$bin" bench models/ggml-base.bin --audio "$shared/audio/jfk.wav" --threads "$threads"
    echo
    "$bin" bench models/ggml-base.bin --audio "$shared/audio/seed-audio.wav" --threads "$threads" --runs 1
  fi
} > "$out"
cat "$out"
