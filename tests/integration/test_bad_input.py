"""Every kind of bad input gets its status and a JSON body, and the server stays healthy."""
import http.client
import json
import socket
import uuid

import pytest
import requests

from conftest import AUDIO, transcribe


def assert_detail(r, status, *fragments):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    detail = r.json()["detail"]
    text = json.dumps(detail)
    for f in fragments:
        assert f in text, text
    return detail


@pytest.fixture
def small_server(make_server):
    return make_server(MAX_UPLOAD_BYTES=200_000, MAX_AUDIO_SECONDS=5)


@pytest.mark.parametrize("route", ["/sync/v1/transcribe", "/async/v1/transcribe"])
def test_bad_uploads(small_server, route, goforward_wav):
    s = small_server
    url = s.url(route)
    # Missing `file`: FastAPI's own shape.
    r = requests.post(url, files={"other": ("a.wav", b"x")})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"type": "missing", "loc": ["body", "file"],
                                    "msg": "Field required", "input": None}]}
    r = requests.post(url, data={"language": "en"})
    assert_detail(r, 422)
    # Not multipart at all.
    assert_detail(requests.post(url, json={"file": "x"}), 422, "multipart/form-data")
    assert_detail(requests.post(url), 422)
    # Malformed multipart: no closing boundary.
    r = requests.post(url, data=b"--abc\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxx",
                      headers={"Content-Type": "multipart/form-data; boundary=abc"})
    assert_detail(r, 422, "closing boundary")
    # Empty, not audio, truncated.
    assert_detail(requests.post(url, files={"file": ("e.wav", b"")}), 415, "empty")
    assert_detail(requests.post(url, files={"file": ("t.wav", b"hello " * 1000)}), 415)
    assert_detail(requests.post(url, files={"file": ("p.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)}), 415)
    truncated = (AUDIO / "jfk.mp3").read_bytes()[:100]
    assert_detail(requests.post(url, files={"file": ("t.mp3", truncated)}), 415)
    # Larger than MAX_UPLOAD_BYTES: with a Content-Length...
    big = b"\0" * 3_000_000
    assert_detail(requests.post(url, files={"file": ("big.wav", big)}), 413, "MAX_UPLOAD_BYTES")
    # ... and streamed in chunks without one.
    def chunks():
        yield b"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.wav\"\r\n\r\n"
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--abc--\r\n"
    r = requests.post(url, data=chunks(), headers={"Content-Type": "multipart/form-data; boundary=abc"})
    assert_detail(r, 413)
    # Server still fine.
    assert requests.get(s.url("/health")).json() == {"status": "ok"}


def test_audio_longer_than_the_limit(small_server):
    assert_detail(transcribe(small_server, AUDIO / "jfk.mp3"), 413, "MAX_AUDIO_SECONDS")


def test_routes_and_methods(server):
    assert_detail(requests.get(server.url("/nope")), 404, "Not Found")
    assert_detail(requests.get(server.url("/sync/v1/transcribe/extra")), 404)
    r = requests.get(server.url("/sync/v1/transcribe"))
    assert_detail(r, 405, "Method Not Allowed")
    assert r.headers["Allow"] == "POST"
    r = requests.post(server.url("/health"))
    assert_detail(r, 405)
    assert r.headers["Allow"] == "GET"
    r = requests.put(server.url(f"/async/v1/transcribe/{uuid.uuid4()}"))
    assert_detail(r, 405)
    assert r.headers["Allow"] == "GET, DELETE"


def test_unknown_and_hostile_task_ids(server):
    for task_id in [str(uuid.uuid4()), "not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "%00", "'%20OR%201=1"]:
        assert_detail(requests.get(server.url(f"/async/v1/transcribe/{task_id}")), 404, "not found")
        assert_detail(requests.delete(server.url(f"/async/v1/transcribe/{task_id}")), 404, "not found")
    # A raw `..` path, not normalised by the client.
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/async/v1/transcribe/../../etc/passwd")
    r = conn.getresponse()
    assert r.status == 404
    assert "detail" in json.loads(r.read())


def test_malformed_http_is_answered_and_closed(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 431")
    assert requests.get(server.url("/health")).status_code == 200


def test_client_that_disappears_mid_upload(server, goforward_wav):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /sync/v1/transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                      b"Content-Type: multipart/form-data; boundary=abc\r\n\r\n--abc\r\n")
    r = transcribe(server, goforward_wav)
    assert r.status_code == 200


def test_misconfigured_part_is_a_503_naming_the_variable(make_server, goforward_wav):
    s = make_server(STORAGE="speech_recognition_api.extra.s3_storage.S3Storage")
    r = transcribe(s, goforward_wav, route="/async/v1/transcribe")
    assert_detail(r, 503, "S3_STORAGE_BUCKET_NAME is not set")
    assert r.headers.get("Retry-After")
    # The Python project's Whisper class path works, and says which file it misses: a catalog
    # model that may not be pulled names the command that pulls it, any other name the file.
    s1 = make_server(MODEL="speech_recognition_api.extra.whisper_model.WhisperModel",
                     WHISPER_NAME="openai/whisper-medium", MODEL_DOWNLOAD="false")
    assert_detail(transcribe(s1, goforward_wav), 503, "WHISPER_NAME=openai/whisper-medium",
                  "models pull medium")
    s3 = make_server(MODEL="speech_recognition_api.extra.whisper_model.WhisperModel",
                     WHISPER_NAME="openai/whisper-medium-finetuned")
    assert_detail(transcribe(s3, goforward_wav), 503, "WHISPER_NAME=openai/whisper-medium-finetuned",
                  "ggml-medium-finetuned.bin does not exist")
    s2 = make_server(MODEL="wav2vec")
    assert_detail(transcribe(s2, goforward_wav), 503, "MODEL=wav2vec is unknown", "pocketsphinx")
    assert requests.get(s2.url("/health")).status_code == 200
