"""The Python speech-recognition-api project's own Huey bus (PyPI speech-recognition-api[huey]
0.1.1 with Huey 2.5, in an environment of its own) and ours share one queue both ways: its API ->
our worker -> its API reads SUCCESS; our API -> its huey_consumer -> our API reads SUCCESS (and
FAILED with Huey's reason); over a Redis started by the test, and again over Redis with TLS only.
Celery over rediss:// and amqps:// with real Python Celery; certificates are verified."""
import fcntl
import os
import subprocess
import time
import uuid

import pytest
import requests

from brokers import Certificates, RabbitServer, RedisServer, wait_port
from conftest import BUILD, PS_DATA, REPO, free_port, raw_to_wav, transcribe, wait_task, wait_until
from test_workers import SEED_TASK, Worker, put_file

HERE = REPO / "tests" / "integration"
PROJECT_VENV = BUILD / "python-project-venv"
SUPPORT = HERE / "python_project"
SPOKEN = "go forward ten meters"


@pytest.fixture(scope="session")
def project_python():
    """The Python project's interpreter, its environment made once per build folder."""
    python = PROJECT_VENV / "bin" / "python"
    # ctest runs this file and test_python_project_celery side by side: one makes the environment
    # while the other waits (two pip runs in one environment break each other's imports).
    PROJECT_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(PROJECT_VENV.parent / "python-project-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(PROJECT_VENV)], check=True)
        # Every time: a no-op when the requirements are met, an install when they changed.
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(HERE / "python-project-requirements.txt")], check=True)
    return python


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def redis_tls(tmp_path_factory, certificates):
    server = RedisServer(tmp_path_factory.mktemp("redis-tls"), certificates=certificates)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return raw_to_wav(PS_DATA / "goforward.raw", tmp_path_factory.mktemp("speech") / "goforward.wav")


class ProjectProcess:
    """A process of the Python project (its API or its huey_consumer) with the test's settings."""

    def __init__(self, argv, workdir, env, port=None):
        self.port = port
        self.log_path = workdir / f"python-{time.monotonic_ns()}.log"
        full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
                    "PYTHONPATH": str(SUPPORT), **{k: str(v) for k, v in env.items()}}
        self.proc = subprocess.Popen(argv, cwd=workdir, env=full_env, stdout=open(self.log_path, "wb"),
                                     stderr=subprocess.STDOUT)
        if port:
            wait_port(port, timeout=60, proc=self.proc)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def project_env(folder, name, redis, tls):
    return dict(MODEL="sra_test_support.EchoModel",
                STORAGE="speech_recognition_api.extra.local_storage.LocalStorage",
                LOCAL_STORAGE_FOLDER_PATH=folder, HUEY_BUS_REDIS_HOST="127.0.0.1", HUEY_BUS_NAME=name,
                MESSAGE_BUS="speech_recognition_api.extra.huey_bus.HueyMessageBus",
                TEST_REDIS_PORT=redis.tls_port if tls else redis.port,
                **({"TEST_REDIS_TLS_CA": redis.certificates.ca} if tls else {}))


def our_env(folder, name, redis, tls):
    host = redis.tls_url(db=0) if tls else f"127.0.0.1:{redis.port}"
    return dict(MESSAGE_BUS="speech_recognition_api.extra.huey_bus.HueyMessageBus", HUEY_BUS_REDIS_HOST=host,
                HUEY_BUS_NAME=name, STORAGE="local", LOCAL_STORAGE_FOLDER_PATH=folder,
                HUEY_BUS_VISIBILITY_TIMEOUT=5)


