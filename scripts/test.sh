#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, builds,
# assembles the Whisper base model the real-speech tests use, runs the sanitizer suite and the
# fuzz harnesses briefly (scripts/sanitize.sh), ThreadSanitizer over the concurrency tests
# (scripts/tsan.sh), then the unit tests (GoogleTest) and the integration tests (pytest, OpenAI's
# Python and Node clients, schemathesis and Playwright with Chromium, against the real binary;
# the benchmarks' smoke runs among them, labelled `bench`). Screenshots of the web page end up in
# tests/integration/artifacts/. Each stage prints its duration and the running total.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
timings=()
stage() {
  local name="$1" t0=$SECONDS
  shift
  echo "== stage: $name"
  "$@"
  timings+=("$(printf '%-34s %5d s' "$name" $((SECONDS - t0)))")
  echo "== stage: $name took $((SECONDS - t0)) s (total $((SECONDS - started)) s)"
}
ctest_log="$PWD/build/ctest-output.log"
rm -f "$ctest_log"
# What the end of a run must show even when it is cut short: the slowest tests, the ones that did
# not pass, and the ones still running.
test_summary() {
  [[ -s "$ctest_log" ]] || return 0
  echo "== slowest tests"
  sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.*.* ([0-9.]+) sec$/\2 \1/p' "$ctest_log" |
    sort -rn | head -12
  echo "== tests that did not pass"
  grep -E '^ *[0-9]+/[0-9]+ Test .*\*\*\*' "$ctest_log" | sed -E 's/ \.{3,}/ /' || true
  echo "== tests started and not finished"
  local name
  for name in $(sed -nE 's/^ *Start +[0-9]+: ([^ ]+)$/\1/p' "$ctest_log"); do
    grep -qF ": $name " "$ctest_log" || echo "$name"
  done
}
summary() {
  test_summary
  echo "== stage times"
  printf '%s\n' "${timings[@]}"
  echo "== total: $((SECONDS - started)) s"
}
trap summary EXIT

stage "system packages" scripts/install-deps.sh --test
# What only the network gives (the Python test clients, the Node clients, the GCS emulator) comes
# while the release build compiles.
fetch_tools() {
  scripts/python-env.sh tests/integration/requirements.txt >/dev/null
  npm install --silent --no-audit --no-fund --prefix tests/integration/node
  # fake-gcs-server, the GCS emulator, built from the Go module proxy into .tools/bin (cached).
  if [[ ! -x .tools/bin/fake-gcs-server ]]; then
    GOBIN="$PWD/.tools/bin" GOPATH="$PWD/.tools/gopath" GOFLAGS=-modcacherw \
      go install github.com/fsouza/fake-gcs-server@v1.56.1
  fi
}
python="$PWD/.venv/bin/python"
[[ -x "$python" ]] || python3 -m venv .venv
tools_log="$(mktemp)"
fetch_tools >"$tools_log" 2>&1 &
tools_pid=$!
stage "format (clang-format)" scripts/check-format.sh
stage "release build" scripts/build.sh -DSRA_PYTHON="$python"
wait_tools() {
  if ! wait "$tools_pid"; then
    cat "$tools_log" >&2
    echo "fetching the test tools failed" >&2
    return 1
  fi
}
stage "test tools (pip, npm, go; the rest)" wait_tools
models() {
  scripts/fetch-base-model.sh models
  # Silero VAD (server_vad of live sessions, the VAD tests): pulled once from PyPI's silero-vad.
  build/app/speech-recognition-api models pull silero-v6.2.3 --dir models --env-file /dev/null >/dev/null
  # smart-turn v3.2 (end-of-turn model; its tests compare it with onnxruntime): from pipecat-ai.
  build/app/speech-recognition-api models pull smart-turn-v3.2 --dir models --env-file /dev/null >/dev/null
  # pyannote's segmentation-3.0 (speaker turns; its tests compare it with pyannote.audio's).
  build/app/speech-recognition-api models pull pyannote-segmentation-3.0 --dir models --env-file /dev/null >/dev/null
  # CAM++ (speaker embeddings; its tests compare it with 3D-Speaker's).
  build/app/speech-recognition-api models pull campplus-zh-en --dir models --env-file /dev/null >/dev/null
}
stage "models (base, Silero, smart-turn, pyannote segmentation, CAM++)" models
# The sanitizer suite and a short run of every fuzz harness over its corpus (a clang build in
# build-fuzz/), then ThreadSanitizer over the concurrency tests (build-tsan/); SANITIZE=0 skips
# both, FUZZ_SECONDS sets the time per harness beyond its corpus.
if [[ "${SANITIZE:-1}" != 0 ]]; then
  stage "asan+ubsan build, tests, fuzzers" scripts/sanitize.sh "${FUZZ_SECONDS:-10}"
  stage "tsan build, tests" scripts/tsan.sh
fi
# The container image (podman; builds the project again inside it): only when asked.
if [[ "${CONTAINER_TEST:-0}" == 1 ]]; then
  stage "container image" scripts/container-test.sh
fi
# whisper.cpp for the side-by-side benchmark's smoke test, built now rather than beside the
# timing-sensitive tests (once per machine: ~/.cache/speech-recognition-api/whispercpp).
stage "whisper.cpp (for the benchmark)" "$python" bench/whisper_vs_whispercpp.py --build-only
run_ctest() {
  (cd build && ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@") 2>&1 | tee "$ctest_log"
  return "${PIPESTATUS[0]}"
}
stage "unit and integration tests" run_ctest "$@"
