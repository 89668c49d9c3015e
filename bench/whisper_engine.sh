#!/usr/bin/env bash
# Runs `speech-recognition-api bench` on every test model and on the assembled base model, and
# writes the report bench/whisper-engine.md. All figures come from one run on one machine.
# Usage: bench/whisper_engine.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
shared="${SRA_SHARED_DIR:-../shared}"
bin=build/app/speech-recognition-api
unset OPENBLAS_CORETYPE  # OpenBLAS picks its kernels for the CPU
out=bench/whisper-engine.md
{
  echo "# Whisper engine benchmark"
  echo
  echo "\`bench/whisper_engine.sh $threads\` on $(hostname) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores), $(date -u +%Y-%m-%d)."
  echo "f32 compute over weights used as the file stores them; each table names the kernels that ran."
  echo "Encoder: one 30 s window. Decoder: greedy steps with the end of text suppressed, time per token"
  echo "including the first pass over the prompt and the logit filters; then one decoder pass alone for"
  echo "1 sequence and for 8 over 8 windows (batched requests). Transcribe: OpenAI's transcribe()"
  echo "defaults (timestamps, temperature fallback, conditioning on previous text, language detection)."
  echo "Side by side with whisper.cpp: whisper-vs-whispercpp.md; OPENBLAS_CORETYPE is unset here."
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
