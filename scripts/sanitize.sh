#!/usr/bin/env bash
# The sanitizer suite: builds everything with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer's coverage into build-fuzz/ (the build scripts/fuzz.sh uses), runs the unit tests
# and the hostile-input integration tests against that build, then every fuzz harness for SECONDS
# (default 30; 0 skips fuzzing). Run by scripts/test.sh (so by CI).
# Usage: scripts/sanitize.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
python="$(scripts/python-env.sh tests/integration/requirements.txt)"
cmake --preset asan-ubsan -DSRA_BUILD_TESTS=ON -DSRA_PYTHON="$python" >/dev/null
cmake --build build-fuzz -j "${JOBS:-$(nproc)}"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export SRA_SHARED_DIR="${SRA_SHARED_DIR:-$(cd .. && pwd)/shared}"
# The 50-clip decode comparison runs on one model here (minutes per model under the sanitizers);
# the same code runs on the other three in the plain build.
ASAN_OPTIONS=detect_leaks=1 build-fuzz/tests/unit/sra_unit_tests \
  --gtest_filter='-Models/DecodeMatchesOpenAI.EveryDevClip/random_*:Models/DecodeMatchesOpenAI.EveryDevClip/tiny_test_f16'
# Not the out-of-descriptors test: the sanitizer runtimes need descriptors themselves (UBSan's
# vptr check probes memory through a pipe and reports every virtual call as invalid without one).
(cd tests/integration && ASAN_OPTIONS=detect_leaks=0 SRA_TIME_SCALE=5 SRA_BUILD_DIR="$PWD/../../build-fuzz" \
  "$python" -m pytest -q -p no:cacheprovider test_bad_input.py test_hostile_clients.py \
  "test_realtime.py::test_manual_commits_beta_shapes_and_errors_that_keep_the_session" \
  "test_realtime.py::test_limits_sessions_pace_size_and_unread_events" \
  "test_realtime.py::test_a_client_that_stops_reading_is_cut_off" \
  -k "not out_of_descriptors")
if ((seconds > 0)); then
  scripts/fuzz.sh "$seconds"
fi
