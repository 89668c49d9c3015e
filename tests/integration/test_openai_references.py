"""The server against OpenAI's own whisper.transcribe() on the real base model, for the options
greedy decoding does not cover (tests/reference/openai/base.decoding.jsonl, written by
tests/reference/make_openai_references.py, which says how): translation of German and French
speech (the language detected, then translated), beam search with patience, initial_prompt with
and without carry_initial_prompt, and hallucination_silence_threshold on a clip where it moves
the windows. Each case must give OpenAI's text and, segment by segment, its windows (seek), its
token ids and its times (within 20 ms: word-adjusted times come from float attention weights).

best_of is not here: it only matters when sampling (temperature > 0), and OpenAI samples with
PyTorch's random generator, whose draws no other implementation reproduces. What it shares with
beam search, the ranking of finished candidates by OpenAI's MaximumLikelihoodRanker, is checked
here through beam search; the unit tests check that sampling with best_of is reproducible with a
seed and that the combinations OpenAI refuses are refused."""
import json
import wave

import pytest
import requests

from conftest import AUDIO, BASE_MODEL, REPO, SHARED

REFERENCE = REPO / "tests" / "reference" / "openai" / "base.decoding.jsonl"
CLIPS = [REPO / "tests" / "reference" / "audio", AUDIO, SHARED / "whisper" / "audio" / "words"]
TOLERANCE = 0.02  # seconds


def references():
    return [json.loads(line) for line in REFERENCE.read_text().splitlines()]


def clip(name, tmp_path):
    if name == "seed_x3.wav":  # seed-audio.wav three times over, as the generator makes it
        with wave.open(str(AUDIO / "seed-audio.wav")) as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
        path = tmp_path / name
        with wave.open(str(path), "wb") as w:
            w.setparams(params)
            w.writeframes(frames * 3)
        return path
    for folder in CLIPS:
        if (folder / name).exists():
            return folder / name
    raise AssertionError(f"{name} is in none of {CLIPS}")


def case_id(ref):
    options = {k: v for k, v in ref["options"].items() if k not in ("temperature", "language")}
    return ref["file"] + "-" + "-".join(f"{k}={str(v)[:20]}" for k, v in options.items())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server, base_env
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    # The references' temperature=0.0 is one temperature, no fallback: the server's default set
    # to it (the OpenAI route's own `temperature` field of 0 lets the model raise it, as
    # OpenAI's API does).
    s = Server(tmp_path_factory.mktemp("references"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, WHISPER_TEMPERATURE="0")).start()
    yield s
    s.stop()


@pytest.mark.parametrize("ref", references(), ids=case_id)
def test_the_server_gives_openais_result(server, ref, tmp_path):
    fields = {"model": "whisper-1", "response_format": "verbose_json"}
    for key, value in ref["options"].items():
        if key == "temperature":
            assert value == 0.0  # the server's default (above)
            continue
        fields[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if ref["options"].get("word_timestamps"):
        fields["timestamp_granularities[]"] = ["word", "segment"]
    with open(clip(ref["file"], tmp_path), "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": (ref["file"], f)},
                          data=fields, timeout=900)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["text"] == ref["text"].strip()
    assert [s["seek"] for s in got["segments"]] == [s["seek"] for s in ref["segments"]]
    for want, have in zip(ref["segments"], got["segments"], strict=True):
        assert have["tokens"] == want["tokens"], (want["text"], have["text"])
        assert abs(have["start"] - want["start"]) <= TOLERANCE, (want, have)
        assert abs(have["end"] - want["end"]) <= TOLERANCE, (want, have)
        assert abs(have["avg_logprob"] - want["avg_logprob"]) < 2e-3, (want, have)
    if ref["options"].get("task") == "translate" or "language" not in ref["options"]:
        assert got["language"] == {"de": "german", "fr": "french"}[ref["language"]]


def test_each_option_changes_the_result_it_is_tested_on():
    """A reference is worth having only where its option makes a difference: translation differs
    from transcription, and hallucination_silence_threshold and carry_initial_prompt each from
    the same call without them."""
    refs = references()

    def find(file, **options):
        wanted = dict(options)
        for r in refs:
            if r["file"] == file and r["options"] == wanted:
                return r
        raise AssertionError(f"no reference for {file} {options}")

    def shape(r):
        return [(s["seek"], s["tokens"]) for s in r["segments"]]

    assert find("german.wav", task="translate", temperature=0.0)["text"] != \
        find("german.wav", task="transcribe", temperature=0.0)["text"]
    words = dict(language="en", temperature=0.0, word_timestamps=True)
    assert shape(find("seed_x3.wav", **words, hallucination_silence_threshold=2.0)) != \
        shape(find("seed_x3.wav", **words))
    prompted = dict(language="en", temperature=0.0, condition_on_previous_text=False,
                    initial_prompt="and so my fellow americans ask not what your country can do for you")
    assert shape(find("long_mix.wav", **prompted, carry_initial_prompt=True)) != \
        shape(find("long_mix.wav", **prompted))
