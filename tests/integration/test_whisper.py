"""MODEL=whisper through the service: the test model against OpenAI's outputs, the real base
model on real speech."""
import json
import pathlib
import subprocess

import pytest
import requests

from conftest import AUDIO, BINARY, REPO, SHARED, base_env, transcribe, wait_task, words

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


def test_a_turbo_shaped_model_matches_openais_transcribe(tmp_path):
    """large-v3-turbo's shape at a test's size (128 mels, the 100-language vocabulary, 6 encoder
    and 2 decoder layers: many more of one than the other, as turbo's 32 and 4), random weights
    made again from the seed, against OpenAI's transcribe(word_timestamps=True) on the same weights
    (tests/integration/references/make_turbo_shape.py): every segment's tokens, text, times and
    scores, every word's times and probability, through `transcribe` (the service's path)."""
    from random_whisper import write_random_model
    reference = json.loads((pathlib.Path(__file__).parent / "data" / "turbo_shape.openai.json").read_text())
    path = tmp_path / "ggml-random-turbo-shape-f32.bin"
    dims = write_random_model(path, MODELS / "ggml-random-v3-small-f32.bin", reference["seed"],
                              n_audio_layer=reference["dims"]["n_audio_layer"],
                              n_text_layer=reference["dims"]["n_text_layer"])
    assert dims == reference["dims"]
    files = [str(SHARED / "whisper" / "audio" / ref["file"]) for ref in reference["results"]]
    r = subprocess.run([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null", *files],
                       capture_output=True, text=True, timeout=600,
                       env=base_env(MODEL="whisper", WHISPER_MODEL_PATH=str(path), WHISPER_THREADS="1",
                                    WHISPER_LANGUAGE="en", WHISPER_TEMPERATURE="0",
                                    WHISPER_CONDITION_ON_PREVIOUS_TEXT="false",
                                    WHISPER_WORD_TIMESTAMPS="true"))
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(results) == len(reference["results"])
    for got, ref in zip(results, reference["results"]):
        assert got["text"] == ref["text"], ref["file"]
        assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in ref["segments"]], ref["file"]
        for g, w in zip(got["segments"], ref["segments"]):
            assert (g["seek"], g["text"]) == (w["seek"], w["text"]), ref["file"]
            assert (g["start"], g["end"]) == pytest.approx((w["start"], w["end"]), abs=1e-6), ref["file"]
            assert g["avg_logprob"] == pytest.approx(w["avg_logprob"], abs=2e-3)
            assert g["no_speech_prob"] == pytest.approx(w["no_speech_prob"], abs=1e-4)
            assert [x["word"] for x in g.get("words", [])] == [x["word"] for x in w["words"]], ref["file"]
            for gw, ww in zip(g.get("words", []), w["words"]):
                assert (gw["start"], gw["end"]) == pytest.approx((ww["start"], ww["end"]), abs=1e-6), ww
                assert gw["probability"] == pytest.approx(ww["probability"], abs=1e-3), ww
