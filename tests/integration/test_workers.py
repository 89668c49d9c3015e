"""Workers on many machines: Celery's protocol over Redis and RabbitMQ with real Python Celery,
the Huey and redis buses, at-least-once delivery through crashes and broker restarts."""
import json
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from brokers import RabbitServer, RedisServer
from conftest import BINARY, PLUGIN, PS_DATA, base_env, metric, raw_to_wav, transcribe, wait_task, wait_until

SEED_TASK = "speech_recognition_api.extra.celery_bus.celery_bus.celery_task"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory):
    server = RabbitServer(tmp_path_factory.mktemp("rabbit"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return raw_to_wav(PS_DATA / "goforward.raw", tmp_path_factory.mktemp("speech") / "goforward.wav")


def celery_env(broker, backend, **extra):
    env = dict(MESSAGE_BUS="speech_recognition_api.extra.celery_bus.CeleryMessageBus", CELERY_BUS_BROKER=broker,
               CELERY_BUS_BACKEND=backend, CELERY_BUS_VISIBILITY_TIMEOUT=2, CELERY_BUS_POLL_SECONDS=0.05,
               CELERY_BUS_RETRY_DELAY_SECONDS=0.2)
    env.update(extra)
    return env


@pytest.fixture(params=["redis", "amqp"])
def celery_setup(request, redis_server, tmp_path):
    """(environment, python Celery app) for a broker, with a fresh Redis db as result backend."""
    from celery import Celery
    db = {"redis": 1, "amqp": 2}[request.param]
    backend = f"redis://127.0.0.1:{redis_server.port}/{db}"
    broker = f"redis://127.0.0.1:{redis_server.port}/{db + 2}" if request.param == "redis" \
        else request.getfixturevalue("rabbit").url
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=db).flushdb()
    redis_py.Redis(port=redis_server.port, db=db + 2).flushdb()
    app = Celery("seed", broker=broker, backend=backend)
    return request.param, celery_env(broker, backend), app


class Worker:
    def __init__(self, workdir, env, concurrency=1):
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([str(BINARY), "worker", "--concurrency", str(concurrency)], cwd=workdir,
                                     env=base_env(**env), stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.log()):
                return
            time.sleep(0.05)
        raise AssertionError(f"worker never logged {pattern!r}:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        return self.proc.returncode


def put_file(workdir, path):
    r = subprocess.run([str(BINARY), "storage", "put", str(path)], cwd=workdir, env=base_env(), capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def test_python_celery_producer_and_our_worker(celery_setup, tmp_path, speech):
    kind, env, app = celery_setup
    worker = Worker(tmp_path, env, concurrency=2)
    try:
        good = app.send_task(SEED_TASK, args=[put_file(tmp_path, speech)])
        assert good.get(timeout=60)["transcription"] == "go forward ten meters"
        assert good.state == "SUCCESS"
        # A poison task (not audio) is FAILED once, with its reason, as Python sees failures.
        junk = tmp_path / "junk.wav"
        junk.write_bytes(b"not audio" * 100)
        bad = app.send_task(SEED_TASK, args=[put_file(tmp_path, junk)])
        with pytest.raises(Exception) as e:
            bad.get(timeout=60)
        assert "audio" in str(e.value) and bad.state == "FAILURE"
    finally:
        assert worker.stop() == 0
    # The whole log, the worker stopped: the poison task was started once, never again.
    assert worker.log().count(f"task {bad.id}: started") == 1


def test_our_api_tasks_are_read_by_python_asyncresult(celery_setup, make_server, tmp_path, speech):
    kind, env, app = celery_setup
    server = make_server(workdir=tmp_path, **env)
    worker = Worker(tmp_path, env)
    try:
        assert requests.get(server.url("/ready")).json() == {"status": "ready"}
        task_id = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
        result = app.AsyncResult(task_id).get(timeout=60)
        assert result["transcription"] == "go forward ten meters"
        assert wait_task(server, task_id) == {"status": "SUCCESS", "transcription": "go forward ten meters"}
        r = requests.get(server.url(f"/async/v1/transcribe/{task_id}?response_format=verbose_json"))
        assert r.json()["text"] == "go forward ten meters"
    finally:
        worker.stop()


def test_a_worker_killed_mid_task_leaves_it_to_another(celery_setup, make_server, tmp_path, long_wav):
    kind, env, app = celery_setup
    server = make_server(workdir=tmp_path, **env)
    first = Worker(tmp_path, env)
    task_id = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
    first.wait_for(f"task {task_id}: started \\(delivery 1")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert f"task {task_id}: SUCCESS" not in first.log(), "the task ended before the kill"
    second = Worker(tmp_path, env)
    try:
        body = wait_task(server, task_id, timeout=180)
        assert body["status"] == "SUCCESS" and len(body["transcription"].split()) > 20
        assert f"task {task_id}: started (delivery 2" in second.log()
    finally:
        second.stop()


@pytest.mark.parametrize("bus", ["celery", "huey", "redis"])
def test_a_task_that_kills_its_worker_fails_after_max_deliveries(bus, redis_server, make_server, tmp_path,
                                                                 long_wav):
    """*_BUS_MAX_DELIVERIES=1: the one delivery's worker is killed mid-task, so the next worker
    to take it gives up at once: FAILED with the reason, never run again, never lost."""
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=9).flushdb()
    redis_py.Redis(port=redis_server.port, db=10).flushdb()
    url = f"redis://127.0.0.1:{redis_server.port}"
    env = {
        "celery": celery_env(f"{url}/9", f"{url}/10", CELERY_BUS_MAX_DELIVERIES=1),
        "huey": dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/9",
                     HUEY_BUS_NAME="deliveries", HUEY_BUS_VISIBILITY_TIMEOUT=2, HUEY_BUS_MAX_DELIVERIES=1),
        "redis": dict(MESSAGE_BUS="redis", REDIS_BUS_URL=f"{url}/9", REDIS_BUS_NAME="deliveries",
                      REDIS_BUS_VISIBILITY_TIMEOUT=2, REDIS_BUS_MAX_DELIVERIES=1),
    }[bus]
    server = make_server(workdir=tmp_path, **env)
    task_id = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
    first = Worker(tmp_path, env)
    first.wait_for(f"task {task_id}: started \\(delivery 1")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    second = Worker(tmp_path, env)
    try:
        body = wait_task(server, task_id, timeout=120)
        assert body["status"] == "FAILED", body
        assert "gave up after 1 deliveries that never finished" in body["error"], body
        assert f"task {task_id}: started" not in second.log()  # given up, not run
    finally:
        second.stop()


def test_broker_restarts_lose_nothing(celery_setup, make_server, tmp_path, speech, redis_server, request):
    kind, env, app = celery_setup
    server = make_server(workdir=tmp_path, **env)
    worker = Worker(tmp_path, env, concurrency=2)
    try:
        ids = [transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"] for _ in range(4)]
        broker = redis_server if kind == "redis" else request.getfixturevalue("rabbit")
        broker.restart()
        if kind == "amqp":  # the backend too
            redis_server.restart()
        ids += [transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"] for _ in range(4)]
        results = [wait_task(server, i, timeout=180) for i in ids]
        assert [r["status"] for r in results] == ["SUCCESS"] * 8
        assert worker.proc.poll() is None, "the worker reconnects instead of exiting"
    finally:
        worker.stop()


def test_200_tasks_over_3_worker_processes_each_result_stored_once(redis_server, make_server, tmp_path, speech):
    import redis as redis_py
    backend = f"redis://127.0.0.1:{redis_server.port}/5"
    broker = f"redis://127.0.0.1:{redis_server.port}/6"
    redis_py.Redis(port=redis_server.port, db=5).flushdb()
    redis_py.Redis(port=redis_server.port, db=6).flushdb()
    env = celery_env(broker, backend, MODEL=str(PLUGIN))  # a fast model: this is about delivery
    published = []
    listener = redis_py.Redis(port=redis_server.port, db=5).pubsub()
    listener.psubscribe("celery-task-meta-*")
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            m = listener.get_message(timeout=0.2)
            # Final states only (with CELERY_BUS_PROGRESS_STATE a running task publishes PROGRESS).
            if m and m["type"] == "pmessage" and json.loads(m["data"])["status"] in ("SUCCESS", "FAILURE"):
                published.append(m["channel"].decode().removeprefix("celery-task-meta-"))

    thread = threading.Thread(target=listen)
    thread.start()
    server = make_server(workdir=tmp_path, **env)
    workers = [Worker(tmp_path, env, concurrency=2) for _ in range(3)]
    try:
        ids = [transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"] for _ in range(200)]
        results = [wait_task(server, i, timeout=300) for i in ids]
        assert all(r["status"] == "SUCCESS" for r in results)
        wait_until(lambda: len(published) >= len(ids), what="every result's publication")
    finally:
        for w in workers:
            w.stop()
        stop.set()
        thread.join()
    assert sorted(published) == sorted(ids), "every result published exactly once"
    assert sum(1 for w in workers if "SUCCESS" in w.log()) >= 2, "the work was shared"


@pytest.mark.parametrize("bus", ["huey", "redis"])
def test_redis_only_buses_end_to_end_with_crash_and_restart(bus, redis_server, make_server, tmp_path, speech,
                                                            long_wav):
    """The Huey bus (Huey's wire format) and the redis bus (our own layout): a worker killed
    mid-task and a Redis restart lose nothing."""
    if bus == "huey":
        env = dict(MESSAGE_BUS="speech_recognition_api.extra.huey_bus.HueyMessageBus",
                   HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/7", HUEY_BUS_NAME="test",
                   HUEY_BUS_VISIBILITY_TIMEOUT=2)
    else:
        env = dict(MESSAGE_BUS="redis", REDIS_BUS_URL=f"redis://127.0.0.1:{redis_server.port}/7",
                   REDIS_BUS_NAME="test", REDIS_BUS_VISIBILITY_TIMEOUT=2)
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=7).flushdb()
    server = make_server(workdir=tmp_path, **env)
    # A minute of speech first: the worker is killed while it runs that task.
    ids = [transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]]
    ids += [transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"] for _ in range(2)]
    first = Worker(tmp_path, env)
    first.wait_for(f"task {ids[0]}: started \\(delivery 1")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert f"task {ids[0]}: SUCCESS" not in first.log(), "the task ended before the kill"
    redis_server.restart()
    second = Worker(tmp_path, env, concurrency=2)
    try:
        ids.append(transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"])
        results = [wait_task(server, i, timeout=180) for i in ids]
        assert [r["status"] for r in results] == ["SUCCESS"] * 4
        assert [r["transcription"] for r in results[1:]] == ["go forward ten meters"] * 3
        # The killed delivery was taken again, once its lease lapsed.
        second.wait_for(f"task {ids[0]}: started \\(delivery 2")
    finally:
        second.stop()


def test_huey_pending_task_outlives_the_result_ttl(redis_server, make_server, tmp_path, speech):
    """A task waiting longer than HUEY_BUS_RESULT_EXPIRES for a worker is not lost: the time to
    live of a task counts from its result, not from its creation."""
    env = dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/8",
               HUEY_BUS_NAME="ttl", HUEY_BUS_RESULT_EXPIRES=2)
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=8).flushdb()
    server = make_server(workdir=tmp_path, **env)
    task = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
    time.sleep(3.5)  # no worker yet: past the TTL
    assert requests.get(server.url(f"/async/v1/transcribe/{task}")).json()["status"] == "PENDING"
    worker = Worker(tmp_path, env)
    try:
        assert wait_task(server, task, timeout=60) == {"status": "SUCCESS",
                                                      "transcription": "go forward ten meters"}
    finally:
        worker.stop()


def open_descriptors(pid):
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_refused_logins_leak_nothing_and_never_echo_secrets(rabbit, redis_server, make_server):
    """/ready against a broker that refuses the password: 503 every time, no descriptor leaked
    per probe (an AMQP connection whose login failed was never freed), and neither the password
    nor the URL's user-info in the answer or the log."""
    bad_amqp = rabbit.url.replace("guest:guest", "guest:s3cret-amqp")
    server = make_server(MESSAGE_BUS="celery", CELERY_BUS_BROKER=bad_amqp,
                         CELERY_BUS_BACKEND=f"redis://:s3cret-redis@127.0.0.1:{redis_server.port}/3")
    requests.get(server.url("/ready"), timeout=30)
    before = open_descriptors(server.proc.pid)
    for _ in range(20):
        r = requests.get(server.url("/ready"), timeout=30)
        assert r.status_code == 503, r.text
        assert "s3cret" not in r.text
    # A leak keeps a descriptor per probe; a broker login still under way, or a probe's socket the
    # server has not closed yet under load, goes within moments.
    wait_until(lambda: open_descriptors(server.proc.pid) - before < 5, timeout=30,
               what="the probes' descriptors closing")
    assert "s3cret" not in server.log()
    # A malformed URL is refused with its password hidden too.
    other = make_server(MESSAGE_BUS="celery", CELERY_BUS_BROKER="rediss://:s3cret-tls@127.0.0.1:1/0%zz")
    r = requests.get(other.url("/ready"), timeout=30)
    assert r.status_code == 503 and "s3cret" not in r.text and "s3cret" not in other.log(), r.text


def test_distributed_example_runs():
    from conftest import REPO
    r = subprocess.run([str(REPO / "examples" / "distributed" / "run.sh")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"status":"SUCCESS"' in r.stdout


def test_backlog_bound_counts_every_producers_tasks(celery_setup, make_server, tmp_path, speech):
    # The bound holds for the broker's whole queue: tasks sent by Python Celery count too.
    kind, env, app = celery_setup
    env = dict(env, MAX_PENDING_TASKS=3, BACKLOG_REFRESH_SECONDS=0.1)
    server = make_server(workdir=tmp_path, **env)
    theirs = [app.send_task(SEED_TASK, args=[put_file(tmp_path, speech)]) for _ in range(2)]
    wait_until(lambda: metric(server, "sra_async_backlog_tasks") == 2, what="the broker's count of theirs")
    ours = transcribe(server, speech, route="/async/v1/transcribe")
    assert ours.status_code == 200, ours.text
    wait_until(lambda: metric(server, "sra_async_backlog_tasks") == 3, what="the broker's count of all")
    refused = transcribe(server, speech, route="/async/v1/transcribe")
    assert refused.status_code == 503 and "MAX_PENDING_TASKS=3" in refused.json()["detail"]
    assert refused.headers["Retry-After"]
    assert requests.get(server.url("/ready")).status_code == 503
    worker = Worker(tmp_path, env)
    try:
        assert all(t.get(timeout=60)["transcription"] == "go forward ten meters" for t in theirs)
        assert wait_task(server, ours.json()["task_id"])["status"] == "SUCCESS"
        deadline = time.time() + 10
        while requests.get(server.url("/ready")).status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        again = transcribe(server, speech, route="/async/v1/transcribe")
        assert again.status_code == 200, again.text
        assert wait_task(server, again.json()["task_id"])["status"] == "SUCCESS"
    finally:
        worker.stop()


def test_huey_backlog_is_bounded(redis_server, make_server, tmp_path, speech):
    import redis as redis_py
    redis_py.Redis(port=redis_server.port, db=9).flushdb()
    env = dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{redis_server.port}/9",
               MAX_PENDING_TASKS=2, BACKLOG_REFRESH_SECONDS=0.1)
    server = make_server(workdir=tmp_path, **env)
    ids = [transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"] for _ in range(2)]
    wait_until(lambda: metric(server, "sra_async_backlog_tasks") == 2, what="the broker's count")
    refused = transcribe(server, speech, route="/async/v1/transcribe")
    assert refused.status_code == 503 and "MAX_PENDING_TASKS=2" in refused.json()["detail"]
    worker = Worker(tmp_path, env)
    try:
        assert [wait_task(server, i)["status"] for i in ids] == ["SUCCESS", "SUCCESS"]
    finally:
        worker.stop()
