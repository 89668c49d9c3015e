#!/usr/bin/env bash
# Builds the container image (./Dockerfile) with podman, starts it, transcribes jfk.wav through
# the sync route and through an async task, checks the HEALTHCHECK and a graceful stop, and prints
# the image's size and start-up time.
#
# The debian:12 base image cannot be pulled here, so when podman does not have it the script makes
# it with debootstrap from the Debian mirror apt uses and imports it under that name.
# Fails, saying why, when podman or debootstrap is missing or cannot run containers: it runs only
# when asked (CONTAINER_TEST=1 scripts/test.sh), and what is asked for never passes unrun.
# Usage: scripts/container-test.sh   (as root; needs the podman and debootstrap packages)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
image=speech-recognition-api:test
name=sra-container-test-$$
audio="$repo/../shared/audio/jfk.wav"

# Asked for and impossible: a failure, never a quiet success.
cannot() {
  echo "container test cannot run: $*" >&2
  exit 1
}
command -v podman >/dev/null || cannot "podman is not installed (apt-get install podman)"
[[ -f "$audio" ]] || cannot "$audio is missing"

# The base image, made from the Debian mirror when it is not there.
if ! podman image exists debian:12; then
  command -v debootstrap >/dev/null || cannot "debootstrap is not installed"
  mirror=$(grep -h -m1 -o 'http[s]*://[^ ]*debian' /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list 2>/dev/null | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  echo "making debian:12 with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - debian:12 >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi
# Some hosts need runc (crun refuses hybrid cgroups v1/v2) and limits below podman's defaults
# (raising RLIMIT_NOFILE/NPROC is not permitted in unprivileged sandboxes): find what works.
pod=(podman)
limits=()
for try in "podman|" "podman|--ulimit nofile=4096:4096 --ulimit nproc=4096:4096" \
           "podman --runtime runc|--ulimit nofile=4096:4096 --ulimit nproc=4096:4096"; do
  read -r -a pod <<<"${try%%|*}"
  read -r -a limits <<<"${try#*|}"
  if "${pod[@]}" run --rm --network host "${limits[@]}" debian:12 true 2>/dev/null; then
    ok=1
    break
  fi
done
[[ "${ok:-0}" == 1 ]] || cannot "podman cannot run containers here"
echo "running with: ${pod[*]} ${limits[*]}"

echo "building $image"
start=$(date +%s)
# This machine's own CAs (a TLS-intercepting proxy's), for npm inside the build.
extra_ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
"${pod[@]}" build --format docker --network host "${limits[@]}" --build-arg EXTRA_CA_PEM="$extra_ca" \
  -t "$image" . >/tmp/container-build.log 2>&1 || {
  tail -40 /tmp/container-build.log; exit 1; }
echo "built in $(($(date +%s) - start)) s"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $((size / 1024 / 1024)) MiB"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
model_env=()
if [[ -f models/ggml-base.bin ]]; then  # Whisper base from the models volume when present
  model_env=(-e MODEL=whisper -e WHISPER_MODEL_PATH=/models/ggml-base.bin)
fi
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
t0=$(date +%s.%N)
"${pod[@]}" run -d --name "$name" "${limits[@]}" -p "127.0.0.1:$port:8888" \
  -v "$repo/models:/models:ro" "${model_env[@]}" "$image" >/dev/null
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
  if ! podman container exists "$name" || [[ $(podman inspect -f '{{.State.Running}}' "$name") != true ]]; then
    podman logs "$name"; echo "the container stopped"; exit 1
  fi
  if (($(date +%s) - ${t0%.*} > 60)); then podman logs "$name"; echo "no /health in 60 s"; exit 1; fi
  sleep 0.1
done
t1=$(date +%s.%N)
echo "start-up (podman run to /health): $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
podman exec "$name" id -un | grep -qx sra || { echo "not running as the sra user"; exit 1; }

expect="ask not what your country can do for you"
sync=$(curl -sf -F "file=@$audio" "http://127.0.0.1:$port/sync/v1/transcribe")
echo "sync:  $sync"
grep -qi "$expect" <<<"$sync" || { echo "unexpected sync transcription"; exit 1; }
task=$(curl -sf -F "file=@$audio" "http://127.0.0.1:$port/async/v1/transcribe" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["task_id"])')
for _ in $(seq 1 600); do
  body=$(curl -sf "http://127.0.0.1:$port/async/v1/transcribe/$task")
  grep -q '"PENDING"' <<<"$body" || break
  sleep 0.1
done
echo "async: $body"
grep -q '"SUCCESS"' <<<"$body" && grep -qi "$expect" <<<"$body" || { echo "async task failed"; exit 1; }
curl -sf "http://127.0.0.1:$port/docs/swagger-ui-bundle.js" >/dev/null || { echo "no Swagger UI"; exit 1; }
"${pod[@]}" healthcheck run "$name" && echo "HEALTHCHECK: healthy"

"${pod[@]}" stop -t 30 "$name" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
echo "stopped (exit code $code)"
[[ "$code" == 0 ]] || { podman logs "$name" | tail -20; exit 1; }
echo "container test passed"
