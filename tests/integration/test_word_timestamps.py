"""Word timestamps against OpenAI's own transcribe(word_timestamps=True) with the real base model
(shared/whisper/reference/words): every word equal, every time within 20 ms, the windows equal;
through OpenAI's Python SDK, the seed's routes and the subtitle layout options."""
import json

import openai
import pytest
import requests
import srt

from conftest import AUDIO, BASE_MODEL, SHARED, transcribe, wait_task

REFERENCE = SHARED / "whisper" / "reference" / "words" / "base.openai_words.jsonl"
TOLERANCE = 0.02  # seconds


def references():
    return [json.loads(line) for line in REFERENCE.read_text().splitlines()]


def clip(name):
    path = SHARED / "whisper" / "audio" / "words" / name
    return path if path.exists() else AUDIO / name


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server, base_env
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    # The reference's call: language="en", temperature=0.0 (no fallback), everything else OpenAI's.
    s = Server(tmp_path_factory.mktemp("words"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, WHISPER_TEMPERATURE="0",
                        WHISPER_LANGUAGE="en")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="not-needed", max_retries=0)


def assert_words_match(reference_words, words, context):
    assert [w["word"] for w in words] == [w["word"] for w in reference_words], context
    for ref, got in zip(reference_words, words):
        assert abs(got["start"] - ref["start"]) <= TOLERANCE, (context, ref, got)
        assert abs(got["end"] - ref["end"]) <= TOLERANCE, (context, ref, got)


@pytest.mark.parametrize("ref", references(),
                         ids=lambda r: r["file"] + ("-hst" if "hallucination_silence_threshold" in r["options"] else ""))
def test_words_and_windows_equal_openais(server, ref):
    fields = {"model": "whisper-1", "response_format": "verbose_json",
              "timestamp_granularities[]": ["word", "segment"]}
    if "hallucination_silence_threshold" in ref["options"]:
        fields["hallucination_silence_threshold"] = str(ref["options"]["hallucination_silence_threshold"])
    with open(clip(ref["file"]), "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": (ref["file"], f)},
                          data=fields, timeout=600)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["text"] == ref["text"].strip()
    ref_words = [dict(w, word=w["word"].strip()) for s in ref["segments"] for w in s["words"]]
    assert_words_match(ref_words, got["words"], ref["file"])
    # The same windows (the 52 s clip's third starts at the last word's end, 44.74 s), and the
    # segments' word-adjusted starts and ends.
    assert [s["seek"] for s in got["segments"]] == [s["seek"] for s in ref["segments"]]
    for ref_s, got_s in zip(ref["segments"], got["segments"]):
        assert abs(got_s["start"] - ref_s["start"]) <= TOLERANCE, (ref_s, got_s)
        assert abs(got_s["end"] - ref_s["end"]) <= TOLERANCE, (ref_s, got_s)


def test_openai_sdk_gets_words(client):
    ref = references()[0]
    assert ref["file"] == "jfk.wav"
    with open(AUDIO / "jfk.wav", "rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                                    timestamp_granularities=["word"])
    ref_words = [{"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
                 for s in ref["segments"] for w in s["words"]]
    assert_words_match(ref_words, [w.model_dump() for w in result.words], "sdk")
    assert not result.segments  # only words were asked for, as OpenAI answers


def test_seed_routes_carry_words_with_probabilities(server):
    ref = references()[0]
    task = transcribe(server, AUDIO / "jfk.wav", route="/async/v1/transcribe",
                      data={"word_timestamps": "true"}).json()["task_id"]
    assert wait_task(server, task, timeout=300)["status"] == "SUCCESS"
    verbose = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=verbose_json")).json()
    ref_words = [dict(w, word=w["word"].strip()) for s in ref["segments"] for w in s["words"]]
    assert_words_match(ref_words, verbose["words"], "async")
    for ref_word, word in zip((w for s in ref["segments"] for w in s["words"]), verbose["words"]):
        assert abs(word["probability"] - ref_word["probability"]) < 0.05, (ref_word, word)
    # Subtitle layout from the stored words: at most 20 characters per line, 2 lines per cue.
    body = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=srt"
                                   "&max_line_width=20&max_line_count=2")).text
    cues = list(srt.parse(body))
    assert len(cues) >= 3
    for cue in cues:
        lines = cue.content.split("\n")
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= 20 or " " not in line for line in lines), cue
    assert " ".join(c.content.replace("\n", " ") for c in cues) == verbose["text"]
    r = requests.get(server.url(f"/async/v1/transcribe/{task}?response_format=srt&max_line_width=0"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "max_line_width"


def test_subtitle_options_through_the_openai_route(client):
    with open(AUDIO / "jfk.wav", "rb") as f:
        body = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt",
                                                  extra_body={"highlight_words": "true"})
    cues = [block for block in body.split("\n\n")[1:] if block.strip()]
    underlined = [c for c in cues if "<u>" in c]
    assert len(underlined) == 22  # one cue per word of the reference
    with pytest.raises(openai.BadRequestError) as e:
        with open(AUDIO / "jfk.wav", "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt",
                                               extra_body={"max_line_count": "many"})
    assert e.value.body["param"] == "max_line_count"
