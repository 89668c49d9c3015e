"""Who spoke when, end to end on real and synthetic conversations: `speech-recognition-api
diarize` on pyannote's own human-annotated sample (two speakers, from the pyannote-audio wheel)
and on a three-voice meeting made with Debian's flite voices, scored by the diarization error rate
(no collar, overlap scored) against the reference turns."""
import subprocess
import zipfile

import pytest

from conftest import AUDIO, BINARY, REPO, base_env
from diarization_error import der, read_rttm
from flite_meeting import LINES, build_meeting

MODELS = REPO / "models"


def diarize(path, *args):
    r = subprocess.run([str(BINARY), "diarize", str(path), "--segmentation",
                        str(MODELS / "pyannote-segmentation-3.0.bin"), "--embedding",
                        str(MODELS / "campplus-zh-en.pt"), *args],
                       capture_output=True, text=True, timeout=600, env=base_env())
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def pyannote_sample(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pyannote")
    r = subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory),
                        "pyannote.audio==4.0.7"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(directory / "pyannote_audio-4.0.7-py3-none-any.whl") as z:
        (directory / "sample.wav").write_bytes(z.read("pyannote/audio/sample/sample.wav"))
        rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
    return directory / "sample.wav", read_rttm(rttm)


@pytest.fixture(scope="module")
def flite_meeting(tmp_path_factory):
    """Three flite voices taking turns, and the turns as they were made."""
    return build_meeting(tmp_path_factory.mktemp("meeting"))


def test_pyannotes_sample(pyannote_sample):
    path, reference = pyannote_sample
    hypothesis = read_rttm(diarize(path, "--rttm"))
    rate, details = der(reference, hypothesis)
    print(f"\npyannote sample: DER {rate:.1%} {details}")
    assert len({s for _, _, s in hypothesis}) == 2
    assert rate <= 0.15, details  # senko 0.2.2 (the reference): 22.7 %


def test_a_three_voice_meeting(flite_meeting):
    path, reference = flite_meeting
    hypothesis = read_rttm(diarize(path, "--rttm"))
    rate, details = der(reference, hypothesis)
    print(f"\nflite meeting: DER {rate:.1%} {details}")
    assert len({s for _, _, s in hypothesis}) == 3
    assert rate <= 0.08, details


def test_one_voice_and_the_counts_asked_for(flite_meeting):
    import json
    out = json.loads(diarize(AUDIO / "jfk.wav"))
    assert out["speakers"] == 1 and out["turns"], out
    assert out["turns"][0]["start"] < 1.0 and out["turns"][-1]["end"] > 9.0
    path, _ = flite_meeting
    assert json.loads(diarize(path, "--num-speakers", "2"))["speakers"] == 2
    assert json.loads(diarize(path, "--max-speakers", "2"))["speakers"] == 2


def voice_at(reference, start, end):
    """The reference voice speaking most of [start, end)."""
    best, most = None, 0.0
    for s, e, voice in reference:
        overlap = min(e, end) - max(s, start)
        if overlap > most:
            best, most = voice, overlap
    return best


@pytest.fixture
def diarizing_server(make_server):
    return make_server(MODEL="whisper", WHISPER_MODEL_PATH=MODELS / "ggml-base.bin",
                       WHISPER_MODELS_DIR=MODELS, MODEL_DOWNLOAD="false", INFERENCE_THREADS=1)


