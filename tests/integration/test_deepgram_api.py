"""Deepgram's pre-recorded listen API (`POST /v1/listen`), spoken to with PyPI `deepgram-sdk`'s own
client pointed at this server, as Pipecat's and LiveKit's Deepgram services are."""
import wave

import numpy as np
import pytest
import requests
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from conftest import AUDIO, BASE_MODEL, REPO, Server, base_env, words

VAD_MODEL = REPO / "models" / "silero_vad-v6.2.3.onnx"  # scripts/test.sh pulls it

KEY = "dg-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    assert VAD_MODEL.exists(), "scripts/test.sh pulls models/silero_vad-v6.2.3.onnx"
    s = Server(tmp_path_factory.mktemp("deepgram"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, INFERENCE_THREADS=2,
                        API_KEY=KEY, VAD_MODEL_PATH=VAD_MODEL)).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    base = f"http://127.0.0.1:{server.port}"
    return DeepgramClient(api_key=KEY, environment=DeepgramClientEnvironment(
        base=base, production=base.replace("http", "ws"), agent=base, agent_rest=base))


def openai_text(server, path):
    with open(path, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": (path.name, f)},
                          data={"model": "whisper-1", "language": "en"},
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=300)
    r.raise_for_status()
    return r.json()["text"].strip()


def test_the_sdk_gets_words_with_times_and_the_same_text_as_openais_route(server, client):
    audio = (AUDIO / "jfk.wav").read_bytes()
    response = client.listen.v1.media.transcribe_file(
        request=audio, model="nova-3", language="en-US", smart_format=True, utterances=True,
        paragraphs=True, tag=["wyoming", "test"])
    alternative = response.results.channels[0].alternatives[0]
    reference = openai_text(server, AUDIO / "jfk.wav")
    assert alternative.transcript == reference
    assert 0.5 < alternative.confidence <= 1
    assert [w.word for w in alternative.words] == words(reference)
    assert " ".join(w.punctuated_word for w in alternative.words) == reference
    starts = [w.start for w in alternative.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in alternative.words)
    assert 0 <= starts[0] < 1.5 and 9 < alternative.words[-1].end <= 11.1
    assert response.metadata.duration == pytest.approx(11.0, abs=0.01)
    assert response.metadata.request_id and response.metadata.tags == ["wyoming", "test"]
    # Utterances and paragraphs cover every word, in order.
    utterances = response.results.utterances
    assert utterances and sum(len(u.words) for u in utterances) == len(alternative.words)
    paragraphs = alternative.paragraphs.paragraphs
    assert sum(p.num_words for p in paragraphs) == len(alternative.words)
    sentences = [s.text for p in paragraphs for s in p.sentences]
    assert " ".join(sentences) == reference


def test_without_punctuate_the_transcript_is_plain_words_and_language_is_detected(client):
    response = client.listen.v1.media.transcribe_file(
        request=(AUDIO / "jfk.mp3").read_bytes(), detect_language=True)
    channel = response.results.channels[0]
    alternative = channel.alternatives[0]
    assert channel.detected_language == "en"
    assert alternative.transcript == " ".join(w.word for w in alternative.words)
    assert alternative.transcript == alternative.transcript.lower()
    assert "," not in alternative.transcript and "country" in alternative.transcript.split()
    assert all(getattr(w, "punctuated_word", None) is None for w in alternative.words)


