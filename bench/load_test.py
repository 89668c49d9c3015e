#!/usr/bin/env python3
"""Load test: many concurrent clients of every kind against one `serve`, for a fixed time.

Clients (threads), mixed round-robin by kind:
- sync: POST /sync/v1/transcribe with a short clip;
- openai: POST /v1/audio/transcriptions (json);
- sse: POST /v1/audio/transcriptions with stream=true, reading the events;
- async: POST /async/v1/transcribe, then poll GET /async/v1/transcribe/{id} until it ends;
- slow: uploads a clip at ~1 KiB/s (below HTTP_MIN_UPLOAD_BYTES_PER_SECOND after its grace);
- leaver: sends a whole request for a long file and hangs up after 1 s;
- flood: POST /async/v1/transcribe as fast as it can, never polling (an open-loop producer that
  only waits a tenth of Retry-After when refused): this is what the backlog's bounds are for.
The server runs with the async backlog bounded (--max-pending-tasks, --max-pending-bytes) and
DELETE_AUDIO_AFTER_TASK, so its upload folder holds exactly the unfinished uploads; it is measured
every 0.1 s (peak bytes and files). One more thread probes /health every 50 ms. After the time is up, every accepted async task is
waited for: accepted vs finished must be equal (nothing accepted is lost).

Reports requests served by kind and status, p50/p99 latency per kind, /health p50/p99/max under
load, peak RSS of the server, async tasks accepted vs finished, and whether the server stayed up.
Usage: bench/load_test.py [--clients 64] [--seconds 60] [--out bench/load-test.md]
Exits non-zero if a task was lost, a 500 was seen, or the server died.
"""
import argparse
import collections
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave

