#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server with the embedded defaults
# (PocketSphinx, local storage, the SQLite-backed embedded bus) on http://127.0.0.1:8888.
# Extra arguments go to `speech-recognition-api serve` (for example --host 0.0.0.0 --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/app/speech-recognition-api serve "$@"