def project_api(python, workdir, env):
    port = free_port()
    code = ("import sra_test_support, uvicorn\n"
            "from speech_recognition_api.bootstrap import create_app\n"
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')\n")
    return ProjectProcess([str(python), "-c", code], workdir, env, port=port)


def project_consumer(python, workdir, env):
    consumer = python.parent / "huey_consumer"
    return ProjectProcess([str(consumer), "sra_test_support.huey", "-w", "1", "-k", "thread"], workdir, env)


def wait_project_task(api, task_id, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(api.url(f"/async/v1/transcribe/{task_id}"), timeout=10)
        assert r.status_code == 200, r.text
        if r.json()["status"] != "PENDING":
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"the Python project's API never saw {task_id} finish:\n{api.log()}")


@pytest.fixture(params=["plain", "tls"])
def shared_queue(request, tmp_path, redis_tls, project_python):
    """(tls, folder, queue name, our env, the project's env) over one Redis, plain or TLS only."""
    tls = request.param == "tls"
    folder = tmp_path / "audio"
    folder.mkdir()
    name = f"interop_{request.param}_{time.monotonic_ns()}"
    return (tls, folder, name, our_env(folder, name, redis_tls, tls), project_env(folder, name, redis_tls, tls))


def test_the_python_projects_api_feeds_our_worker(shared_queue, tmp_path, project_python, speech):
    tls, folder, name, ours, theirs = shared_queue
    api = project_api(project_python, tmp_path, theirs)
    worker = Worker(tmp_path, ours)
    try:
        with open(speech, "rb") as f:
            r = requests.post(api.url("/async/v1/transcribe"), files={"file": ("speech.wav", f)}, timeout=30)
        assert r.status_code == 200, api.log()
        task_id = r.json()["task_id"]
        assert wait_project_task(api, task_id) == {"status": "SUCCESS", "transcription": SPOKEN}
        worker.wait_for(f"task {task_id}: SUCCESS")
        # A file our worker refuses is stored as Huey's Error: Python's Huey raises it with our reason.
        junk = str(uuid.uuid4())  # as the project's LocalStorage names files
        (folder / junk).write_bytes(b"not audio at all" * 64)
        code = ("import sra_test_support as s, sys\n"
                "from huey.exceptions import TaskException\n"
                f"r = s.project_bus.huey_task('{junk}')\n"
                "try:\n"
                "    r.get(blocking=True, timeout=60)\n"
                "except TaskException as e:\n"
                "    print('ERROR', e.metadata['error'])\n")
        out = subprocess.run([str(project_python), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=90, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(SUPPORT),
                                              **{k: str(v) for k, v in theirs.items()}})
        assert out.stdout.startswith("ERROR ") and "audio" in out.stdout, out.stdout + out.stderr
    finally:
        api.stop()
        worker.stop()


def test_our_api_feeds_the_python_projects_consumer(shared_queue, tmp_path, make_server, project_python, speech):
    tls, folder, name, ours, theirs = shared_queue
    server = make_server(workdir=tmp_path, **ours)
    assert requests.get(server.url("/ready")).json() == {"status": "ready"}
    consumer = project_consumer(project_python, tmp_path, theirs)
    try:
        task_id = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
        size = speech.stat().st_size
        assert wait_task(server, task_id, timeout=90) == {"status": "SUCCESS",
                                                          "transcription": f"python heard {size} bytes"}, consumer.log()
        # Options travel as a keyword argument the Python task does not take: Huey stores the
        # TypeError, and our API reports it as FAILED with that reason.
        with open(speech, "rb") as f:
            r = requests.post(server.url("/async/v1/transcribe"), files={"file": ("s.wav", f)},
                              data={"language": "en"}, timeout=30)
        failed = wait_task(server, r.json()["task_id"], timeout=90)
        assert failed["status"] == "FAILED" and "options" in failed["error"], failed
    finally:
        consumer.stop()


def test_cancelling_a_queued_task_revokes_it_for_python_consumers(redis_tls, tmp_path, make_server,
                                                                   project_python, speech):
    folder = tmp_path / "audio"
    folder.mkdir()
    name = f"revoke_{time.monotonic_ns()}"
    server = make_server(workdir=tmp_path, **our_env(folder, name, redis_tls, False))
    first = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
    second = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
    r = requests.delete(server.url(f"/async/v1/transcribe/{first}"))
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    consumer = project_consumer(project_python, tmp_path, project_env(folder, name, redis_tls, False))
    try:
        assert wait_task(server, second, timeout=90)["status"] == "SUCCESS"
        cancelled = requests.get(server.url(f"/async/v1/transcribe/{first}")).json()
        assert cancelled["status"] == "FAILED" and cancelled["cancelled"] is True
        wait_until(lambda: "revoked" in consumer.log() and first in consumer.log(),
                   what="the consumer's skipping the revoked task")
    finally:
        consumer.stop()


def test_hostile_messages_on_the_queue_are_refused_never_run(redis_tls, tmp_path, make_server, speech):
    """Pickles that would run code in Python (os.system), truncated bytes and a message of an
    unknown task: the worker logs and drops or fails them, and goes on with the next good task."""
    import redis as redis_py
    folder = tmp_path / "audio"
    folder.mkdir()
    name = f"hostile_{time.monotonic_ns()}"
    env = our_env(folder, name, redis_tls, False)
    queue = "huey.redis." + "".join(c for c in name if c.isalnum() and c.isascii() and not c.isupper())
    r = redis_py.Redis(port=redis_tls.port)
    marker = tmp_path / "pwned"
    evil = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c"
            + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode() + b"\x85R.")
    for bad in (evil, b"\x80\x05\x8c\x05hello", b"not a pickle"):
        r.lpush(queue, bad)
    server = make_server(workdir=tmp_path, **env)
    worker = Worker(tmp_path, env)
    try:
        task_id = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
        assert wait_task(server, task_id, timeout=90) == {"status": "SUCCESS", "transcription": SPOKEN}
        assert not marker.exists()
        assert worker.log().count("was refused and dropped") == 3, worker.log()
        assert "is not allowed" in worker.log()
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def rabbit_tls(tmp_path_factory, certificates):
    server = RabbitServer(tmp_path_factory.mktemp("rabbit-tls"), certificates=certificates)
    yield server
    server.stop()


