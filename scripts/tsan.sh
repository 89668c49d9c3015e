#!/usr/bin/env bash
# ThreadSanitizer over the concurrency tests: builds the service and its unit tests with clang
# and -fsanitize=thread into build-tsan/ (CMakePresets.json's tsan preset), then runs the bus,
# cancellation and step batcher unit tests and the
# integration tests that drive the HTTP server, the inference pool, admission and the buses
# (embedded, Celery over Redis and RabbitMQ, Huey and redis buses) concurrently. Any race reported
# by the test binary or by a server/worker process fails the run. Run by scripts/test.sh (so by CI).
# Usage: scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(scripts/python-env.sh tests/integration/requirements.txt)"
cmake --preset tsan -DSRA_BUILD_TESTS=ON -DSRA_PYTHON="$python" >/dev/null
cmake --build build-tsan -j "${JOBS:-$(nproc)}" --target sra_unit_tests speech-recognition-api \
  sra_example_vad_model
reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
export SRA_SHARED_DIR="${SRA_SHARED_DIR:-$(cd .. && pwd)/shared}"
supp="$PWD/tests/tsan-suppressions.txt"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$supp" build-tsan/tests/unit/sra_unit_tests \
  --gtest_filter='EmbeddedBus.*:RunningTasks.*:WhisperModelPart.CancelAndDeadline*:WhisperBatching.*'
# Two groups side by side (a server under test mostly waits for its clients); the second's
# output follows the first's.
concurrency() {
  (cd tests/integration && TSAN_OPTIONS="log_path=$reports/race second_deadlock_stack=1 suppressions=$supp" \
    SRA_TIME_SCALE=5 SRA_BUILD_DIR="$PWD/../../build-tsan" "$python" -m pytest -q -p no:cacheprovider "$@")
}
concurrency test_load_smoke.py \
  "test_admission.py::test_upload_bytes_are_bounded_as_they_arrive" \
  "test_admission.py::test_rate_limits_answer_429_in_each_routes_shape" \
  "test_hostile_clients.py::test_client_that_leaves_cancels_its_job[/v1/audio/transcriptions-fields2]" \
  "test_hostile_clients.py::test_connection_cap_holds_and_frees" >"$reports/first.log" 2>&1 &
first=$!
concurrency "test_workers.py::test_200_tasks_over_3_worker_processes_each_result_stored_once" \
  "test_workers.py::test_redis_only_buses_end_to_end_with_crash_and_restart" \
  "test_task_progress.py::test_embedded_bus_progress_and_cancel" \
  "test_realtime.py::test_manual_commits_beta_shapes_and_errors_that_keep_the_session" \
  "test_realtime.py::test_limits_sessions_pace_size_and_unread_events" \
  "test_realtime.py::test_a_client_that_stops_reading_is_cut_off" || failed=1
wait "$first" || failed=1
cat "$reports/first.log"
if grep -qs "WARNING: ThreadSanitizer" "$reports"/race*; then
  echo "ThreadSanitizer reported races:" >&2
  cat "$reports"/race* >&2
  exit 1
fi
if [[ -n "${failed:-}" ]]; then exit 1; fi
echo "ThreadSanitizer: no races reported"
