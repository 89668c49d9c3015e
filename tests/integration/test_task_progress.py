"""Progress of running async tasks and their cancellation (DELETE /async/v1/transcribe/{id}), on
every bus: the embedded bus, Celery over Redis and RabbitMQ (read by Python Celery as PENDING
while it runs, as the Python project's contract wants, and as REVOKED once cancelled) and the
Huey-role bus. Real audio, a real model, real brokers."""
import time

import pytest
import requests

from conftest import metric, transcribe, wait_until
from test_workers import SEED_TASK, Worker, celery_setup, put_file, rabbit, redis_server  # noqa: F401

# Short PocketSphinx pieces: a minute of speech gives a segment every two seconds of audio.
CHUNKS = dict(POCKETSPHINX_CHUNK_SECONDS=2)


def status(server, task_id):
    r = requests.get(server.url(f"/async/v1/transcribe/{task_id}"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def poll_until(server, task_id, done, timeout=120):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        body = status(server, task_id)
        seen.append(body)
        if done(body):
            return body, seen
        time.sleep(0.05)
    raise AssertionError(f"task {task_id}: condition never met; last: {seen[-1] if seen else None}")


def delete(server, task_id):
    return requests.delete(server.url(f"/async/v1/transcribe/{task_id}"), timeout=10)


def check_progress_then_success(server, task_id):
    """Progress appears, only grows, carries the segments so far; then SUCCESS without it."""
    final, seen = poll_until(server, task_id, lambda b: b["status"] != "PENDING", timeout=180)
    running = [b for b in seen if "progress" in b]
    assert running, "no progress seen while the task ran"
    fractions = [b["progress"] for b in running]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    assert any(0 < f < 1 for f in fractions), fractions
    assert all(b["status"] == "PENDING" for b in running)  # the Python project's values only
    partial = max(running, key=lambda b: len(b["segments"]))
    assert partial["segments"] and all(s["text"] for s in partial["segments"])
    assert [s["end"] for s in partial["segments"]] == sorted(s["end"] for s in partial["segments"])
    assert final["status"] == "SUCCESS" and "progress" not in final and "segments" not in final
    # The partial transcript is the start of the final one.
    assert final["transcription"].startswith(partial["segments"][0]["text"].strip())
    return partial


def check_cancel_running(server, task_id, log):
    poll_until(server, task_id, lambda b: b.get("progress", 0) > 0)
    r = delete(server, task_id)
    assert r.status_code == 202, r.text
    assert r.json() == {"task_id": task_id, "state": "cancelling"}
    body, _ = poll_until(server, task_id, lambda b: b["status"] != "PENDING", timeout=30)
    assert body["status"] == "FAILED" and body["cancelled"] is True and "cancelled" in body["error"]
    deadline = time.time() + 15
    while f"task {task_id}: cancelled" not in log() and time.time() < deadline:
        time.sleep(0.1)
    assert f"task {task_id}: cancelled" in log(), "the worker never stopped the job"
    r = delete(server, task_id)
    assert r.status_code == 409 and "finished" in r.json()["detail"]


def check_cancel_pending(server, task_id, log):
    assert status(server, task_id)["status"] == "PENDING"
    r = delete(server, task_id)
    assert r.status_code == 200, r.text
    assert r.json() == {"task_id": task_id, "state": "cancelled"}
    body = status(server, task_id)
    assert body["status"] == "FAILED" and body["cancelled"] is True
    return body


def test_embedded_bus_progress_and_cancel(make_server, tmp_path, long_wav, goforward_wav):
    server = make_server(workdir=tmp_path, DELETE_AUDIO_AFTER_TASK="true", **CHUNKS)
    uploads = tmp_path / "data" / "files"
    first = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
    check_progress_then_success(server, first)

    def stored_files():
        return sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []

    deadline = time.time() + 10  # the first task's audio goes once its result is stored
    while stored_files() and time.time() < deadline:
        time.sleep(0.05)
    assert stored_files() == []

    # One worker thread: the second task waits behind the first, and is cancelled while it waits.
    running = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
    waiting = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
    poll_until(server, running, lambda b: "progress" in b)
    assert len(stored_files()) == 2
    check_cancel_pending(server, waiting, server.log)
    assert len(stored_files()) == 1, "the cancelled task's audio stays"
    check_cancel_running(server, running, server.log)

    # The route's edges.
    unknown = "9b2f9a0e-3f5e-4a4c-8d3e-2c7d1f0b6a11"
    assert delete(server, unknown).status_code == 404
    assert delete(server, "../../etc/passwd").status_code == 404
    r = requests.put(server.url(f"/async/v1/transcribe/{unknown}"), timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, DELETE"

    # The queue is empty now (the only worker thread is idle): stop, and read the whole log.
    wait_until(lambda: metric(server, "sra_async_backlog_tasks") == 0, what="an empty queue")
    server.stop()
    assert f"task {waiting}: started" not in server.log(), "a cancelled task ran"


def test_celery_progress_and_revoke_are_read_by_python(celery_setup, make_server, tmp_path, long_wav,
                                                      goforward_wav):
    kind, env, app = celery_setup
    env = dict(env, **CHUNKS)
    server = make_server(workdir=tmp_path, **env)
    worker = Worker(tmp_path, env)
    try:
        task_id = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        result = app.AsyncResult(task_id)
        # Running: our API shows its progress; Python Celery still reads PENDING (the PROGRESS
        # state is CELERY_BUS_PROGRESS_STATE's opt-in, tested with the Python project).
        poll_until(server, task_id, lambda b: b.get("progress", 0) > 0)
        assert result.state == "PENDING", result.state
        check_progress_then_success(server, task_id)
        assert result.get(timeout=60)["transcription"]

        running = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        waiting = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
        check_cancel_running(server, running, worker.log)
        assert app.AsyncResult(running).state == "REVOKED"  # as Celery stores a revoked task
        # The waiting one started after the running one stopped, or is cancelled before it does.
        r = delete(server, waiting)
        assert r.status_code in (200, 202, 409)
        if r.status_code == 409:
            assert status(server, waiting)["status"] == "SUCCESS"
        else:
            body, _ = poll_until(server, waiting, lambda b: b["status"] != "PENDING", timeout=30)
            assert body["cancelled"] is True
            assert app.AsyncResult(waiting).state == "REVOKED"
    finally:
        assert worker.stop() == 0


def test_celery_task_revoked_while_queued_never_runs(celery_setup, make_server, tmp_path, goforward_wav):
    kind, env, app = celery_setup
    server = make_server(workdir=tmp_path, **env)
    task_id = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
    check_cancel_pending(server, task_id, server.log)
    worker = Worker(tmp_path, env)  # starts after the cancellation: the message is still queued
    try:
        worker.wait_for(f"task {task_id}: REVOKED already stored")
        assert f"task {task_id}: started" not in worker.log()
        assert status(server, task_id)["cancelled"] is True
    finally:
        assert worker.stop() == 0


@pytest.mark.parametrize("bus", ["huey", "redis"])
def test_redis_only_buses_progress_and_cancel(bus, redis_server, make_server, tmp_path, long_wav, goforward_wav):
    if bus == "huey":
        env = dict(MESSAGE_BUS="speech_recognition_api.extra.huey_bus.HueyMessageBus",
                   HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/8", HUEY_BUS_NAME="progress", **CHUNKS)
    else:
        env = dict(MESSAGE_BUS="redis", REDIS_BUS_URL=f"redis://127.0.0.1:{redis_server.port}/8",
                   REDIS_BUS_NAME="progress", **CHUNKS)
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=8).flushdb()
    server = make_server(workdir=tmp_path, **env)
    queued = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
    check_cancel_pending(server, queued, server.log)
    worker = Worker(tmp_path, env)
    try:
        first = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        check_progress_then_success(server, first)
        running = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        check_cancel_running(server, running, worker.log)
        assert f"task {queued}: started" not in worker.log()
    finally:
        assert worker.stop() == 0
