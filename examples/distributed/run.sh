#!/usr/bin/env bash
# A distributed deployment on one machine, every role its own process, as it would run across
# machines: Redis (the Celery broker and result backend), an S3 server (moto's, standing in for
# AWS S3 or MinIO), the API, and three workers. It uploads an audio file through the async API,
# waits for the result and stops everything.
#
# Usage: examples/distributed/run.sh [AUDIO_FILE]
# Needs: the built binary (scripts/build.sh), redis-server, and the test tools in .venv
#        (scripts/python-env.sh tests/integration/requirements.txt) for moto and boto3.
set -euo pipefail
cd "$(dirname "$0")/../.."
audio="${1:-/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav}"
bin="$PWD/build/app/speech-recognition-api"
python="$PWD/.venv/bin/python"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

redis_port=$(free_port); s3_port=$(free_port); api_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --appendonly yes --save "" > "$work/redis.log" 2>&1 &
pids+=($!)
"$PWD/.venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$work/s3.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" && wait_port "$s3_port"
"$python" -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$s3_port', region_name='us-east-1', aws_access_key_id='demo', aws_secret_access_key='demo').create_bucket(Bucket='audio')"

# What every node shares: the same .env on every machine (here: the same variables).
export MESSAGE_BUS=celery CELERY_BUS_BROKER="redis://127.0.0.1:$redis_port/0" \
       STORAGE=s3 S3_STORAGE_BUCKET_NAME=audio S3_STORAGE_FILE_PREFIX=uploads/ \
       AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" S3_STORAGE_FORCE_PATH_STYLE=true \
       AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 LOG_LEVEL=warn

"$bin" serve --port "$api_port" > "$work/api.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
  (cd "$work" && exec "$bin" worker --concurrency 1) > "$work/worker$i.log" 2>&1 &
  pids+=($!)
done
wait_port "$api_port"
curl -fsS "http://127.0.0.1:$api_port/ready"; echo
task=$(curl -fsS -F "file=@$audio" "http://127.0.0.1:$api_port/async/v1/transcribe" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["task_id"])')
echo "task $task"
for _ in $(seq 600); do
  result=$(curl -fsS "http://127.0.0.1:$api_port/async/v1/transcribe/$task")
  case "$result" in *PENDING*) sleep 0.2 ;; *) echo "$result"; break ;; esac
done
case "$result" in *SUCCESS*) exit 0 ;; *) echo "no result: $result" >&2; exit 1 ;; esac
