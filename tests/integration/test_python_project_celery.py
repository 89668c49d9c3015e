"""The Python speech-recognition-api project's own API (PyPI speech-recognition-api[celery]
0.1.1, its CeleryMessageBus reading Celery's result backend) beside our worker: its clients see
only the statuses they see with the project's own worker. A task our worker runs is PENDING (its
contract's value), never Celery's custom PROGRESS, while it runs, then SUCCESS; a task that fails
shows the same status as one the project's own Celery worker failed. Before (issue 23), its API
answered {"status": "PROGRESS"} for every running task of ours."""
import time

import pytest
import requests

from brokers import RedisServer
from conftest import transcribe
from test_python_project_huey import SUPPORT, ProjectProcess, project_api, project_python  # noqa: F401
from test_workers import Worker

CHUNKS = dict(POCKETSPHINX_CHUNK_SECONDS=2)  # progress every two seconds of audio


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def envs(redis_server, folder):
    broker = f"redis://127.0.0.1:{redis_server.port}/10"
    backend = f"redis://127.0.0.1:{redis_server.port}/11"
    common = dict(CELERY_BUS_BROKER=broker, CELERY_BUS_BACKEND=backend, LOCAL_STORAGE_FOLDER_PATH=folder)
    theirs = dict(common, MESSAGE_BUS="speech_recognition_api.extra.celery_bus.CeleryMessageBus",
                  STORAGE="speech_recognition_api.extra.local_storage.LocalStorage", MODEL="sra_test_support.EchoModel",
                  TEST_REDIS_PORT=redis_server.port)
    ours = dict(common, MESSAGE_BUS="celery", STORAGE="local", CELERY_BUS_POLL_SECONDS=0.05, **CHUNKS)
    return theirs, ours


def statuses_until_final(api, task_id, timeout=240):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        # The Python project's API answers slowly while its Celery worker starts on a loaded
        # machine, and its result read (Celery's AsyncResult.get() with no timeout, on the Redis
        # backend) now and then never returns: FastAPI serves the next read on another thread, so
        # a read that hangs is asked again. The read timeout is a safety net, not a bound under
        # test; the deadline is.
        try:
            r = requests.get(api.url(f"/async/v1/transcribe/{task_id}"), timeout=30)
        except requests.ReadTimeout:
            continue
        assert r.status_code == 200, api.log()
        seen.append(r.json()["status"])
        if seen[-1] != "PENDING":
            return seen, r.json()
        time.sleep(0.05)
    raise AssertionError(f"never final: {seen[-5:]}")


def test_the_python_projects_api_sees_only_its_own_statuses(redis_server, tmp_path, make_server,
                                                             project_python, long_wav):
    folder = tmp_path / "files"
    folder.mkdir()
    theirs, ours = envs(redis_server, folder)
    # Two processes of the project's API: one takes the files, the other answers the reads. A
    # read that hangs in Celery's Redis result consumer (see statuses_until_final) leaves that
    # process's consumer stuck, and a later delay() in the same process (which subscribes through
    # it) would hang behind it; a process that never reads never gets stuck.
    api = project_api(project_python, tmp_path, theirs)
    intake = project_api(project_python, tmp_path, theirs)
    server = make_server(workdir=tmp_path, **ours)  # our API, to see the progress ours keeps
    worker = Worker(tmp_path, ours)
    try:
        with open(long_wav, "rb") as f:
            r = requests.post(intake.url("/async/v1/transcribe"), files={"file": ("long.wav", f)}, timeout=120)
        assert r.status_code == 200, intake.log()
        task_id = r.json()["task_id"]
        # It runs: our API shows its progress, while the project's API says PENDING.
        deadline = time.time() + 180
        while "progress" not in requests.get(server.url(f"/async/v1/transcribe/{task_id}")).json():
            assert time.time() < deadline
            time.sleep(0.05)
        seen, final = statuses_until_final(api, task_id)
        assert set(seen) <= {"PENDING", "SUCCESS"}, seen
        assert seen.count("PENDING") >= 1 and final["status"] == "SUCCESS" and final["transcription"]

        # A file our worker fails: the project's API shows what it shows for its own worker.
        r = requests.post(intake.url("/async/v1/transcribe"), files={"file": ("junk.wav", b"not audio" * 100)},
                          timeout=120)
        _, ours_final = statuses_until_final(api, r.json()["task_id"])
    finally:
        worker.stop()
    their_worker = ProjectProcess([str(project_python.parent / "celery"), "-A", "speech_recognition_api.extra.celery_bus",
                                   "worker", "--pool", "solo", "--loglevel", "warning"], tmp_path,
                                  dict(theirs, MODEL="sra_test_support.FailingModel"))
    try:
        r = requests.post(intake.url("/async/v1/transcribe"), files={"file": ("junk.wav", b"not audio" * 100)},
                          timeout=120)
        _, their_final = statuses_until_final(api, r.json()["task_id"])
    finally:
        their_worker.stop()
        api.stop()
        intake.stop()
    assert ours_final["status"] == their_final["status"], (ours_final, their_final)
    assert ours_final["transcription"] is None


def test_progress_as_celerys_state_is_an_opt_in(redis_server, tmp_path, make_server, long_wav):
    """Python Celery readers that want AsyncResult.info's progress ask for Celery's PROGRESS state
    with CELERY_BUS_PROGRESS_STATE=true."""
    from celery import Celery
    folder = tmp_path / "files"
    folder.mkdir()
    _, ours = envs(redis_server, folder)
    ours = dict(ours, CELERY_BUS_PROGRESS_STATE="true")
    app = Celery("seed", broker=ours["CELERY_BUS_BROKER"], backend=ours["CELERY_BUS_BACKEND"])
    server = make_server(workdir=tmp_path, **ours)
    worker = Worker(tmp_path, ours)
    try:
        task_id = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        result = app.AsyncResult(task_id)
        deadline = time.time() + 180
        while not (result.state == "PROGRESS" and result.info["progress"] > 0):
            assert time.time() < deadline, result.state
            time.sleep(0.05)
        assert result.info["segments"][0]["text"]
        assert result.get(timeout=180)["transcription"]
    finally:
        worker.stop()
