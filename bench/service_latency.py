#!/usr/bin/env python3
"""Latency of the service as a client sees it, all figures from one run on one machine.

- a sync transcription of ../shared/audio/seed-audio.wav (14.5 s of speech): the first request
  (which builds the model) and then warm requests;
- /health idle, and /health while a long sync transcription runs on the inference pool.

Usage: bench/service_latency.py [--binary build/app/speech-recognition-api] [--out FILE]
Writes a Markdown report (default: bench/service-latency.md).
"""
import argparse
import concurrent.futures
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave

import requests

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("SRA_SHARED_DIR", REPO.parent / "shared"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(x):
    return f"{x * 1000:.1f}"


def post(url, path):
    with open(path, "rb") as f:
        t0 = time.perf_counter()
        r = requests.post(url, files={"file": (path.name, f)}, timeout=600)
        return time.perf_counter() - t0, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "build/app/speech-recognition-api"))
    ap.add_argument("--out", default=str(REPO / "bench/service-latency.md"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="sra-bench-"))
    long_wav = work / "long.wav"
    frames = b""
    for _ in range(4):
        with wave.open(str(SHARED / "audio/seed-audio.wav")) as w:
            frames += w.readframes(w.getnframes())
    with wave.open(str(long_wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(frames)

    port = free_port()
    env = {"PATH": os.environ["PATH"], "LOG_LEVEL": "warn", "INFERENCE_THREADS": "1"}
    proc = subprocess.Popen([args.binary, "serve", "--port", str(port)], cwd=work, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(base + "/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        seed = SHARED / "audio/seed-audio.wav"
        cold, r = post(base + "/sync/v1/transcribe", seed)
        assert r.status_code == 200, r.text
        warm = []
        for _ in range(args.runs):
            t, r = post(base + "/sync/v1/transcribe", seed)
            assert r.status_code == 200
            warm.append(t)

        session = requests.Session()
        idle = []
        for _ in range(300):
            t0 = time.perf_counter()
            session.get(base + "/health")
            idle.append(time.perf_counter() - t0)

        busy = []
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = pool.submit(post, base + "/sync/v1/transcribe", long_wav)
            time.sleep(0.5)
            while not job.done():
                t0 = time.perf_counter()
                session.get(base + "/health")
                busy.append(time.perf_counter() - t0)
                time.sleep(0.01)
            long_time, r = job.result()
            assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)

    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    report = f"""# Service latency

Measured by `bench/service_latency.py` on {platform.node()} ({cpu}, {os.cpu_count()} cores),
{time.strftime('%Y-%m-%d')}. Defaults: `MODEL=pocketsphinx`, `INFERENCE_THREADS=1`, a Release build.
Client and server on one machine, over loopback.

## Sync transcription of `seed-audio.wav` (14.5 s of speech)

| request | latency (ms) | real-time factor |
|---|---|---|
| first (builds the model) | {ms(cold)} | {cold / 14.5:.3f} |
| warm, median of {args.runs} | {ms(statistics.median(warm))} | {statistics.median(warm) / 14.5:.3f} |
| warm, min / max | {ms(min(warm))} / {ms(max(warm))} | |

## `/health`

| condition | requests | p50 (ms) | p99 (ms) | max (ms) |
|---|---|---|---|---|
| idle | {len(idle)} | {ms(percentile(idle, 50))} | {ms(percentile(idle, 99))} | {ms(max(idle))} |
| during a {long_time:.1f} s sync transcription of 58 s of audio | {len(busy)} | {ms(percentile(busy, 50))} | {ms(percentile(busy, 99))} | {ms(max(busy))} |
"""
    pathlib.Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    sys.exit(main())
