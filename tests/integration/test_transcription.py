"""Real speech through the HTTP API: sync, async, formats, concurrency."""
import concurrent.futures
import re
import shutil
import subprocess
import uuid

import pytest
import requests

from conftest import AUDIO, PS_DATA, transcribe, wait_task, word_error_rate


def test_health(server):
    r = requests.get(server.url("/health"))
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"
    assert requests.get(server.url("/ready")).json() == {"status": "ready"}


def test_go_forward_ten_meters(server, goforward_wav):
    r = transcribe(server, goforward_wav)
    assert r.status_code == 200, r.text
    assert r.json() == {"transcription": "go forward ten meters"}


def test_librivox_word_error_rate(server):
    refs = {}
    for line in (PS_DATA / "librivox" / "transcription").read_text().splitlines():
        text, clip = line.rsplit("(", 1)
        refs[clip.rstrip(")")] = text.replace("<s>", "").replace("</s>", "")
    errors = total = 0
    for clip, ref in refs.items():
        r = transcribe(server, PS_DATA / "librivox" / f"{clip}.wav")
        assert r.status_code == 200, r.text
        e, n = word_error_rate(ref, r.json()["transcription"])
        errors, total = errors + e, total + n
    assert total > 50
    assert errors / total < 0.35, f"word error rate {errors / total:.2f}"


def encoded(tmp_path, source, ext, *codec):
    out = tmp_path / f"speech.{ext}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *codec, str(out)],
                   check=True)
    return out


@pytest.mark.parametrize("name", ["jfk.wav", "jfk.mp3", "jfk.flac", "seed-audio.wav"])
def test_shared_formats_give_text(server, name):
    r = transcribe(server, AUDIO / name)
    assert r.status_code == 200, r.text
    assert len(r.json()["transcription"].split()) >= 5


@pytest.mark.parametrize("ext,codec", [
    ("ogg", ["-c:a", "libopus"]),
    ("oga", ["-c:a", "libvorbis"]),
    ("m4a", ["-c:a", "aac"]),
    ("webm", ["-c:a", "libopus"]),
    ("mp3", ["-ac", "2", "-ar", "44100"]),
])
def test_other_containers_and_codecs(server, tmp_path, goforward_wav, ext, codec):
    if not shutil.which("ffmpeg"):
        pytest.fail("the ffmpeg program is needed to make test files")
    path = encoded(tmp_path, goforward_wav, ext, *codec)
    r = transcribe(server, path)
    assert r.status_code == 200, r.text
    e, n = word_error_rate("go forward ten meters", r.json()["transcription"])
    assert e <= 1, r.json()


def test_async_flow_to_success(server, goforward_wav):
    r = transcribe(server, goforward_wav, route="/async/v1/transcribe")
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    assert uuid.UUID(task_id)
    first = requests.get(server.url(f"/async/v1/transcribe/{task_id}")).json()
    assert first["status"] in ("PENDING", "SUCCESS")
    assert set(first) >= {"status", "transcription"}
    body = wait_task(server, task_id)
    assert body == {"status": "SUCCESS", "transcription": "go forward ten meters"}


def test_async_task_that_cannot_decode_fails_with_reason(server, tmp_path):
    # An M4A whose index ("moov") sits at its end, cut off there: its first MiB is a real MP4
    # start, so the upload check (which sees only that start) accepts it and a task is created;
    # the worker then finds no index and the task must fail with a reason, not vanish or pass.
    if not shutil.which("ffmpeg"):
        pytest.fail("the ffmpeg program is needed to make test files")
    whole = tmp_path / "long.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "12",
                    "-i", str(AUDIO / "jfk.wav"), "-c:a", "aac", "-b:a", "128k", str(whole)],
                   check=True)
    data = whole.read_bytes()
    index = data.rfind(b"moov") - 4
    assert index > 1024 * 1024, "the index must sit past the first MiB the upload check reads"
    r = requests.post(server.url("/async/v1/transcribe"),
                      files={"file": ("cut.m4a", data[:index])})
    assert r.status_code == 200, r.text
    body = wait_task(server, r.json()["task_id"])
    assert body["status"] == "FAILED", body
    assert body["transcription"] is None
    assert "not a recognised audio format" in body["error"], body["error"]


def test_eight_concurrent_sync_requests(make_server, goforward_wav):
    server = make_server(INFERENCE_THREADS=2, INFERENCE_QUEUE_SIZE=8)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: transcribe(server, goforward_wav), range(8)))
    assert [r.status_code for r in results] == [200] * 8
    assert {r.json()["transcription"] for r in results} == {"go forward ten meters"}


def test_plain_text_transcript_matches_between_sync_and_async(server):
    sync = transcribe(server, AUDIO / "jfk.flac").json()["transcription"]
    task = transcribe(server, AUDIO / "jfk.flac", route="/async/v1/transcribe").json()["task_id"]
    assert wait_task(server, task)["transcription"] == sync
    assert re.search(r"\bcountry\b", sync)
