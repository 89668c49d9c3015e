"""What a client controls of what is heard: keyterms that bring rare names in, languages that
detection may choose among, token log-probabilities and usage, through OpenAI's own SDK and the
Python project's routes, with the real base model and real or flite speech."""
import sys

import openai
import pytest
import requests

from conftest import AUDIO, BASE_MODEL, REPO, Server, base_env, words

sys.path.insert(0, str(REPO / "bench"))
from vocabulary import found_terms  # noqa: E402
from vocabulary_set import build  # noqa: E402

GERMAN = REPO / "tests" / "reference" / "audio" / "german.wav"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    s = Server(tmp_path_factory.mktemp("vocabulary"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, INFERENCE_THREADS=2)).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="not-needed", max_retries=0)


def test_logprobs_and_usage_through_the_sdk(client):
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, include=["logprobs"])
    assert r.logprobs, "include[]=logprobs gave no logprobs"
    # Every text token, in order: their text is the transcript, their bytes their text.
    assert "".join(lp.token for lp in r.logprobs).strip() == r.text
    for lp in r.logprobs:
        assert bytes(int(b) for b in lp.bytes).decode("utf-8") == lp.token  # the SDK types them float
        assert lp.logprob <= 0
    # Greedy decoding picks likely tokens: JFK's clear words are mostly near-certain.
    assert sum(lp.logprob > -0.5 for lp in r.logprobs) > len(r.logprobs) / 2
    assert r.usage.type == "duration" and abs(r.usage.seconds - 11.0) < 0.05

    with open(AUDIO / "jfk.wav", "rb") as f:
        plain = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert plain.text == r.text and not getattr(plain, "logprobs", None)
    with open(AUDIO / "jfk.wav", "rb") as f:
        verbose = client.audio.transcriptions.create(model="whisper-1", file=f,
                                                     response_format="verbose_json")
    assert verbose.usage.seconds == pytest.approx(verbose.duration, abs=1e-3)

    with open(AUDIO / "jfk.wav", "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True,
                                                         include=["logprobs"]))
    deltas, done = events[:-1], events[-1]
    assert done.type == "transcript.text.done" and done.usage.seconds == pytest.approx(11.0, abs=0.05)
    for d in deltas:
        assert "".join(lp.token for lp in d.logprobs) == d.delta
    assert len(done.logprobs) == sum(len(d.logprobs) for d in deltas) == len(r.logprobs)


def test_bad_include_is_refused(server):
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "include[]": "everything"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "include[]", r.text


def language_of(server, path, **fields):
    with open(path, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "response_format": "verbose_json", **fields}, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()["language"]


def test_detection_among_allowed_languages(server):
    assert language_of(server, GERMAN) == "german"
    # German is not allowed: the likelier of the allowed ones is chosen, never German.
    assert language_of(server, GERMAN, language="en,fr") in ("english", "french")
    assert language_of(server, GERMAN, allowed_languages="english, de") == "german"
    # The language route reports the restricted choice: the allowed languages' probabilities only.
    with open(GERMAN, "rb") as f:
        r = requests.post(server.url("/v1/audio/language"), files={"file": ("a.wav", f)},
                          data=[("languages[]", "en"), ("languages[]", "fr")], timeout=300)
    body = r.json()
    assert r.status_code == 200, r.text
    assert sorted(x["language"] for x in body["languages"]) == ["en", "fr"]
    assert sum(x["probability"] for x in body["languages"]) == pytest.approx(1.0, abs=1e-6)
    for bad in ({"language": "en,klingon"}, {"allowed_languages": "xx"}):
        with open(GERMAN, "rb") as f:
            r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                              data={"model": "whisper-1", **bad}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] in bad, r.text


def test_allowed_languages_setting_is_the_default(make_server):
    server = make_server(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, INFERENCE_THREADS=2,
                         WHISPER_ALLOWED_LANGUAGES="en,fr")
    assert language_of(server, GERMAN) in ("english", "french")
    assert language_of(server, GERMAN, language="de") == "german"  # a request's language wins


def test_keyterms_bring_rare_names_in(server, tmp_path):
    glossary, clips = build(tmp_path)
    tune = [c for c in clips if c["split"] == "tune"][:6]
    said = sum(len(c["terms"]) for c in tune)
    recalled = {}
    for fields in ({}, {"keyterms": ", ".join(glossary)}):
        hits = 0
        for c in tune:
            with open(c["path"], "rb") as f:
                r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                                  data={"model": "whisper-1", "language": "en", **fields}, timeout=300)
            assert r.status_code == 200, r.text
            hits += len(found_terms(r.json()["text"], glossary) & set(c["terms"]))
        recalled[bool(fields)] = hits
    # Measured on these clips (bench/vocabulary.md): far more terms come back with them.
    assert recalled[True] >= recalled[False] + said // 4, (recalled, said)


def test_keyterms_are_bounded_and_reach_every_route(server):
    jfk = (AUDIO / "jfk.wav").read_bytes()
    cases = [({"keyterms": ",".join(f"term{i}" for i in range(101))}, "keyterms"),
             ({"keyterms": "x" * 65}, "keyterms"),
             ({"hotwords": "[1, 2]"}, "hotwords"),
             ({"keyterm_boost": "11"}, "keyterm_boost")]
    for fields, param in cases:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", jfk)},
                          data={"model": "whisper-1", **fields}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (fields, r.text)
        r = requests.post(server.url("/sync/v1/transcribe"), files={"file": ("a.wav", jfk)},
                          data=fields, timeout=60)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == param, (fields, r.text)
    # A JSON array works as a list, on the Python project's route too; JFK's words stay.
    r = requests.post(server.url("/sync/v1/transcribe"), files={"file": ("a.wav", jfk)},
                      data={"keyterms": '["Kennedy", "Americans"]'}, timeout=300)
    assert r.status_code == 200, r.text
    assert "americans" in words(r.json()["transcription"])
