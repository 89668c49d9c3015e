#!/usr/bin/env bash
# The sanitizer suite: builds everything with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer's coverage into build-fuzz/ (the build scripts/fuzz.sh uses), runs the unit tests
# and the hostile-input integration tests against that build, then every fuzz harness for SECONDS
# (default 30; 0 skips fuzzing). Run by scripts/test.sh (so by CI).
# Usage: scripts/sanitize.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
t0=$SECONDS
lap() { echo "-- sanitize.sh: $1 took $((SECONDS - t0)) s"; t0=$SECONDS; }
python="$(scripts/python-env.sh tests/integration/requirements.txt)"
cmake --preset asan-ubsan -DSRA_BUILD_TESTS=ON -DSRA_PYTHON="$python" >/dev/null
cmake --build build-fuzz -j "${JOBS:-$(nproc)}"
lap "build"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export SRA_SHARED_DIR="${SRA_SHARED_DIR:-$(cd .. && pwd)/shared}"
# The unit tests run as one GoogleTest shard per core (they are independent processes under ctest
# -j in the plain build too); each shard's output is shown when it fails. The 50-clip decode
# comparison runs on one model here (minutes per model under the sanitizers); the same code runs
# on the other three in the plain build. Two numerical tests run only in the plain build (and the
# second under TSan too): the bf16 encoder comparison (a whole encoder pass through the portable
# bf16 kernel on a CPU without AVX-512 BF16: 250 s here; the kernels themselves are tested here)
# and batching's bit-equality (120 s; the batched paths run here in the other WhisperBatching tests).
shards="$(nproc)"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
pids=()
for ((i = 0; i < shards; i++)); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i ASAN_OPTIONS=detect_leaks=1 \
    build-fuzz/tests/unit/sra_unit_tests --gtest_brief=1 \
    --gtest_filter='-Models/DecodeMatchesOpenAI.EveryDevClip/random_*:Models/DecodeMatchesOpenAI.EveryDevClip/tiny_test_f16:WhisperBf16.EncoderWithBf16ProductsStaysCloseToTheExactOne:WhisperBatching.ChunksTranscribedTogetherEqualEachAlone' \
    >"$logs/unit.$i.log" 2>&1 &
  pids+=($!)
done
unit_failed=0
for ((i = 0; i < shards; i++)); do
  if ! wait "${pids[$i]}"; then
    echo "!! unit test shard $i of $shards failed:"; tail -150 "$logs/unit.$i.log"; unit_failed=1
  else
    tail -3 "$logs/unit.$i.log"
  fi
done
((unit_failed == 0)) || exit 1
lap "unit tests ($shards shards)"
# Not the out-of-descriptors test: the sanitizer runtimes need descriptors themselves (UBSan's
# vptr check probes memory through a pipe and reports every virtual call as invalid without one).
# Two groups side by side (a server under test mostly waits for its client): the second's
# output follows the first's.
hostile() {
  (cd tests/integration && ASAN_OPTIONS=detect_leaks=0 SRA_TIME_SCALE=5 SRA_BUILD_DIR="$PWD/../../build-fuzz" \
    "$python" -m pytest -q -p no:cacheprovider "$@" -k "not out_of_descriptors")
}
hostile test_hostile_clients.py >"$logs/hostile.log" 2>&1 &
hostile_pid=$!
hostile_failed=0
hostile test_bad_input.py \
  "test_realtime.py::test_manual_commits_beta_shapes_and_errors_that_keep_the_session" \
  "test_realtime.py::test_limits_sessions_pace_size_and_unread_events" \
  "test_realtime.py::test_a_client_that_stops_reading_is_cut_off" || hostile_failed=1
wait "$hostile_pid" || hostile_failed=1
cat "$logs/hostile.log"
((hostile_failed == 0)) || exit 1
lap "hostile-input integration tests"
if ((seconds > 0)); then
  scripts/fuzz.sh "$seconds"
  lap "fuzzers"
fi
