#!/usr/bin/env bash
# Fails, naming the files, when a C++ file of ours is not laid out as the committed .clang-format
# says (clang-format 14, Debian 12's). `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'src/*.cpp' 'src/*.h' 'app/*.cpp' 'app/*.h' 'tests/unit/*.cpp' \
  'tests/unit/*.h' 'tests/fuzz/*.cpp' 'examples/*.cpp' 'examples/*.h')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "not laid out by clang-format (scripts/check-format.sh --fix rewrites them):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "${#files[@]} files laid out by clang-format"