import requests

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("SRA_SHARED_DIR", REPO.parent / "shared"))
MODEL = SHARED / "whisper" / "models" / "ggml-tiny-test-f16.bin"
CLIP = SHARED / "whisper" / "audio" / "dev" / "dev_00000.wav"
KINDS = ["sync", "openai", "sse", "async", "flood", "flood", "sync", "slow", "leaver"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = collections.Counter()  # (kind, status) -> count
        self.latency = collections.defaultdict(list)
        self.accepted = []

    def record(self, kind, status, seconds):
        with self.lock:
            self.status[(kind, status)] += 1
            if isinstance(status, int) and status < 300:
                self.latency[kind].append(seconds)


def multipart(fields, data, boundary="loadtestboundary"):
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
             for k, v in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                 f"Content-Type: audio/wav\r\n\r\n".encode() + data + f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def client(kind, base, port, clip, long_clip, stats, stop):
    session = requests.Session()
    while not stop.is_set():
        started = time.time()
        try:
            if kind == "flood":
                r = session.post(base + "/async/v1/transcribe", files={"file": ("a.wav", clip)}, timeout=120)
                status = r.status_code
                if status in (429, 503) and "Retry-After" not in r.headers:
                    status = f"{status} without Retry-After"
                stats.record(kind, status, time.time() - started)
                if r.status_code == 200:
                    with stats.lock:
                        stats.accepted.append(r.json()["task_id"])
                elif r.status_code in (429, 503):
                    time.sleep(min(float(r.headers.get("Retry-After", "1")), 10) / 10)
            elif kind in ("sync", "openai", "async"):
                route = {"sync": "/sync/v1/transcribe", "openai": "/v1/audio/transcriptions",
                         "async": "/async/v1/transcribe"}[kind]
                fields = {"model": "whisper-1"} if kind == "openai" else {}
                r = session.post(base + route, files={"file": ("a.wav", clip)}, data=fields, timeout=120)
                stats.record(kind, r.status_code, time.time() - started)
                if kind == "async" and r.status_code == 200:
                    task = r.json()["task_id"]
                    with stats.lock:
                        stats.accepted.append(task)
                    while not stop.is_set():
                        p = session.get(f"{base}/async/v1/transcribe/{task}", timeout=30)
                        stats.record("poll", p.status_code, 0)
                        if p.status_code != 200 or p.json()["status"] != "PENDING":
                            break
                        time.sleep(0.5)
                elif r.status_code == 503:
                    time.sleep(float(r.headers.get("Retry-After", "1")) / 5)
            elif kind == "sse":
                r = session.post(base + "/v1/audio/transcriptions", files={"file": ("a.wav", clip)},
                                 data={"model": "whisper-1", "stream": "true"}, timeout=120, stream=True)
                done = False
                for line in r.iter_lines():
                    if b"transcript.text.done" in line:
                        done = True
                r.close()
                stats.record(kind, r.status_code if (done or r.status_code != 200) else "sse-incomplete",
                             time.time() - started)
                if r.status_code == 503:
                    time.sleep(0.2)
            elif kind == "slow":
                body, ctype = multipart({}, clip)
                s = socket.create_connection(("127.0.0.1", port), timeout=40)
                s.sendall(f"POST /sync/v1/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode())
                answer = b""
                for i in range(0, len(body), 1024):
                    if stop.is_set():
                        break
                    try:
                        s.sendall(body[i:i + 1024])
                    except OSError:
                        break
                    s.setblocking(False)
                    try:
                        answer = s.recv(4096)
                    except (BlockingIOError, OSError):
                        pass
                    s.setblocking(True)
                    if answer:
                        break
                    time.sleep(1)
                s.close()
                status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else "cut"
                stats.record(kind, status, time.time() - started)
            elif kind == "leaver":
                body, ctype = multipart({}, long_clip)
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                s.sendall(f"POST /sync/v1/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                time.sleep(1)
                s.close()
                stats.record(kind, "left", time.time() - started)
        except requests.RequestException as e:
            stats.record(kind, type(e).__name__, time.time() - started)
        except OSError as e:
            stats.record(kind, type(e).__name__, time.time() - started)


def health_probe(base, samples, stop):
    session = requests.Session()
    while not stop.is_set():
        started = time.time()
        try:
            ok = session.get(base + "/health", timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        samples.append((time.time() - started, ok))
        time.sleep(0.05)


def folder_probe(folder, peak, stop):
    """Peak bytes and files of the upload folder (every 0.1 s)."""
    while not stop.is_set():
        try:
            sizes = [p.stat().st_size for p in folder.iterdir()]
        except OSError:
            sizes = []
        peak["bytes"] = max(peak.get("bytes", 0), sum(sizes))
        peak["files"] = max(peak.get("files", 0), len(sizes))
        time.sleep(0.1)


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "build" / "app" / "speech-recognition-api"))
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--drain-seconds", type=float, default=600)
    ap.add_argument("--max-pending-tasks", type=int, default=64)
    ap.add_argument("--max-pending-bytes", type=int, default=4 << 20)
    ap.add_argument("--out", default=str(REPO / "bench" / "load-test.md"))
    args = ap.parse_args()

    with wave.open(str(CLIP)) as w:
        clip_seconds = w.getnframes() / w.getframerate()
    clip = CLIP.read_bytes()
    with wave.open(str(CLIP)) as w:
        frames = w.readframes(w.getnframes())
    work = pathlib.Path(tempfile.mkdtemp(prefix="sra-load-"))
    long_path = work / "long.wav"
    with wave.open(str(long_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(frames * 60)
    long_clip = long_path.read_bytes()

    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LOG_LEVEL": "warn", "MODEL": "whisper",
           "WHISPER_MODEL_PATH": str(MODEL), "WHISPER_TEMPERATURE": "0", "WHISPER_THREADS": "1",
           "INFERENCE_THREADS": "2", "INFERENCE_QUEUE_SIZE": "16", "EMBEDDED_BUS_WORKERS": "1",
           "HTTP_MIN_UPLOAD_BYTES_PER_SECOND": "4096", "DELETE_AUDIO_AFTER_TASK": "true",
           "MAX_PENDING_TASKS": str(args.max_pending_tasks),
           "MAX_PENDING_BYTES": str(args.max_pending_bytes)}
    log = open(work / "server.log", "wb")
    # SRA_LOAD_WRAP: a command to run the server under (gdb, valgrind), for investigations.
    wrap = os.environ.get("SRA_LOAD_WRAP", "").split()
    server = subprocess.Popen(wrap + [args.binary, "serve", "--port", str(port)], cwd=work, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.05)

    stats, stop, health = Stats(), threading.Event(), []
    threads = [threading.Thread(target=client, args=(KINDS[i % len(KINDS)], base, port, clip, long_clip,
                                                     stats, stop), daemon=True)
               for i in range(args.clients)]
    threads.append(threading.Thread(target=health_probe, args=(base, health, stop), daemon=True))
    peak = {}
    folder_stop = threading.Event()
    folder = threading.Thread(target=folder_probe, args=(work / "data" / "files", peak, folder_stop),
                              daemon=True)
    folder.start()
    started = time.time()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    load_wall = time.time() - started

    # Every accepted task must end (SUCCESS or FAILED): none may be lost or stay PENDING.
    outcomes = collections.Counter()
    deadline = time.time() + args.drain_seconds
    for task in stats.accepted:
        while True:
            r = requests.get(f"{base}/async/v1/transcribe/{task}", timeout=30)
            status = r.json().get("status") if r.status_code == 200 else f"HTTP {r.status_code}"
            if status != "PENDING" or time.time() > deadline:
                outcomes[status] += 1
                break
            time.sleep(0.5)
    folder_stop.set()
    folder.join()
    alive = server.poll() is None
    rss = peak_rss_mib(server.pid) if alive else float("nan")
    server.terminate()
    # Requests still in flight get the server's shutdown grace (SHUTDOWN_GRACE_SECONDS, 60 s).
    try:
        stopped = server.wait(timeout=120) is not None
    except subprocess.TimeoutExpired:
        stopped = False
        server.kill()
        server.wait()

    lines = [f"# Load test: {args.clients} clients for {args.seconds:.0f} s", "",
             f"`bench/load_test.py --clients {args.clients} --seconds {args.seconds:.0f}` on "
             f"{platform.machine()}, {os.cpu_count()} cores; MODEL=whisper with the tiny test model "
             f"(greedy), INFERENCE_THREADS=2, INFERENCE_QUEUE_SIZE=16; clip {CLIP.name} "
             f"({clip_seconds:.1f} s); the leavers send the clip 60 times over and hang up after 1 s; "
             f"MAX_PENDING_TASKS={args.max_pending_tasks}, MAX_PENDING_BYTES={args.max_pending_bytes}, "
             f"one embedded worker thread.",
             "", "| client | status | count | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    total = 0
    for (kind, status), count in sorted(stats.status.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        total += count
        lat = stats.latency.get(kind, []) if isinstance(status, int) and status < 300 else []
        p50 = f"{percentile(lat, 50) * 1000:.0f}" if lat and kind != "poll" else ""
        p99 = f"{percentile(lat, 99) * 1000:.0f}" if lat and kind != "poll" else ""
        lines.append(f"| {kind} | {status} | {count} | {p50} | {p99} |")
    h = [s for s, ok in health]
    lines += ["", f"- requests: {total} in {load_wall:.0f} s",
              f"- /health under load: {len(h)} probes, {sum(not ok for _, ok in health)} failed; "
              f"p50 {percentile(h, 50) * 1000:.1f} ms, p99 {percentile(h, 99) * 1000:.1f} ms, "
              f"max {max(h) * 1000:.1f} ms",
              f"- async tasks accepted: {len(stats.accepted)}; finished: "
              f"{sum(v for k, v in outcomes.items() if k in ('SUCCESS', 'FAILED'))} "
              f"({dict(outcomes)}); lost: {len(stats.accepted) - outcomes['SUCCESS'] - outcomes['FAILED']}",
              f"- upload folder peak: {peak.get('bytes', 0) / 2**20:.2f} MiB in {peak.get('files', 0)} files "
              f"(quota {args.max_pending_bytes / 2**20:.2f} MiB, {args.max_pending_tasks} tasks)",
              f"- server peak RSS: {rss:.0f} MiB; alive at the end: {alive}; stopped on SIGTERM: {stopped}"]
    report = "\n".join(lines) + "\n"
    print(report)
    pathlib.Path(args.out).write_text(report)
    lost = len(stats.accepted) - outcomes["SUCCESS"] - outcomes["FAILED"]
    five_hundreds = sum(c for (k, s), c in stats.status.items() if s == 500)
    no_retry_after = sum(c for (k, s), c in stats.status.items() if "without Retry-After" in str(s))
    over_quota = peak.get("bytes", 0) > args.max_pending_bytes
    healthy = all(ok for _, ok in health)
    return 0 if alive and stopped and lost == 0 and five_hundreds == 0 and healthy and not no_retry_after \
        and not over_quota else 1


if __name__ == "__main__":
    sys.exit(main())
