"""Webhooks of async tasks (`callback_url`): the result POSTed when a task ends, signed per the
Standard Webhooks specification and verified here with PyPI `standardwebhooks`, retried while the
receiver fails, delivered again after the server dies mid-delivery, and refused up front for URLs
a server must not call (SSRF)."""
import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from conftest import transcribe, wait_task, wait_until

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Receiver:
    """An HTTP server on a free loopback port that records every POST; the first `failures`
    answer 500 (or every one while `down` is set)."""

    def __init__(self, failures=0):
        self.deliveries = []  # (headers, body) of each attempt, the failed ones included
        self.accepted = []
        self.failures = failures
        self.down = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.deliveries.append((headers, body))
                if receiver.down or len(receiver.deliveries) <= receiver.failures:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.accepted.append((headers, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/transcription?x=1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def submit(server, path, **fields):
    with open(path, "rb") as f:
        return requests.post(server.url("/async/v1/transcribe"), files={"file": (path.name, f)},
                             data=fields, timeout=60)


def verified(headers, body):
    """The payload, once its signature, id and timestamp check out (raises otherwise)."""
    return Webhook(SECRET).verify(body, headers)


def test_the_result_is_posted_signed_when_the_task_ends(make_server, receiver, goforward_wav):
    server = make_server(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    r = submit(server, goforward_wav, callback_url=receiver.url)
    assert r.status_code == 200, r.text
    task = r.json()["task_id"]
    result = wait_task(server, task)
    wait_until(lambda: receiver.accepted, what="the webhook")
    headers, body = receiver.accepted[0]
    payload = verified(headers, body)
    assert headers["webhook-id"] == f"task_{task}"
    assert payload["type"] == "transcription.completed"
    assert payload["data"]["task_id"] == task and payload["data"]["status"] == "SUCCESS"
    assert payload["data"]["transcription"] == result["transcription"] == "go forward ten meters"
    assert payload["data"]["result"]["segments"]
    # A forged or replayed body does not verify.
    with pytest.raises(Exception):
        verified(headers, body.replace(b"forward", b"backward"))
    # The model never saw the callback as an option; it is not in the task's transcription.
    assert "callback_url" not in json.dumps(result)


def test_a_failing_receiver_gets_it_again_under_the_same_id(make_server, goforward_wav):
    receiver = Receiver(failures=2)
    try:
        server = make_server(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1")
        task = submit(server, goforward_wav, callback_url=receiver.url).json()["task_id"]
        wait_until(lambda: receiver.accepted, timeout=60, what="the third attempt")
        assert len(receiver.deliveries) == 3
        assert {h["webhook-id"] for h, _ in receiver.deliveries} == {f"task_{task}"}
        verified(*receiver.accepted[0])
        assert "attempt 2 failed (HTTP 500)" in server.log()
    finally:
        receiver.close()


def test_a_server_killed_mid_delivery_delivers_after_restart(make_server, tmp_path, goforward_wav):
    receiver = Receiver()
    receiver.down = True
    try:
        workdir = tmp_path / "node"
        env = dict(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1", EMBEDDED_BUS_LEASE_SECONDS=2)
        server = make_server(workdir=workdir, **env)
        task = submit(server, goforward_wav, callback_url=receiver.url).json()["task_id"]
        wait_until(lambda: len(receiver.deliveries) >= 2, timeout=60, what="failed attempts")
        # Still held by its worker while the webhook is retried: not stored as finished yet.
        assert requests.get(server.url(f"/async/v1/transcribe/{task}")).json()["status"] == "PENDING"
        server.kill()
        receiver.down = False
        restarted = make_server(workdir=workdir, **env)
        wait_until(lambda: receiver.accepted, timeout=120, what="the delivery after the restart")
        payload = verified(*receiver.accepted[0])
        assert payload["data"]["task_id"] == task
        assert wait_task(restarted, task)["transcription"] == "go forward ten meters"
    finally:
        receiver.close()


def test_a_cancelled_task_says_so(make_server, receiver, long_wav):
    server = make_server(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1", MODEL="pocketsphinx")
    task = submit(server, long_wav, callback_url=receiver.url).json()["task_id"]
    wait_until(lambda: f"task {task}: started" in server.log(), what="the task's start")
    assert requests.delete(server.url(f"/async/v1/transcribe/{task}")).status_code in (200, 202)
    wait_until(lambda: receiver.accepted, timeout=60, what="the webhook")
    payload = verified(*receiver.accepted[0])
    assert payload["type"] == "transcription.cancelled"
    assert payload["data"]["status"] == "FAILED" and payload["data"]["cancelled"] is True


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:9/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "private"),
    ("http://[::1]/hook", "private"),
    ("http://10.0.0.5/hook", "private"),
    ("http://localhost/hook", "private"),
    ("ftp://example.com/hook", "http"),
    ("http://user:pass@example.com/hook", "credentials"),
    ("http://example.com:99999/hook", "port"),
    ("http://no-such-host.invalid/hook", "resolve"),
    ("http://" + "a" * 2100 + ".com/", "longer"),
])
def test_urls_a_server_must_not_call_are_refused_at_submission(make_server, goforward_wav, url, why):
    server = make_server(WEBHOOK_SECRET=SECRET)
    r = submit(server, goforward_wav, callback_url=url)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "callback_url"] and why in detail["msg"], detail


def test_without_a_secret_callbacks_are_refused(make_server, receiver, goforward_wav):
    server = make_server(WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    r = submit(server, goforward_wav, callback_url=receiver.url)
    assert r.status_code == 422 and "WEBHOOK_SECRET" in r.text


def test_a_malformed_secret_is_a_configuration_error(make_server):
    server = make_server(start=False, WEBHOOK_SECRET="not base64 !!")
    server.start(wait=False)
    assert server.proc.wait(30) == 78
    assert "WEBHOOK_SECRET" in server.log()


def test_deepgrams_callback_queues_the_work_and_posts_its_response(make_server, receiver, goforward_wav):
    """Deepgram's `callback`: {"request_id"} at once, then the Deepgram-shaped response POSTed,
    through deepgram-sdk as a Deepgram client sends it."""
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment
    server = make_server(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}"
    client = DeepgramClient(api_key="unused", environment=DeepgramClientEnvironment(
        base=base, production=base.replace("http", "ws"), agent=base, agent_rest=base))
    accepted = client.listen.v1.media.transcribe_file(
        request=goforward_wav.read_bytes(), callback=receiver.url, utterances=True, tag=["t1"])
    task = accepted.request_id
    assert task
    wait_until(lambda: receiver.accepted, timeout=60, what="the callback")
    headers, body = receiver.accepted[0]
    response = verified(headers, body)
    assert headers["webhook-id"] == f"task_{task}"
    assert response["metadata"]["request_id"] == task and response["metadata"]["tags"] == ["t1"]
    alternative = response["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "go forward ten meters"
    assert "utterances" in response["results"]
    # The same task through the Python project's route: the same words.
    assert wait_task(server, task)["transcription"] == "go forward ten meters"
    # Without a secret there is no callback: a Deepgram 400 naming it.
    plain = make_server()
    r = requests.post(plain.url("/v1/listen") + "?callback=" + receiver.url,
                      data=goforward_wav.read_bytes(), timeout=60)
    assert r.status_code == 400 and r.json()["err_msg"].startswith("callback")


def test_openais_routes_with_a_callback_url_queue_and_post_the_response(make_server, receiver, goforward_wav):
    server = make_server(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    with open(goforward_wav, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "response_format": "verbose_json",
                                "callback_url": receiver.url}, timeout=60)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["object"] == "transcription.task" and body["status"] == "queued"
    wait_until(lambda: receiver.accepted, timeout=60, what="the callback")
    headers, raw = receiver.accepted[0]
    response = verified(headers, raw)
    assert headers["webhook-id"] == f"task_{body['id']}"
    # The verbose_json response the request asked for.
    assert response["text"] == "go forward ten meters" and response["task"] == "transcribe"
    assert response["segments"] and response["duration"] > 1
    # A callback gets json or verbose_json, never a stream; a bad URL is OpenAI's 400 naming it.
    for data, why in [({"stream": "true"}, "stream"), ({"response_format": "srt"}, "json"),
                      ({"callback_url": "http://10.0.0.1/x"}, "private")]:
        fields = {"model": "whisper-1", "callback_url": receiver.url, **data}
        with open(goforward_wav, "rb") as f:
            r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                              data=fields, timeout=60)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "callback_url" and why in error["message"], error
