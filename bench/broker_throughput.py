"""Broker throughput: 200 async tasks drained by 3 worker processes (2 threads each) with an
instant model (the example plugin), so the time is the bus's own: taking, leasing, storing
results. Tasks are submitted through the API first, then the workers start; the clock runs from
their start to the last result. Buses and binaries alternate round by round; the report
(bench/broker-throughput.md) is written whole by this script, medians in a Markdown table.

Usage: python bench/broker_throughput.py [--rounds 3] [--tasks 200] [--smoke]
                                         [--binary LABEL=PATH ...] [--buses celery,celery-tls,...]
                                         [--out bench/broker-throughput.md]
A binary without TLS or the Huey wire format (an older build) is run only on the buses it knows.
--smoke: one round of 20 tasks on every bus (CI runs it so that the script cannot rot).
"""
import argparse
import datetime
import os
import platform
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import redis as redis_py  # noqa: E402
import requests  # noqa: E402

from brokers import Certificates, RedisServer  # noqa: E402
from conftest import BUILD, PS_DATA, free_port, raw_to_wav  # noqa: E402

PLUGIN = BUILD / "examples" / "plugin-model" / "libsra_vad_model.so"


def bus_env(bus, redis, db):
    if bus == "celery":
        url = f"redis://127.0.0.1:{redis.port}/{db}"
        return dict(MESSAGE_BUS="celery", CELERY_BUS_BROKER=url, CELERY_BUS_BACKEND=url)
    if bus == "celery-tls":
        url = redis.tls_url(db=db)
        return dict(MESSAGE_BUS="celery", CELERY_BUS_BROKER=url, CELERY_BUS_BACKEND=url)
    if bus == "huey":
        return dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis.port}/{db}", HUEY_BUS_NAME="bench")
    if bus == "huey-tls":
        return dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=redis.tls_url(db=db), HUEY_BUS_NAME="bench")
    if bus == "redis":  # builds before the Huey wire format read HUEY_BUS_* for this layout
        return dict(MESSAGE_BUS="redis", REDIS_BUS_URL=f"redis://127.0.0.1:{redis.port}/{db}",
                    HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis.port}/{db}")
    raise ValueError(bus)


def one_round(binary, bus, redis, tasks, speech, workdir):
    db = 3
    redis_py.Redis(port=redis.port, db=db).flushdb()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LOG_LEVEL": "warning",
           "MODEL": str(PLUGIN), "MAX_PENDING_TASKS": str(tasks * 2), **bus_env(bus, redis, db)}
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--port", str(port)], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        if requests.get(url + "/ready", timeout=5).status_code != 200:
            return None  # this binary does not speak this bus
        data = speech.read_bytes()
        ids = [requests.post(url + "/async/v1/transcribe", files={"file": ("s.wav", data)}, timeout=30)
               .json()["task_id"] for _ in range(tasks)]
        started = time.perf_counter()
        workers = [subprocess.Popen([binary, "worker", "--concurrency", "2"], cwd=workdir, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(3)]
        try:
            pending = set(ids)
            while pending:
                for task_id in list(pending)[:50]:
                    if requests.get(f"{url}/async/v1/transcribe/{task_id}", timeout=10).json()["status"] != "PENDING":
                        pending.discard(task_id)
                if time.perf_counter() - started > 300:
                    raise RuntimeError(f"{bus}: {len(pending)} tasks never finished")
            return time.perf_counter() - started
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
    finally:
        server.terminate()
        server.wait(30)


BUS_NAMES = {
    "celery": "celery (Redis broker and backend)",
    "celery-tls": "celery over `rediss://` (broker and backend)",
    "huey": "huey (Huey 2.5's pickled messages and results)",
    "huey-tls": "huey over TLS",
    "redis": "redis (our own layout)",
}


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--binary", action="append", default=[])
    p.add_argument("--buses", default="celery,celery-tls,huey,huey-tls,redis")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", default=str(HERE / "broker-throughput.md"))
    a = p.parse_args()
    if a.smoke:
        a.rounds, a.tasks = 1, 20
    binaries = dict(b.split("=", 1) for b in a.binary) or {"this build": str(BUILD / "app" / "speech-recognition-api")}
    buses = a.buses.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        speech = raw_to_wav(PS_DATA / "goforward.raw", tmp / "goforward.wav")
        redis = RedisServer(tmp / "redis", certificates=Certificates(tmp / "certs"))
        times = {}
        try:
            for r in range(a.rounds):
                for bus in buses:
                    for label, binary in binaries.items():
                        t = one_round(binary, bus, redis, a.tasks, speech, tmp)
                        if t is not None:
                            times.setdefault((bus, label), []).append(t)
                            print(f"round {r + 1} {bus:11s} {label:12s} {t:6.2f} s", file=sys.stderr)
        finally:
            redis.stop()
    command = "python bench/broker_throughput.py" + (" --smoke" if a.smoke else "") + \
        f" --rounds {a.rounds} --tasks {a.tasks} --buses {a.buses}" + \
        "".join(f' --binary "{b}"' for b in a.binary)
    lines = [
        "# Broker throughput: the buses on one Redis, plain and TLS",
        "",
        f"`{command}`",
        "",
        f"{a.tasks} async tasks submitted through the API, then 3 `worker` processes (2 threads each) "
        "start and drain them; the clock runs from the workers' start until the API reports the last "
        "task finished (the script polls the status route, 50 ids per pass, so the figure includes "
        "that polling and the workers' start-up). The model is the example plugin, which answers at "
        "once: the time is the bus's (take, lease, store the result, release). One Redis (append-only "
        "file, fsync always) with a TLS port; certificates made by the test CA. Buses and binaries "
        f"alternate round by round; medians of {a.rounds} rounds. {os.cpu_count()} cores "
        f"({cpu_name()}), {datetime.date.today().isoformat()}.",
        "",
        f"| bus | binary | {a.tasks} tasks drained, median of {a.rounds} (s) | tasks/s |",
        "|---|---|---|---|",
    ]
    for (bus, label), ts in times.items():
        m = statistics.median(ts)
        lines.append(f"| {BUS_NAMES.get(bus, bus)} | {label} | {m:.2f} | {a.tasks / m:.0f} |")
    missing = [(bus, label) for bus in buses for label in binaries if (bus, label) not in times]
    if missing:
        lines += ["", "Not run (the binary does not speak the bus): " +
                  ", ".join(f"{bus} with {label}" for bus, label in missing) + "."]
    report = "\n".join(lines) + "\n"
    print(report)
    pathlib.Path(a.out).write_text(report)
    return 0 if not missing or len(binaries) > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
