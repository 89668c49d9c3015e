"""MODEL=whisper through the service: the test model against OpenAI's outputs, the real base
model on real speech."""
import json
import pathlib

import pytest
import requests

from conftest import AUDIO, REPO, SHARED, transcribe, wait_task, words

MODELS = SHARED / "whisper" / "models"
BASE = pathlib.Path(REPO / "models" / "ggml-base.bin")
JFK = ("And so my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")


def long_reference(index):
    lines = (SHARED / "whisper" / "reference" / "long.tiny-test.openai_transcribe.jsonl").read_text().splitlines()
    return json.loads(lines[index])


@pytest.fixture
def tiny_server(make_server):
    # OpenAI's transcribe(temperature=0.0, without_timestamps=True,
    # condition_on_previous_text=False), set through the seed's class path and WHISPER_NAME.
    return make_server(MODEL="speech_recognition_api.extra.whisper_model.WhisperModel",
                       WHISPER_NAME="openai/whisper-tiny-test-f16", WHISPER_MODELS_DIR=MODELS,
                       WHISPER_TEMPERATURE="0", WHISPER_WITHOUT_TIMESTAMPS="true",
                       WHISPER_CONDITION_ON_PREVIOUS_TEXT="false", WHISPER_THREADS=1)


def test_sync_and_async_give_openais_transcript(tiny_server):
    ref = long_reference(1)
    path = SHARED / "whisper" / "audio" / "long" / ref["file"]
    r = transcribe(tiny_server, path)
    assert r.status_code == 200, r.text
    assert r.json() == {"transcription": ref["text"].strip()}
    task = transcribe(tiny_server, path, route="/async/v1/transcribe").json()["task_id"]
    assert wait_task(tiny_server, task) == {"status": "SUCCESS", "transcription": ref["text"].strip()}


def test_request_fields_override_and_are_checked(tiny_server):
    path = SHARED / "whisper" / "audio" / "dev" / "dev_00000.wav"
    with open(path, "rb") as f:
        r = requests.post(tiny_server.url("/sync/v1/transcribe"),
                          files={"file": ("a.wav", f)}, data={"language": "klingon"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "language"]
    with open(path, "rb") as f:
        r = requests.post(tiny_server.url("/sync/v1/transcribe"),
                          files={"file": ("a.wav", f)}, data={"beam_size": "3"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", ["jfk.wav", "jfk.mp3", "jfk.flac"])
def test_base_model_transcribes_real_speech(make_server, name):
    assert BASE.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    server = make_server(MODEL="whisper", WHISPER_MODEL_PATH=BASE, INFERENCE_THREADS=1)
    r = transcribe(server, AUDIO / name, timeout=300)
    assert r.status_code == 200, r.text
    text = r.json()["transcription"]
    print(f"\n{name}: {text}")
    assert words(text) == words(JFK)


def test_language_route_tells_the_spoken_language(make_server):
    """POST /v1/audio/language with the real base model: JFK is English, with every language's
    probability, the most likely first; models that cannot tell languages are named in a 400."""
    assert BASE.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    server = make_server(MODEL="whisper", WHISPER_MODEL_PATH=BASE, INFERENCE_THREADS=1,
                         SERVED_MODELS="sphinx=pocketsphinx,tiny-en=whisper;WHISPER_MODEL_PATH="  # English only
                         + str(MODELS / "ggml-tiny-test-f16.bin"))
    with open(AUDIO / "jfk.mp3", "rb") as f:
        r = requests.post(server.url("/v1/audio/language"), files={"file": ("jfk.mp3", f)}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["language"], body["language_name"]) == ("en", "english") and body["probability"] > 0.9, body
    probabilities = [entry["probability"] for entry in body["languages"]]
    assert len(probabilities) == 99 and probabilities == sorted(probabilities, reverse=True)
    assert abs(sum(probabilities) - 1) < 1e-3
    assert body["languages"][0] == {k: body[k] for k in ("language", "language_name", "probability")}
    # What the route says is what a transcription detects.
    with open(AUDIO / "jfk.mp3", "rb") as f:
        verbose = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("jfk.mp3", f)},
                                data={"model": "whisper-1", "response_format": "verbose_json"}, timeout=300).json()
    assert verbose["language"] == "english"
    for model in ("sphinx", "tiny-en"):
        with open(AUDIO / "jfk.wav", "rb") as f:
            r = requests.post(server.url("/v1/audio/language"), files={"file": ("jfk.wav", f)},
                              data={"model": model}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == "model", r.text
    r = requests.post(server.url("/v1/audio/language"), files={"file": ("a.wav", b"not audio")}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
    r = requests.post(server.url("/v1/audio/language"), data={"model": "whisper-1"}, timeout=60)
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"], r.text
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = requests.post(server.url("/v1/audio/language"), files={"file": ("jfk.wav", f)},
                          data={"model": "nope"}, timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found", r.text