def test_openai_sdk_gets_a_diarized_transcription(diarizing_server, flite_meeting):
    """OpenAI's Python SDK asking gpt-4o-transcribe-diarize for diarized_json gets its
    TranscriptionDiarized object: segments cut at speaker changes, labelled A, B, C, each
    label standing for one voice of the meeting."""
    from openai import OpenAI
    from openai.types.audio import TranscriptionDiarized
    path, reference = flite_meeting
    client = OpenAI(base_url=diarizing_server.url("/v1"), api_key="unused", timeout=600)
    with open(path, "rb") as f:
        result = client.audio.transcriptions.create(model="gpt-4o-transcribe-diarize", file=f,
                                                    response_format="diarized_json",
                                                    chunking_strategy="auto")
    assert isinstance(result, TranscriptionDiarized)
    assert result.task == "transcribe" and abs(result.duration - reference[-1][1] - 0.5) < 0.1
    assert "export feature" in result.text
    labels = {s.speaker for s in result.segments}
    assert labels == {"A", "B", "C"}, labels
    assert all(s.type == "transcript.text.segment" and s.end > s.start for s in result.segments)
    # Each label is one voice: the segments' voices by time agree with their labels.
    votes = {}
    for s in result.segments:
        votes.setdefault(s.speaker, []).append(voice_at(reference, s.start, s.end))
    mapping = {label: max(set(v), key=v.count) for label, v in votes.items()}
    assert sorted(mapping.values()) == ["awb", "rms", "slt"], mapping
    agree = sum(mapping[s.speaker] == voice_at(reference, s.start, s.end) for s in result.segments)
    assert agree >= 0.9 * len(result.segments), (agree, len(result.segments))
    assert mapping["A"] == "slt"  # labelled in order of appearance


def reference_clip(directory, voice, text):
    """A data URL of one flite voice saying `text` (a known speaker's reference clip)."""
    import base64
    path, _ = build_meeting(directory, [(voice, text)], name=f"{voice}-reference.wav")
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_known_speakers_are_named_by_their_clips(diarizing_server, flite_meeting, tmp_path):
    """OpenAI's known_speaker_names[] + known_speaker_references[]: each voice matching a clip
    (other sentences than the meeting's) gets its name, the unknown voice a letter, and a known
    voice who is not in the meeting names nobody; streamed, the same segments come as
    transcript.text.segment events after the text's deltas."""
    from openai import OpenAI
    path, reference = flite_meeting
    chair = reference_clip(tmp_path, "slt", "Our quarterly numbers look better than we expected in spring.")
    engineer = reference_clip(tmp_path, "awb", "I will send the minutes to everyone right after lunch.")
    absent = reference_clip(tmp_path, "kal", "The weather in the north will be cold and windy tomorrow.")
    client = OpenAI(base_url=diarizing_server.url("/v1"), api_key="unused", timeout=600)
    with open(path, "rb") as f:
        result = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=f, response_format="diarized_json",
            chunking_strategy="auto", known_speaker_names=["guest", "chair", "engineer"],
            known_speaker_references=[absent, chair, engineer])
    votes = {}
    for s in result.segments:
        votes.setdefault(s.speaker, []).append(voice_at(reference, s.start, s.end))
    mapping = {label: max(set(v), key=v.count) for label, v in votes.items()}
    assert mapping == {"chair": "slt", "engineer": "awb", "A": "rms"}, mapping

    # Streamed: deltas as the text comes, then the speakers' segments, then the whole text.
    with open(path, "rb") as f:
        events = list(client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=f, response_format="diarized_json", stream=True,
            chunking_strategy="auto", known_speaker_names=["chair", "engineer"],
            known_speaker_references=[chair, engineer]))
    kinds = [e.type for e in events]
    assert kinds[0] == "transcript.text.delta" and kinds[-1] == "transcript.text.done", kinds
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert kinds.index("transcript.text.segment") > max(i for i, k in enumerate(kinds)
                                                         if k == "transcript.text.delta")
    assert [(s.speaker, s.text) for s in segments] == [(s.speaker, s.text) for s in result.segments]
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta").strip() \
        == events[-1].text.strip()