def test_raw_linear16_stereo_at_another_rate(server, client):
    with wave.open(str(AUDIO / "jfk.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    t_in = np.arange(len(pcm)) / 16000
    t_out = np.arange(int(len(pcm) * 24000 / 16000)) / 24000
    mono = np.interp(t_out, t_in, pcm)
    stereo = np.stack([mono, mono], axis=1).round().astype(np.int16).tobytes()
    # The SDK's REST call has no sample_rate or channels: sent as extra query parameters.
    response = client.listen.v1.media.transcribe_file(
        request=stereo, encoding="linear16", punctuate=True,
        request_options={"additional_query_parameters": {"sample_rate": 24000, "channels": 2}})
    got = words(response.results.channels[0].alternatives[0].transcript)
    reference = words(openai_text(server, AUDIO / "jfk.wav"))
    assert len(set(got) & set(reference)) >= len(set(reference)) - 2, got


def test_keyterms_reach_the_model(client):
    response = client.listen.v1.media.transcribe_file(
        request=(AUDIO / "jfk.wav").read_bytes(), keyterm=["fellow Americans"],
        keywords=["country:2"], punctuate=True)
    assert "Americans" in response.results.channels[0].alternatives[0].transcript


def listen(server, query="", body=b"x", headers=None):
    h = {"Authorization": f"Token {KEY}"}
    h.update(headers or {})
    return requests.post(server.url("/v1/listen" + query), data=body, headers=h, timeout=120)


@pytest.mark.parametrize("query, field", [
    ("?diarize_model=nova", "diarize_model"),
    ("?callback=https://example.com/hook", "callback"),
    ("?summarize=v2", "summarize"),
    ("?no_such_parameter=1", "no_such_parameter"),
    ("?model=gpt-4o", "model"),
    ("?punctuate=maybe", "punctuate"),
    ("?utt_split=1000", "utt_split"),
    ("?encoding=linear16", "sample_rate"),
    ("?encoding=opus&sample_rate=16000", "encoding"),
    ("?sample_rate=100&encoding=linear16", "sample_rate"),
    ("?language=klingon", "language"),
    ("?language=en&language=de", "language"),
    ("?keyterm=" + "x" * 100, "keyterms"),
])
def test_what_it_cannot_honour_is_a_deepgram_400_naming_it(server, query, field):
    r = listen(server, query, body=(AUDIO / "jfk.wav").read_bytes()[:64000])
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["err_code"] == "Bad Request" and body["request_id"]
    assert body["err_msg"].startswith(field), body
    # Sent as false, an unsupported feature is not asked for: accepted.


def test_errors_in_deepgrams_shape(server, client):
    assert listen(server, "?diarize=false", body=(AUDIO / "jfk.wav").read_bytes()).status_code == 200
    r = listen(server, body=b"this is not audio at all" * 100)
    assert r.status_code == 400 and "err_msg" in r.json()
    r = listen(server, body=b"")
    assert r.status_code == 400
    r = requests.post(server.url("/v1/listen"), data=b"x", headers={"Authorization": "Token wrong"},
                      timeout=30)
    assert r.status_code == 401 and r.json()["err_code"] == "INVALID_AUTH"
    r = requests.post(server.url("/v1/listen"), json={"url": "http://169.254.169.254/"},
                      headers={"Authorization": f"Token {KEY}"}, timeout=30)
    assert r.status_code == 400 and "url" in r.json()["err_msg"]
    r = requests.get(server.url("/v1/listen"), headers={"Authorization": f"Token {KEY}"}, timeout=30)
    assert r.status_code in (405, 426) and "err_msg" in r.json()
    with pytest.raises(ApiError) as e:
        client.listen.v1.media.transcribe_file(request=b"\x00" * 10, sentiment=True)
    assert e.value.status_code == 400


# --- Live: GET /v1/listen over WebSocket ---

def jfk_pcm():
    with wave.open(str(AUDIO / "jfk.wav")) as w:
        return w.readframes(w.getnframes())


async def live_session(server, pcm, *, silence=0.0, then=("CloseStream",), **params):
    """Streams `pcm` (16 kHz linear16) in 100 ms messages with the SDK's async live client, then
    `silence` seconds of silence, then the control messages `then`; returns every message until
    the server closes the connection."""
    import asyncio
    from deepgram import AsyncDeepgramClient
    base = f"http://127.0.0.1:{server.port}"
    client = AsyncDeepgramClient(api_key=KEY, environment=DeepgramClientEnvironment(
        base=base, production=base.replace("http", "ws"), agent=base, agent_rest=base))
    received = []
    async with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate="16000",
                                        **params) as socket:
        async def receive():
            async for message in socket:
                received.append(message)
        reader = asyncio.create_task(receive())
        step = 3200
        audio = pcm + b"\x00\x00" * int(16000 * silence)
        for i in range(0, len(audio), step):
            await socket.send_media(audio[i:i + step])
            await asyncio.sleep(0.01)
        for control in then:
            if control == "wait":
                await asyncio.sleep(3)
            elif control == "Finalize":
                await socket.send_finalize()
            elif control == "KeepAlive":
                await socket.send_keep_alive()
            else:
                await socket.send_close_stream()
        await asyncio.wait_for(reader, 120)
    return received


def test_live_with_the_sdk_close_stream_gives_the_final_results_then_metadata(server):
    import asyncio
    messages = asyncio.run(live_session(server, jfk_pcm(), punctuate="true"))
    finals = [m for m in messages if getattr(m, "type", "") == "Results" and m.is_final]
    assert finals, messages
    assert messages[-1].type == "Metadata" and messages[-1].duration == pytest.approx(11.0, abs=0.1)
    text = " ".join(m.channel.alternatives[0].transcript for m in finals)
    reference = words(openai_text(server, AUDIO / "jfk.wav"))
    assert len(set(words(text)) & set(reference)) >= len(set(reference)) - 2, text
    # Timed words in session time, in order, within the audio.
    times = [w.start for m in finals for w in m.channel.alternatives[0].words]
    assert times == sorted(times) and 0 <= times[0] and times[-1] < 11.1
    assert all(w.punctuated_word for m in finals for w in m.channel.alternatives[0].words)
    assert any(m.from_finalize for m in finals)  # the turn CloseStream ended


def test_live_endpointing_interim_results_and_vad_events(server):
    import asyncio
    messages = asyncio.run(live_session(
        server, jfk_pcm(), silence=1.5, then=("wait", "Finalize", "KeepAlive", "CloseStream"),
        interim_results="true", vad_events="true", endpointing="300", utterance_end_ms="1000"))
    types = [getattr(m, "type", None) for m in messages]
    assert "SpeechStarted" in types and "UtteranceEnd" in types, types
    finals = [m for m in messages if m.type == "Results" and m.is_final]
    assert finals and all(m.speech_final for m in finals), types  # silence ended every turn
    interim = [m for m in messages if m.type == "Results" and not m.is_final]
    assert interim, types
    assert types[-1] == "Metadata"
    # The plain words without punctuate.
    assert "," not in finals[0].channel.alternatives[0].transcript


def test_live_refusals_before_the_upgrade(server):
    from websockets.sync.client import connect
    from websockets.exceptions import InvalidStatus
    url = f"ws://127.0.0.1:{server.port}/v1/listen"
    auth = {"Authorization": f"Token {KEY}"}
    for query, status in [("", 400), ("?encoding=linear16&sample_rate=16000&diarize=true", 400),
                          ("?encoding=linear16&sample_rate=16000&endpointing=5", 400),
                          ("?encoding=opus&sample_rate=16000", 400)]:
        with pytest.raises(InvalidStatus) as refused:
            connect(url + query, additional_headers=auth)
        assert refused.value.response.status_code == status, query
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "?encoding=linear16&sample_rate=16000")
    assert refused.value.response.status_code == 401
    # A browser's key as subprotocols.
    with connect(url + "?encoding=linear16&sample_rate=16000", subprotocols=["token", KEY]) as ws:
        assert ws.subprotocol == "token"
        ws.send('{"type": "Nonsense"}')
        import json as _json
        error = _json.loads(ws.recv(timeout=10))
        assert error["type"] == "Error" and "Nonsense" in error["description"]
        ws.send('{"type": "CloseStream"}')
        assert _json.loads(ws.recv(timeout=10))["type"] == "Metadata"


