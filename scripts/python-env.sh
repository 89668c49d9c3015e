#!/usr/bin/env bash
# Makes the project's Python virtual environment (.venv) if it is missing, installs the given
# requirement files into it, and prints the path of its interpreter.
# Usage: scripts/python-env.sh [REQUIREMENTS_FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv >&2
fi
for requirements in "$@"; do
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements" >&2
done
echo "$PWD/.venv/bin/python"