@pytest.fixture(params=["rediss", "amqps"])
def celery_tls(request, redis_tls, tmp_path):
    """(our env, a Python Celery app) speaking TLS to the broker and to the result backend."""
    import ssl
    from celery import Celery
    import redis as redis_py
    db = {"rediss": 4, "amqps": 5}[request.param]
    redis_py.Redis(port=redis_tls.port, db=db).flushdb()
    ca = str(redis_tls.certificates.ca)
    backend = redis_tls.tls_url(db=db)
    if request.param == "rediss":
        broker, python_broker = backend, backend
        broker_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": ca}
    else:
        rabbit = request.getfixturevalue("rabbit_tls")
        broker = rabbit.tls_url()
        python_broker = f"amqps://guest:guest@127.0.0.1:{rabbit.tls_port}//"
        broker_ssl = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca}
    app = Celery("seed", broker=python_broker, backend=backend)
    app.conf.broker_use_ssl = broker_ssl
    app.conf.redis_backend_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": ca}
    env = dict(MESSAGE_BUS="speech_recognition_api.extra.celery_bus.CeleryMessageBus", CELERY_BUS_BROKER=broker,
               CELERY_BUS_BACKEND=backend, CELERY_BUS_POLL_SECONDS=0.05)
    return env, app


def test_celery_over_tls_both_ways(celery_tls, tmp_path, make_server, speech):
    env, app = celery_tls
    worker = Worker(tmp_path, env)
    server = make_server(workdir=tmp_path, **env)
    try:
        assert requests.get(server.url("/ready")).json() == {"status": "ready"}
        sent = app.send_task(SEED_TASK, args=[put_file(tmp_path, speech)])
        assert sent.get(timeout=60)["transcription"] == SPOKEN
        task_id = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
        assert app.AsyncResult(task_id).get(timeout=60)["transcription"] == SPOKEN
        assert wait_task(server, task_id) == {"status": "SUCCESS", "transcription": SPOKEN}
    finally:
        worker.stop()


def test_certificates_are_verified_and_secrets_never_echoed(redis_tls, rabbit_tls, make_server, tmp_path):
    """A server whose certificate another CA signed is refused (/ready 503 with the reason, never a
    password); a broker URL that is not accepted is refused naming the variable, not the password."""
    other = redis_tls.certificates.other_ca
    bad_redis = redis_tls.tls_url(ca=other).replace("rediss://", "rediss://:hunter2@")
    bad_amqp = rabbit_tls.tls_url(ca=other).replace("guest:guest@", "guest:hunter2@")
    for env in (dict(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=bad_redis),
                dict(MESSAGE_BUS="celery", CELERY_BUS_BROKER=bad_redis),
                dict(MESSAGE_BUS="celery", CELERY_BUS_BROKER=bad_amqp, CELERY_BUS_BACKEND=redis_tls.tls_url())):
        server = make_server(workdir=tmp_path, **env)
        r = requests.get(server.url("/ready"))
        assert r.status_code == 503, r.text
        assert "hunter2" not in r.text and "hunter2" not in server.log()
        # A certificate another CA signed: refused for that reason, said so (OpenSSL's words
        # through Redis: "certificate verify failed"; through RabbitMQ's client: "peer cert
        # verification failed").
        text = r.text.lower()
        assert "cert" in text and "verif" in text, r.text
        server.stop()
    server = make_server(workdir=tmp_path, MESSAGE_BUS="celery", CELERY_BUS_BROKER="rediss://:hun/ter2@h:port/0",
                         CELERY_BUS_BACKEND=redis_tls.tls_url())
    r = requests.get(server.url("/ready"))
    assert r.status_code == 503 and "CELERY_BUS_BROKER" in r.text, r.text
    assert "ter2" not in r.text and "ter2" not in server.log()
