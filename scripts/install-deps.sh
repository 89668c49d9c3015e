#!/usr/bin/env bash
# Installs the Debian 12 packages this project builds, runs and tests with (as root or via sudo).
# Usage: scripts/install-deps.sh [--test]   (--test adds what only the tests need)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us
  libsqlite3-dev libspdlog-dev libcli11-dev libopenblas-dev zlib1g-dev
  libcurl4-openssl-dev libssl-dev librabbitmq-dev libzip-dev
  python3 python3-venv ca-certificates
)
# npm installs Swagger UI for /docs at build time (optional: /docs says so when it is missing).
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev libgmock-dev pocketsphinx-testdata ffmpeg chromium redis-server rabbitmq-server
    strace flite)
  # clang with its sanitizer and libFuzzer runtimes: the fuzz harnesses and the sanitizer build.
  packages+=(clang libclang-rt-14-dev clang-format)
  # Node.js and npm for the Node client tests and Playwright (often present already).
  if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
  # Go builds fake-gcs-server (often present already).
  if ! command -v go >/dev/null 2>&1; then packages+=(golang-go); fi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
