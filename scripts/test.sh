#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, builds,
# assembles the Whisper base model the real-speech tests use, runs the sanitizer suite and the
# fuzz harnesses briefly (scripts/sanitize.sh), then the unit tests (GoogleTest) and the
# integration tests (pytest, OpenAI's Python and Node clients, schemathesis
# and Playwright with Chromium, against the real binary). Screenshots of the web page end up in
# tests/integration/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
python="$(scripts/python-env.sh tests/integration/requirements.txt)"
scripts/build.sh -DSRA_PYTHON="$python"
scripts/fetch-base-model.sh models
# Silero VAD (server_vad of live sessions, the VAD tests): pulled once from PyPI's silero-vad.
build/app/speech-recognition-api models pull silero-v6.2.3 --dir models --env-file /dev/null >/dev/null
# fake-gcs-server, the GCS emulator, built from the Go module proxy into .tools/bin (cached).
if [[ ! -x .tools/bin/fake-gcs-server ]]; then
  GOBIN="$PWD/.tools/bin" GOPATH="$PWD/.tools/gopath" GOFLAGS=-modcacherw \
    go install github.com/fsouza/fake-gcs-server@v1.56.1
fi
# Node test clients: OpenAI's SDK and playwright-core (which drives Debian's Chromium).
npm install --silent --no-audit --no-fund --prefix tests/integration/node
# The sanitizer suite and a short run of every fuzz harness (a clang build in build-fuzz/), then
# ThreadSanitizer over the concurrency tests (build-tsan/); SANITIZE=0 skips both, FUZZ_SECONDS
# sets the time per harness.
if [[ "${SANITIZE:-1}" != 0 ]]; then
  scripts/sanitize.sh "${FUZZ_SECONDS:-30}"
  scripts/tsan.sh
fi
# The container image (podman; builds the project again inside it): only when asked.
if [[ "${CONTAINER_TEST:-0}" == 1 ]]; then
  scripts/container-test.sh
fi
# whisper.cpp for the side-by-side benchmark's smoke test, built now rather than beside the
# timing-sensitive tests (bench/.cache/, once per checkout).
"$python" bench/whisper_vs_whispercpp.py --build-only
cd build
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