def test_known_speakers_are_checked_before_any_work(diarizing_server, tmp_path):
    """Every way a known speaker can be wrong is a 400 naming its field, before transcription."""
    import base64
    import requests
    clip = reference_clip(tmp_path, "slt", "Our quarterly numbers look better than we expected.")
    import io
    import wave
    short = io.BytesIO()
    with wave.open(short, "wb") as w:  # 1 s: a reference must last 1.2 s
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(32000))
    short_url = "data:audio/wav;base64," + base64.b64encode(short.getvalue()).decode()
    cases = [
        ({"known_speaker_names[]": ["chair"]}, "known_speaker_references[]"),           # no clip
        ({"known_speaker_names[]": ["a", "b"], "known_speaker_references[]": [clip]},
         "known_speaker_references[]"),                                                  # one short
        ({"known_speaker_names[]": ["chair"], "known_speaker_references[]": ["aGVsbG8="]},
         "known_speaker_references[]"),                                                  # not a URL
        ({"known_speaker_names[]": ["chair"],
          "known_speaker_references[]": ["data:audio/wav;base64," + base64.b64encode(b"not audio").decode()]},
         "known_speaker_references[]"),                                                  # not audio
        ({"known_speaker_names[]": ["chair"], "known_speaker_references[]": [short_url]},
         "known_speaker_references[]"),                                                  # too short
        ({"known_speaker_names[]": ["chair", "chair"], "known_speaker_references[]": [clip, clip]},
         "known_speaker_names[]"),                                                       # twice
        ({"known_speaker_names[]": ["a", "b", "c", "d", "e"], "known_speaker_references[]": [clip] * 5},
         "known_speaker_names[]"),                                                       # five
        ({"known_speaker_names[]": ["\u0007bell"], "known_speaker_references[]": [clip]},
         "known_speaker_names[]"),                                                       # control
    ]
    for fields, param in cases:
        with open(AUDIO / "jfk.wav", "rb") as f:
            r = requests.post(diarizing_server.url("/v1/audio/transcriptions"), files={"file": f},
                              data={"model": "whisper-1", "response_format": "diarized_json", **fields},
                              timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (fields.keys(), r.text)
    # Known speakers need diarization.
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = requests.post(diarizing_server.url("/v1/audio/transcriptions"), files={"file": f},
                          data={"model": "whisper-1", "known_speaker_names[]": ["chair"],
                                "known_speaker_references[]": [clip]}, timeout=60)
    assert r.status_code == 400 and "diarization" in r.json()["error"]["message"], r.text
    # A clip larger than a clip field may be is refused as it arrives.
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = requests.post(diarizing_server.url("/v1/audio/transcriptions"), files={"file": f},
                          data={"model": "whisper-1", "response_format": "diarized_json",
                                "known_speaker_names[]": ["chair"],
                                "known_speaker_references[]": ["data:audio/wav;base64," + "A" * (5 << 20)]},
                          timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "known_speaker_references[]", r.text


def test_verbose_json_and_the_async_route_carry_speakers(diarizing_server, flite_meeting):
    import time
    import requests
    path, reference = flite_meeting
    with open(path, "rb") as f:
        r = requests.post(diarizing_server.url("/v1/audio/transcriptions"), files={"file": f},
                          data={"model": "whisper-1", "response_format": "verbose_json", "diarize": "true",
                                "num_speakers": "3", "timestamp_granularities[]": "word"}, timeout=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {w["speaker"] for w in body["words"]} == {"A", "B", "C"}
    # Bounds and contradictions are refused before any work.
    for data, field in [({"diarize": "true", "num_speakers": "0"}, "num_speakers"),
                        ({"diarize": "true", "min_speakers": "4", "max_speakers": "2"}, "min_speakers"),
                        ({"num_speakers": "2"}, "num_speakers")]:
        with open(AUDIO / "jfk.wav", "rb") as f:
            r = requests.post(diarizing_server.url("/v1/audio/transcriptions"), files={"file": f},
                              data={"model": "whisper-1", **data}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text
    # The Python project's async route: diarize=true stores the speakers with the task.
    with open(path, "rb") as f:
        task = requests.post(diarizing_server.url("/async/v1/transcribe"), files={"file": f},
                             data={"diarize": "true"}, timeout=60).json()["task_id"]
    deadline = time.time() + 600
    while requests.get(diarizing_server.url(f"/async/v1/transcribe/{task}"), timeout=30).json()["status"] != "SUCCESS":
        assert time.time() < deadline
        time.sleep(0.5)
    rttm = requests.get(diarizing_server.url(f"/async/v1/transcribe/{task}?response_format=rttm"), timeout=30)
    assert rttm.status_code == 200
    turns = read_rttm(rttm.text)
    assert {s for _, _, s in turns} == {"A", "B", "C"}
    rate, details = der(reference, turns)
    assert rate <= 0.08, details
    vtt = requests.get(diarizing_server.url(f"/async/v1/transcribe/{task}?response_format=vtt"), timeout=30).text
    assert vtt.startswith("WEBVTT") and "<v A>" in vtt and "<v C>" in vtt
    diarized = requests.get(diarizing_server.url(f"/async/v1/transcribe/{task}?response_format=diarized_json"),
                            timeout=30).json()
    assert {s["speaker"] for s in diarized["segments"]} == {"A", "B", "C"}
    # A task without speakers cannot give them.
    with open(AUDIO / "jfk.wav", "rb") as f:
        plain = requests.post(diarizing_server.url("/async/v1/transcribe"), files={"file": f}, timeout=60).json()["task_id"]
    deadline = time.time() + 300
    while requests.get(diarizing_server.url(f"/async/v1/transcribe/{plain}"), timeout=30).json()["status"] != "SUCCESS":
        assert time.time() < deadline
        time.sleep(0.5)
    r = requests.get(diarizing_server.url(f"/async/v1/transcribe/{plain}?response_format=rttm"), timeout=30)
    assert r.status_code == 422 and "diarize=true" in r.text, r.text


def test_the_web_page_shows_speakers_in_colours(diarizing_server, flite_meeting):
    """The web page with "Speakers" ticked, sync and async: each segment's row carries its
    speaker's badge, one colour per speaker, and the transcript is a paragraph per turn."""
    import json
    import pathlib
    node_dir = pathlib.Path(__file__).parent / "node"
    path, reference = flite_meeting
    r = subprocess.run(["node", str(node_dir / "web_speakers.mjs"), diarizing_server.url(""), str(path),
                        str(pathlib.Path(__file__).parent / "artifacts")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for mode in ("sync", "async"):
        shown = summary[mode]
        assert shown["status"].startswith("Done"), shown["status"]
        colours = {}
        for row in shown["rows"]:
            colours.setdefault(row["speaker"], set()).add(row["colour"])
        assert set(colours) == {"A", "B", "C"}, colours
        assert all(len(c) == 1 for c in colours.values()), colours       # one colour per speaker
        assert len({next(iter(c)) for c in colours.values()}) == 3, colours  # and they differ
        turns = shown["turns"]
        assert all(a["speaker"] != b["speaker"] for a, b in zip(turns, turns[1:]))
        assert len(turns) >= 10 and {t["colour"] for t in turns} == {next(iter(c)) for c in colours.values()}
        assert "export feature" in " ".join(t["text"] for t in turns)


def test_deepgram_clients_get_speakers(diarizing_server, flite_meeting):
    """deepgram-sdk asking for diarize=true: each word's speaker, utterances and paragraphs split
    where the speaker changes; a live connection asking for it is refused."""
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment
    base = diarizing_server.url("")
    client = DeepgramClient(api_key="unused", timeout=600, environment=DeepgramClientEnvironment(
        base=base, production=base.replace("http", "ws"), agent=base, agent_rest=base))
    path, reference = flite_meeting
    response = client.listen.v1.media.transcribe_file(request=path.read_bytes(), model="nova-3",
                                                      diarize=True, utterances=True, punctuate=True,
                                                      paragraphs=True)
    words = response.results.channels[0].alternatives[0].words
    assert {w.speaker for w in words} == {0, 1, 2}
    agree = sum({0: "slt", 1: "awb", 2: "rms"}[w.speaker] == voice_at(reference, w.start, w.end)
                for w in words)
    assert agree >= 0.9 * len(words), (agree, len(words))
    utterances = response.results.utterances
    assert len(utterances) >= len(LINES) - 1
    assert all({w.speaker for w in u.words} == {u.speaker} for u in utterances)
    paragraphs = response.results.channels[0].alternatives[0].paragraphs
    assert paragraphs.transcript.lstrip().startswith("Speaker 0: ")
    import requests
    r = requests.get(diarizing_server.url("/v1/listen?diarize=true"),
                     headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=30)
    assert r.status_code == 400 and "diarize" in r.json()["err_msg"], r.text


def test_the_diarization_route(diarizing_server, flite_meeting):
    """POST /v1/audio/diarization as LocalAI's and speaches' clients call it: json, verbose_json,
    rttm; its fields bounded."""
    import requests
    path, reference = flite_meeting

    def post(**data):
        with open(path, "rb") as f:
            return requests.post(diarizing_server.url("/v1/audio/diarization"), files={"file": f},
                                 data=data, timeout=600)
    body = post(model="whisper-1").json()
    assert body["task"] == "diarize" and body["num_speakers"] == 3, body
    assert [s["id"] for s in body["segments"]] == list(range(len(body["segments"])))
    assert {s["speaker"] for s in body["segments"]} == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    assert body["segments"][0]["speaker"] == "SPEAKER_00" and body["segments"][0]["label"] == "0"
    turns = [(s["start"], s["end"], s["speaker"]) for s in body["segments"]]
    rate, details = der(reference, turns)
    assert rate <= 0.08, details
    verbose = post(response_format="verbose_json", num_speakers="2").json()
    assert verbose["num_speakers"] == 2 and len(verbose["speakers"]) == 2
    assert sum(s["duration"] for s in verbose["speakers"]) > 40
    rttm = post(response_format="rttm", min_duration_on="1.0")
    assert rttm.status_code == 200 and rttm.headers["content-type"].startswith("text/plain")
    lines = read_rttm(rttm.text)
    assert lines and all(end - start >= 1.0 - 1e-3 for start, end, _ in lines)
    for data, param in [({"include_text": "true"}, "include_text"), ({"num_speakers": "65"}, "num_speakers"),
                        ({"clustering_threshold": "9"}, "clustering_threshold"),
                        ({"min_speakers": "3", "max_speakers": "2"}, "min_speakers"),
                        ({"response_format": "srt"}, "response_format"), ({"bogus": "1"}, "bogus")]:
        r = post(**data)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (data, r.text)
    r = post(model="no-such-model")
    assert r.status_code == 404


def test_missing_speaker_models_fail_the_request_before_any_work(make_server, tmp_path):
    """A diarization model that is missing (and may not be pulled) refuses the request once its
    audio is decoded, before it is transcribed: 503 naming what to run, on every route that
    diarizes, and no audio counted as transcribed; audio that cannot be decoded is still a 400."""
    import requests
    from conftest import metric
    models = tmp_path / "models"
    models.mkdir()
    (models / "ggml-base.bin").symlink_to(MODELS / "ggml-base.bin")
    server = make_server(MODEL="whisper", WHISPER_MODEL_PATH=MODELS / "ggml-base.bin", WHISPER_MODELS_DIR=models,
                         MODEL_DOWNLOAD="false")
    long_clip = AUDIO.parent / "whisper" / "audio" / "long" / "long_00000.wav"
    for route, data in [("/v1/audio/transcriptions", {"model": "whisper-1", "diarize": "true"}),
                        ("/v1/audio/diarization", {}),
                        ("/v1/listen?diarize=true", None)]:
        with open(long_clip, "rb") as f:
            if data is None:  # Deepgram's body is the audio itself
                r = requests.post(server.url(route), data=f, headers={"Content-Type": "audio/wav"}, timeout=60)
            else:
                r = requests.post(server.url(route), files={"file": f}, data=data, timeout=60)
        assert r.status_code == 503, (route, r.text)
        assert "models pull pyannote-segmentation-3.0" in r.text, r.text
    assert metric(server, "sra_audio_seconds_total") == 0
    r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("x.wav", b"not audio" * 50)},
                      data={"model": "whisper-1", "diarize": "true"}, timeout=60)
    assert r.status_code == 400, r.text
