"""OpenAI's transcription API, spoken to by OpenAI's own client libraries."""
import json
import pathlib
import subprocess

import openai
import pytest
import requests
import srt
import webvtt

from conftest import AUDIO, BASE_MODEL, REPO, SHARED, transcribe, wait_task, words

JFK_WORDS = words("And so my fellow Americans, ask not what your country can do for you, "
                  "ask what you can do for your country.")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server, base_env
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    s = Server(tmp_path_factory.mktemp("openai"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, MAX_UPLOAD_BYTES=2_000_000,
                        SERVED_MODELS=f"tiny=whisper;WHISPER_MODEL_PATH={SHARED}/whisper/models/ggml-tiny-test-f16.bin",
                        INFERENCE_QUEUE_SIZE=64)).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="not-needed", max_retries=0)


def test_every_response_format(client):
    with open(AUDIO / "jfk.wav", "rb") as f:
        json_result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert words(json_result.text) == JFK_WORDS

    with open(AUDIO / "jfk.mp3", "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert isinstance(text, str) and words(text) == JFK_WORDS

    with open(AUDIO / "jfk.flac", "rb") as f:
        verbose = client.audio.transcriptions.create(model="whisper-1", file=f,
                                                     response_format="verbose_json",
                                                     timestamp_granularities=["segment"])
    assert verbose.language == "english"
    assert abs(verbose.duration - 11.0) < 0.1
    assert words(verbose.text) == JFK_WORDS
    assert len(verbose.segments) >= 1
    for s in verbose.segments:
        assert 0 <= s.start < s.end <= 11.1
        assert s.tokens and s.avg_logprob < 0 and 0 <= s.no_speech_prob <= 1
        assert s.compression_ratio > 0 and s.temperature == 0
    assert "".join(s.text for s in verbose.segments).strip() == verbose.text

    with open(AUDIO / "jfk.wav", "rb") as f:
        subtitles = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    cues = list(srt.parse(subtitles))
    assert len(cues) == len(verbose.segments)
    assert words(" ".join(c.content for c in cues)) == JFK_WORDS
    assert cues[0].start.total_seconds() == pytest.approx(verbose.segments[0].start, abs=1e-3)

    with open(AUDIO / "jfk.wav", "rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    captions = webvtt.from_string(vtt).captions
    assert len(captions) == len(cues)
    assert words(" ".join(c.text for c in captions)) == JFK_WORDS
    h, m, sec = captions[-1].end.split(":")
    assert int(h) * 3600 + int(m) * 60 + float(sec) == pytest.approx(verbose.segments[-1].end, abs=1e-3)


def test_prompt_language_and_temperature_are_accepted(client):
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, language="en",
                                               prompt="A speech by John F. Kennedy.", temperature=0.0)
    assert words(r.text)[:3] == ["and", "so", "my"]


def test_streaming_sends_deltas_then_done(client):
    with open(AUDIO / "jfk.wav", "rb") as f:
        stream = client.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done"
    assert types[:-1] and set(types[:-1]) == {"transcript.text.delta"}
    assert "".join(e.delta for e in events[:-1]).strip() == events[-1].text
    assert words(events[-1].text) == JFK_WORDS


def test_translation(client):
    """German speech through the SDK's translations call gives OpenAI's own translation of it
    (tests/reference/openai: whisper.transcribe(task="translate") on the same weights)."""
    reference = next(r for r in map(json.loads, (REPO / "tests" / "reference" / "openai" /
                                                 "base.decoding.jsonl").read_text().splitlines())
                     if r["file"] == "german.wav" and r["options"].get("task") == "translate")
    with open(REPO / "tests" / "reference" / "audio" / "german.wav", "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f, response_format="verbose_json")
    assert r.text == reference["text"].strip()
    assert "Good morning" in r.text and "Guten" not in r.text


def test_models_are_listed_and_selectable(client):
    ids = [m.id for m in client.models.list()]
    assert ids[:2] == ["whisper", "whisper-1"] and "tiny" in ids
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    with open(SHARED / "whisper" / "audio" / "dev" / "dev_00001.wav", "rb") as f:
        r = client.audio.transcriptions.create(model="tiny", file=f, language="en")
    assert r.text  # the test model's vocabulary of 40 words


def test_documented_errors(client, server):
    with pytest.raises(openai.NotFoundError) as e:
        with open(AUDIO / "jfk.wav", "rb") as f:
            client.audio.transcriptions.create(model="gpt-9", file=f)
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"

    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio at all"))
    assert e.value.body["param"] == "file" and e.value.body["code"] == "invalid_file_format"

    with pytest.raises(openai.BadRequestError) as e:
        with open(AUDIO / "jfk.wav", "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f, response_format="docx")
    assert e.value.body["param"] == "response_format"

    with pytest.raises(openai.BadRequestError) as e:
        with open(AUDIO / "jfk.wav", "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f, language="klingon")
    assert e.value.body["param"] == "language"

    with pytest.raises(openai.BadRequestError) as e:
        with open(AUDIO / "jfk.wav", "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["sentence"])
    assert e.value.body["param"] == "timestamp_granularities[]"

    with pytest.raises(openai.APIStatusError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", b"\0" * 3_000_000))
    assert e.value.status_code == 413
    assert e.value.body["code"] == "file_too_large"

    # Raw shape of an error: a body that is not a form (no field at fault), a form without a file.
    r = requests.post(server.url("/v1/audio/transcriptions"), data={"model": "whisper-1"})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "expected a multipart/form-data body with a 'file' field",
                                  "type": "invalid_request_error", "param": None, "code": None}}
    r = requests.post(server.url("/v1/audio/transcriptions"), files={"model": (None, "whisper-1")})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "you must provide a file", "type": "invalid_request_error",
                                  "param": "file", "code": None}}
    r = requests.get(server.url("/v1/nothing"))
    assert r.status_code == 404 and "error" in r.json()


def test_async_results_in_every_format(server):
    task = transcribe(server, AUDIO / "jfk.wav", route="/async/v1/transcribe").json()["task_id"]
    pending = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=srt"))
    assert pending.headers["Content-Type"] == "application/json"
    assert wait_task(server, task)["status"] == "SUCCESS"
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=srt"))
    assert r.headers["Content-Type"].startswith("application/x-subrip")
    assert words(" ".join(c.content for c in srt.parse(r.text))) == JFK_WORDS
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=vtt"))
    assert words(" ".join(c.text for c in webvtt.from_string(r.text).captions)) == JFK_WORDS
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=verbose_json"))
    assert r.json()["segments"] and r.json()["language"] == "english"
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=text"))
    assert words(r.text) == JFK_WORDS
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=json"))
    assert words(r.json()["text"]) == JFK_WORDS
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=pdf"))
    assert r.status_code == 422


NODE_DIR = pathlib.Path(__file__).parent / "node"


def test_node_client(server):
    assert (NODE_DIR / "node_modules" / "openai").exists(), "npm install --prefix tests/integration/node"
    r = subprocess.run(["node", str(NODE_DIR / "openai_client.mjs"), server.url("/v1"), str(AUDIO / "jfk.wav")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert words(result["json"]) == JFK_WORDS
    assert words(result["text"]) == JFK_WORDS
    assert result["verbose"]["language"] == "english" and result["verbose"]["segments"]
    assert len(list(srt.parse(result["srt"]))) == len(result["verbose"]["segments"])
    assert len(webvtt.from_string(result["vtt"]).captions) == len(result["verbose"]["segments"])
    assert result["stream"][-1]["type"] == "transcript.text.done"
    assert result["errors"] == {"model": 404, "file": 400, "too_large": 413}
