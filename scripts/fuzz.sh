#!/usr/bin/env bash
# Builds the project with clang, AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage into build-fuzz/, then runs every harness in tests/fuzz for SECONDS each (default 60),
# starting from its committed seed corpus (tests/fuzz/corpus/<harness>). New inputs go to
# build-fuzz/corpus/<harness>; a crash, hang or leak stops with the reproducer in build-fuzz/.
# Usage: scripts/fuzz.sh [SECONDS] [harness ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(fuzz_multipart fuzz_dotenv fuzz_model_loader fuzz_audio fuzz_options fuzz_http fuzz_huey_pickle fuzz_realtime fuzz_onnx fuzz_wyoming fuzz_webhooks fuzz_torch_checkpoint)
# The asan-ubsan preset (CMakePresets.json), as scripts/sanitize.sh configures it, when that has
# not been done yet.
if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  cmake --preset asan-ubsan -DSRA_BUILD_TESTS=OFF >/dev/null
fi
cmake --build build-fuzz -j "${JOBS:-$(nproc)}" --target "${harnesses[@]}"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1"
export SRA_SHARED_DIR="${SRA_SHARED_DIR:-$(cd .. && pwd)/shared}"
# One harness per core at a time, each with its own log; a finding shows the log's tail.
run_harness() {
  local h="$1" rss=3072
  mkdir -p "build-fuzz/corpus/$h" "build-fuzz/artifacts/$h"
  # -rss_limit_mb bounds memory: an input that makes us allocate without bound is a finding. A
  # live session's inputs are small and its bounds stated: its harness gets a small cap.
  [[ "$h" == fuzz_realtime ]] && rss=768
  if ! build-fuzz/tests/fuzz/"$h" -max_total_time="$seconds" -timeout=120 -rss_limit_mb="$rss" \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$h/" \
      "build-fuzz/corpus/$h" "tests/fuzz/corpus/$h" 2>"build-fuzz/$h.log"; then
    echo "!! $h found a problem:"; tail -60 "build-fuzz/$h.log"
    return 1
  fi
  echo "== $h (${seconds} s): $(grep -E "stat::number_of_executed_units|stat::peak_rss_mb" \
    "build-fuzz/$h.log" | tr '\n' ' ')"
}
status=0
parallel="${JOBS:-$(nproc)}"
for h in "${harnesses[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || status=1; done
  run_harness "$h" &
done
while (($(jobs -rp | wc -l) > 0)); do wait -n || status=1; done
exit $status
