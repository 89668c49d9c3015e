"""Request ids and logs: X-Request-Id is taken (when well-formed) or made, returned on every
response and carried by every log line of the request, down to the worker that runs its async
task; LOG_FORMAT=json writes one JSON object per line; user input cannot forge log lines."""
import json
import re

import requests

from conftest import transcribe, wait_task, wait_until
from test_workers import SEED_TASK, Worker, celery_env, put_file, redis_server  # noqa: F401


def json_lines(server):
    lines = [line for line in server.log().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must parse


def test_ids_are_taken_or_made_and_returned(make_server, goforward_wav):
    server = make_server()
    r = requests.get(server.url("/health"), headers={"X-Request-Id": "lb-7f3a:42"})
    assert r.headers["X-Request-Id"] == "lb-7f3a:42"
    made = requests.get(server.url("/nowhere")).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", made)
    # Not an id (spaces, too long): replaced by one of ours, never echoed.
    for bad in ["two words", "x" * 200, "<script>"]:
        r = requests.get(server.url("/health"), headers={"X-Request-Id": bad})
        assert r.headers["X-Request-Id"] != bad and re.fullmatch(r"[0-9a-f-]{36}", r.headers["X-Request-Id"])
    r = transcribe(server, goforward_wav, headers={"X-Request-Id": "sync-1"})
    assert r.headers["X-Request-Id"] == "sync-1"
    r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": open(goforward_wav, "rb")},
                      data={"model": "whisper-1", "stream": "true"}, headers={"X-Request-Id": "sse-1"})
    assert r.headers["X-Request-Id"] == "sse-1"
    assert "[sync-1]" in server.log()  # the readable format shows it too


def test_json_logs_follow_a_task_to_its_worker(make_server, goforward_wav):
    server = make_server(LOG_FORMAT="json", EMBEDDED_BUS_POLL_SECONDS=0.1)
    r = transcribe(server, goforward_wav, route="/async/v1/transcribe", headers={"X-Request-Id": "trace-async-9"})
    task = r.json()["task_id"]
    assert wait_task(server, task)["status"] == "SUCCESS"
    # A hostile value quoted in an error message: quotes, a newline, a control character, bad UTF-8.
    hostile = 'en"}\n{"level":"critical","message":"forged\x07\xff'
    r = requests.post(server.url("/async/v1/transcribe"), files={"file": open(goforward_wav, "rb")},
                      data={"language": hostile.encode("latin-1")}, headers={"X-Request-Id": "bad-1"})
    assert r.status_code == 422
    # The access line is written after the answer: wait for it.
    wait_until(lambda: any(line.get("request_id") == "bad-1" and line.get("status") == 422
                           for line in json_lines(server)), what="the refused request's access line")
    lines = json_lines(server)
    assert all({"time", "level", "message"} <= set(line) for line in lines)
    assert not [line for line in lines if line["level"] == "critical"]  # nothing forged
    task_lines = [line for line in lines if line.get("request_id") == "trace-async-9"]
    messages = " | ".join(line["message"] for line in task_lines)
    assert f"task {task}: started" in messages and f"task {task}: SUCCESS" in messages, messages
    access = [line for line in task_lines if line.get("status") == 200]
    assert access and access[0]["route"] == "/async/v1/transcribe" and access[0]["duration_ms"] >= 0
    refused = [line for line in lines if line.get("request_id") == "bad-1"]
    assert any(line.get("status") == 422 for line in refused)


def worker_lines(worker):
    return [json.loads(line) for line in worker.log().splitlines() if line.strip()]


def test_request_ids_travel_in_celery_and_huey_messages(redis_server, make_server, tmp_path, goforward_wav):
    """The id of the submission is in the Celery message (header `request_id`, which Python
    producers can set too) and in the Huey-role task, so the worker's lines carry it."""
    from celery import Celery
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=9).flushdb()
    redis_py.Redis(port=redis_server.port, db=10).flushdb()
    url = f"redis://127.0.0.1:{redis_server.port}"
    celery = celery_env(f"{url}/9", f"{url}/9", LOG_FORMAT="json")
    huey = dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/10", LOG_FORMAT="json")
    for env in (celery, huey):
        server = make_server(workdir=tmp_path / env["MESSAGE_BUS"][-4:], **env)
        worker = Worker(server.workdir, env)
        try:
            r = transcribe(server, goforward_wav, route="/async/v1/transcribe",
                           headers={"X-Request-Id": "trace-bus-1"})
            task = r.json()["task_id"]
            assert wait_task(server, task)["status"] == "SUCCESS"
            worker.wait_for(f"task {task}: SUCCESS")
            mine = " | ".join(line["message"] for line in worker_lines(worker)
                              if line.get("request_id") == "trace-bus-1")
            assert f"task {task}: started" in mine and f"task {task}: SUCCESS" in mine, worker.log()
            if env is celery:  # a Python producer's own id
                app = Celery("seed", broker=f"{url}/9", backend=f"{url}/9")
                sent = app.send_task(SEED_TASK, args=[put_file(server.workdir, goforward_wav)],
                                     headers={"request_id": "py-trace-7"})
                assert sent.get(timeout=60)["transcription"] == "go forward ten meters"
                assert any(line.get("request_id") == "py-trace-7" and f"task {sent.id}: started" in line["message"]
                           for line in worker_lines(worker))
        finally:
            assert worker.stop() == 0