def test_pipecats_deepgram_service_pointed_at_us(server):
    """Pipecat's DeepgramSTTService (pipecat-ai 1.14.0, as voice agents use it) in a pipeline of
    Pipecat's own test harness, with `base_url` set to this server: audio frames in, transcription
    frames out."""
    import asyncio
    from pipecat.frames.frames import InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame
    from pipecat.pipeline.task import PipelineParams
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.tests.utils import SleepFrame, run_test

    pcm = jfk_pcm() + b"\x00\x00" * 16000 * 2  # the speech, then 2 s of silence ending the turn
    frames = [InputAudioRawFrame(audio=pcm[i:i + 640], sample_rate=16000, num_channels=1)
              for i in range(0, len(pcm), 640)]  # 20 ms frames, as a transport sends them
    paced = []
    for i, frame in enumerate(frames):
        paced.append(frame)
        if i % 50 == 49:
            paced.append(SleepFrame(sleep=0.5))  # a second of audio per half second
    paced.append(SleepFrame(sleep=8))
    stt = DeepgramSTTService(api_key=KEY, base_url=f"http://127.0.0.1:{server.port}",
                             sample_rate=16000)
    down, _ = asyncio.run(run_test(stt, frames_to_send=paced, start_timeout=30,
                                   pipeline_params=PipelineParams(audio_in_sample_rate=16000)))
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert finals, [type(f).__name__ for f in down][:50]
    text = " ".join(f.text for f in finals)
    reference = words(openai_text(server, AUDIO / "jfk.wav"))
    assert len(set(words(text)) & set(reference)) >= len(set(reference)) - 2, text
    assert any(isinstance(f, InterimTranscriptionFrame) for f in down)  # Pipecat asks for interims
