"""Admission control for async work: the backlog's bounds (tasks, audio seconds, bytes, free
disk) answered with 503 + Retry-After before the body is stored, per-client rate limits (429 in
each route's shape), the backlog visible in /ready and in a pending task's status, and a full
disk that loses nothing already accepted."""
import os
import sqlite3
import subprocess
import time

import openai
import pytest
import requests

from conftest import AUDIO, BINARY, base_env, transcribe, wait_task

JFK = AUDIO / "jfk.wav"  # 11 s, 352 kB


def uploads(workdir):
    folder = workdir / "data" / "files"
    return sorted(p for p in folder.iterdir()) if folder.exists() else []


def task_rows(workdir):
    with sqlite3.connect(workdir / "data" / "tasks.sqlite3") as c:
        return c.execute("select id, status, audio_seconds, audio_bytes from tasks").fetchall()


def start_worker(workdir, **env):
    return subprocess.Popen([str(BINARY), "worker"], cwd=workdir,
                            env=base_env(EMBEDDED_BUS_POLL_SECONDS=0.1, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(worker):
    worker.terminate()
    worker.wait(60)


def test_full_backlog_is_503_before_the_body_then_drains(make_server, tmp_path, goforward_wav):
    workdir = tmp_path / "srv"
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, MAX_PENDING_TASKS=3,
                         BACKLOG_REFRESH_SECONDS=0.2)
    accepted = []
    for _ in range(3):
        r = transcribe(server, goforward_wav, route="/async/v1/transcribe")
        assert r.status_code == 200, r.text
        accepted.append(r.json()["task_id"])
    r = transcribe(server, goforward_wav, route="/async/v1/transcribe")
    assert r.status_code == 503
    assert "MAX_PENDING_TASKS=3" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= 600
    assert len(uploads(workdir)) == 3 and len(task_rows(workdir)) == 3  # nothing stored for it
    ready = requests.get(server.url("/ready"))
    assert ready.status_code == 503 and "MAX_PENDING_TASKS" in ready.json()["detail"]
    # Each accepted task records what it weighs in the backlog.
    for _, status, seconds, size in task_rows(workdir):
        assert status == "PENDING" and 2.5 < seconds < 3.5 and size == goforward_wav.stat().st_size

    worker = start_worker(workdir)
    try:
        for task in accepted:
            assert wait_task(server, task)["status"] == "SUCCESS"
        deadline = time.time() + 10
        while requests.get(server.url("/ready")).status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        assert requests.get(server.url("/ready")).status_code == 200
        r = transcribe(server, goforward_wav, route="/async/v1/transcribe")
        assert r.status_code == 200, r.text
        assert wait_task(server, r.json()["task_id"])["status"] == "SUCCESS"
    finally:
        stop(worker)


def test_pending_task_shows_its_place_and_start(make_server, tmp_path, goforward_wav):
    workdir = tmp_path / "srv"
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, BACKLOG_REFRESH_SECONDS=0.2)
    long_task = transcribe(server, JFK, route="/async/v1/transcribe").json()["task_id"]
    short_task = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
    status = lambda t: requests.get(server.url(f"/async/v1/transcribe/{t}")).json()
    # Shortest audio first: the later, shorter task is next.
    assert status(short_task)["position"] == 1
    assert status(long_task)["position"] == 2
    assert "estimated_start" not in status(long_task)  # no drain rate measured yet
    # Measure a drain rate: a worker finishes a few short tasks while the status is polled.
    more = [transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
            for _ in range(4)]
    worker = start_worker(workdir)
    try:
        seen_start = False
        deadline = time.time() + 120
        while time.time() < deadline:
            s = status(long_task)
            if s["status"] != "PENDING":
                break
            if "estimated_start" in s:
                seen_start = True
                assert s["estimated_start"].endswith("Z") and s["position"] >= 1
            time.sleep(0.1)
        assert seen_start
        for t in [short_task, long_task] + more:
            assert wait_task(server, t)["status"] == "SUCCESS"
        assert "position" not in status(short_task)
    finally:
        stop(worker)


def test_upload_bytes_are_bounded_as_they_arrive(make_server, tmp_path):
    workdir = tmp_path / "srv"
    size = JFK.stat().st_size
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, MAX_PENDING_BYTES=2 * size + 1000)
    assert transcribe(server, JFK, route="/async/v1/transcribe").status_code == 200
    assert transcribe(server, JFK, route="/async/v1/transcribe").status_code == 200
    r = transcribe(server, JFK, route="/async/v1/transcribe")
    assert r.status_code == 503 and "MAX_PENDING_BYTES" in r.json()["detail"], r.text
    assert r.headers["Retry-After"]
    stored = uploads(workdir)
    assert len(stored) == 2 and sum(p.stat().st_size for p in stored) <= 2 * size + 1000


def test_audio_seconds_are_bounded(make_server, tmp_path):
    workdir = tmp_path / "srv"
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, MAX_PENDING_AUDIO_SECONDS=25)
    assert transcribe(server, JFK, route="/async/v1/transcribe").status_code == 200
    assert transcribe(server, JFK, route="/async/v1/transcribe").status_code == 200  # 22 s
    r = transcribe(server, AUDIO / "jfk.mp3", route="/async/v1/transcribe")
    assert r.status_code == 503 and "MAX_PENDING_AUDIO_SECONDS" in r.json()["detail"], r.text
    assert len(uploads(workdir)) == 2


def test_rate_limits_answer_429_in_each_routes_shape(make_server, goforward_wav):
    server = make_server(RATE_LIMIT_REQUESTS_PER_MINUTE=3, EMBEDDED_BUS_WORKERS=0)
    assert transcribe(server, goforward_wav).status_code == 200
    assert transcribe(server, goforward_wav, route="/async/v1/transcribe").status_code == 200
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0)
    with open(goforward_wav, "rb") as f:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    r = transcribe(server, goforward_wav)
    assert r.status_code == 429 and "RATE_LIMIT_REQUESTS_PER_MINUTE" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    with open(goforward_wav, "rb") as f, pytest.raises(openai.RateLimitError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    assert e.value.status_code == 429 and e.value.code == "rate_limit_exceeded"
    assert e.value.response.headers["Retry-After"]
    # Other routes are not limited.
    assert requests.get(server.url("/health")).status_code == 200


def test_audio_rate_limit_counts_seconds(make_server, goforward_wav):
    server = make_server(RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE=15, EMBEDDED_BUS_WORKERS=0)
    route = "/async/v1/transcribe"  # charged as soon as the upload's length is known
    assert transcribe(server, JFK, route=route).status_code == 200  # 11 s: 4 s left
    assert transcribe(server, JFK, route=route).status_code == 200  # some left: admitted, in debt
    r = transcribe(server, goforward_wav)
    assert r.status_code == 429 and "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE" in r.json()["detail"]
    # The debt (7 s at 15 s/min) is repaid in about half a minute.
    assert 20 <= int(r.headers["Retry-After"]) <= 40


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a disk that fills up after a few uploads."""
    # Mounting a tmpfs needs root, as CI has: without it this test fails, it never skips.
    assert os.geteuid() == 0, "this test mounts a 1 MiB tmpfs: run it as root (CI does)"
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs here: {r.stderr.strip()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("floor", [256 << 10, 0])
def test_full_disk_loses_nothing_accepted(make_server, tmp_path, small_disk, goforward_wav, floor):
    # With a floor, uploads are refused while 256 KiB are still free; without one, the disk really
    # fills up mid-upload. Either way: 503, no half-written file, and every accepted task finishes.
    workdir = tmp_path / "srv"
    env = dict(LOCAL_STORAGE_FOLDER_PATH=small_disk, MIN_FREE_DISK_BYTES=floor)
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, **env)
    accepted, refused = [], []
    for _ in range(16):
        r = transcribe(server, goforward_wav, route="/async/v1/transcribe")
        assert r.status_code in (200, 503), r.text
        (accepted if r.status_code == 200 else refused).append(r)
    assert 3 <= len(accepted) < 16 and refused
    assert all(r.headers["Retry-After"] for r in refused)
    if floor:
        assert "MIN_FREE_DISK_BYTES" in refused[0].json()["detail"]
        assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize >= floor - 120_000
    files = list(small_disk.iterdir())
    assert len(files) == len(accepted) and not [p for p in files if p.name.endswith(".part")]
    worker = start_worker(workdir, DELETE_AUDIO_AFTER_TASK="true", **env)
    try:
        for r in accepted:
            assert wait_task(server, r.json()["task_id"])["status"] == "SUCCESS"
    finally:
        stop(worker)
    assert list(small_disk.iterdir()) == []
    r = transcribe(server, JFK, route="/async/v1/transcribe")
    assert r.status_code == 200, r.text
