"""Home Assistant's Wyoming protocol (WYOMING_PORT), spoken to with PyPI `wyoming`'s own client the
way Home Assistant's Wyoming integration uses it: describe -> info, then transcribe, audio-start,
audio-chunks, audio-stop -> transcript (with the streaming transcript events around it)."""
import asyncio
import json
import socket
import wave

import numpy as np
import pytest
import requests
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong

from conftest import AUDIO, BASE_MODEL, Server, base_env, free_port, metric, words

SAMPLES_PER_CHUNK = 1024  # what Home Assistant sends


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    wyoming_port = free_port()
    s = Server(tmp_path_factory.mktemp("wyoming"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, INFERENCE_THREADS=2,
                        WYOMING_PORT=wyoming_port, WYOMING_MAX_AUDIO_SECONDS=40,
                        SERVED_MODELS="english=pocketsphinx")).start()
    s.wyoming_port = wyoming_port
    yield s
    s.stop()


def read_pcm(path):
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (16000, 2, 1)
        return w.readframes(w.getnframes())


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 300))


async def exchange(port, events, until=Transcript.is_type):
    """Sends `events` and collects what comes back until an event `until` accepts (and whatever
    follows it within a moment), or the connection ends."""
    received = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        while True:
            event = await client.read_event()
            if event is None:
                break
            received.append(event)
            if until(event.type):
                try:  # a transcript-stop may follow the transcript
                    more = await asyncio.wait_for(client.read_event(), 1)
                    if more is not None:
                        received.append(more)
                except asyncio.TimeoutError:
                    pass
                break
    return received


def utterance(pcm, rate=16000, width=2, channels=1, **transcribe):
    frame = width * channels
    step = SAMPLES_PER_CHUNK * frame
    yield Transcribe(**transcribe).event()
    yield AudioStart(rate=rate, width=width, channels=channels).event()
    for i in range(0, len(pcm), step):
        yield AudioChunk(rate=rate, width=width, channels=channels, audio=pcm[i:i + step]).event()
    yield AudioStop().event()


def http_text(server, path):
    with open(path, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": (path.name, f)},
                          data={"model": "whisper-1", "language": "en", "response_format": "json"},
                          timeout=300)
    r.raise_for_status()
    return r.json()["text"].strip()


def test_describe_lists_our_program_and_each_served_model_with_its_languages(server):
    events = run(exchange(server.wyoming_port, [Describe().event()], until=Info.is_type))
    info = Info.from_event(events[-1])
    assert len(info.asr) == 1
    program = info.asr[0]
    assert program.name == "speech-recognition-api" and program.installed
    assert program.supports_transcript_streaming
    models = {m.name: m for m in program.models}
    assert list(models) == ["whisper", "english"]
    # Whisper base is multilingual: every language of OpenAI's tokenizer; PocketSphinx: English.
    default = program.models[0]
    assert len(default.languages) >= 99 and {"en", "de", "ja"} <= set(default.languages)
    assert models["english"].languages == ["en"]


def test_home_assistant_flow_gives_the_same_words_as_the_http_api_with_streaming_events(server):
    pcm = read_pcm(AUDIO / "jfk.wav")
    events = run(exchange(server.wyoming_port, utterance(pcm, language="en")))
    types = [e.type for e in events]
    assert types[0] == TranscriptStart().event().type, types
    assert types[-2:] == ["transcript", "transcript-stop"], types
    chunks = [TranscriptChunk.from_event(e).text for e in events if TranscriptChunk.is_type(e.type)]
    assert chunks, types
    transcript = Transcript.from_event(events[-2])
    assert transcript.language == "en"
    # The same samples through the HTTP route: the same text, word for word.
    assert transcript.text == http_text(server, AUDIO / "jfk.wav")
    assert words("".join(chunks)) == words(transcript.text)
    assert "country" in words(transcript.text)


def test_other_rates_and_stereo_are_mixed_down_and_resampled(server):
    pcm = np.frombuffer(read_pcm(AUDIO / "jfk.wav"), dtype=np.int16)
    # 22.05 kHz stereo (left = the speech, right = the speech at half level).
    t_in = np.arange(len(pcm)) / 16000
    t_out = np.arange(int(len(pcm) * 22050 / 16000)) / 22050
    mono = np.interp(t_out, t_in, pcm.astype(np.float64))
    stereo = np.stack([mono, mono * 0.5], axis=1).round().astype(np.int16).tobytes()
    events = run(exchange(server.wyoming_port, utterance(stereo, rate=22050, channels=2)))
    text = Transcript.from_event(events[-2]).text
    reference = words(http_text(server, AUDIO / "jfk.wav"))
    got = words(text)
    assert len(set(got) & set(reference)) >= len(set(reference)) - 2, (text, reference)


def test_a_named_model_and_bias_terms_are_used(server):
    pcm = read_pcm(AUDIO / "jfk.wav")
    events = run(exchange(server.wyoming_port,
                          utterance(pcm, name="english", transcript_names=["Kennedy"] * 3,
                                    transcript_terms=["x" * 500])))
    transcript = Transcript.from_event(events[-2])
    # PocketSphinx's words, not Whisper's (no punctuation, lower case).
    assert transcript.text and transcript.text == transcript.text.lower()
    assert "," not in transcript.text


def test_streaming_events_are_left_out_when_turned_off(make_server):
    port = free_port()
    s = make_server(MODEL="pocketsphinx", WYOMING_PORT=port, WYOMING_TRANSCRIPT_STREAMING="false")
    events = run(exchange(port, utterance(read_pcm(AUDIO / "jfk.wav"))))
    assert [e.type for e in events] == ["transcript"]
    assert "Wyoming protocol (Home Assistant) on tcp://127.0.0.1:" in s.log()


def test_ping_and_unknown_events(server):
    async def talk():
        async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as client:
            from wyoming.event import Event
            await client.write_event(Event(type="synthesize", data={"text": "hello"}))
            await client.write_event(Ping(text="are you there").event())
            return await client.read_event()
    pong = run(talk())
    assert Pong.is_type(pong.type) and pong.data.get("text") == "are you there"


def raw_exchange(port, data, read_timeout=30):
    """Sends raw bytes, returns every byte until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def error_of(raw):
    header = json.loads(raw.split(b"\n", 1)[0])
    assert header["type"] == "error", raw[:200]
    return header["data"]


@pytest.mark.parametrize("data, code", [
    (b"this is not json\n", "invalid_request"),
    (b'["an array"]\n', "invalid_request"),
    (b'{"data": {}}\n', "invalid_request"),
    (b'{"type": "audio-chunk", "payload_length": 1000000000}\n', "invalid_request"),
    (b'{"type": "describe", "data_length": -5}\n', "invalid_request"),
    (b'{"type": "describe", "data_length": 4}\n[12]', "invalid_request"),
    (b"x" * 40000, "invalid_request"),
    (b'{"type": "audio-start", "data": {"rate": 16000, "width": 4, "channels": 1}}\n', "invalid_request"),
    (b'{"type": "audio-start", "data": {"rate": 100, "width": 2, "channels": 1}}\n', "invalid_request"),
    (b'{"type": "audio-start", "data": {"rate": "16000", "width": 2, "channels": 1}}\n', "invalid_request"),
    (b'{"type": "audio-stop"}\n', "invalid_request"),
    (b'{"type": "transcribe", "data": {"name": "no-such-model"}}\n', "not_found"),
    (b'{"type": "transcribe", "data": {"language": 7}}\n', "invalid_request"),
    (b'{"type": "audio-start", "data": {"rate": 16000, "width": 2, "channels": 2}}\n'
     b'{"type": "audio-chunk", "payload_length": 3}\nabc', "invalid_request"),
])
def test_hostile_bytes_get_an_error_event_and_the_connection_closed(server, data, code):
    assert error_of(raw_exchange(server.wyoming_port, data))["code"] == code
    assert requests.get(server.url("/health"), timeout=5).status_code == 200


def test_a_bad_language_is_refused_naming_it(server):
    pcm = read_pcm(AUDIO / "jfk.wav")[:32000]
    events = run(exchange(server.wyoming_port, utterance(pcm, language="klingon"),
                          until=lambda t: t in ("transcript", "error")))
    error = Error.from_event(events[-1])
    assert error.code == "invalid_request" and "klingon" in error.text


def test_an_utterance_past_the_bound_is_refused(server):
    second = b"\x00\x01" * 16000
    before = metric(server, 'sra_wyoming_total{kind="error"}') or 0
    raw = (b'{"type": "audio-start", "data": {"rate": 16000, "width": 2, "channels": 1}}\n' +
           (b'{"type": "audio-chunk", "payload_length": 32000}\n' + second) * 41)
    error = error_of(raw_exchange(server.wyoming_port, raw))
    assert error["code"] == "too_large" and "WYOMING_MAX_AUDIO_SECONDS" in error["text"]
    assert (metric(server, 'sra_wyoming_total{kind="error"}') or 0) > before


def test_a_client_that_leaves_mid_job_cancels_it(server):
    pcm = read_pcm(AUDIO / "jfk.wav") * 3  # 33 s: several windows of work
    before = metric(server, 'sra_transcriptions_total{outcome="cancelled"}') or 0
    with socket.create_connection(("127.0.0.1", server.wyoming_port)) as s:
        for event in utterance(pcm):
            header = {"type": event.type, "data": event.data}
            if event.payload:
                header["payload_length"] = len(event.payload)
            s.sendall(json.dumps(header).encode() + b"\n" + (event.payload or b""))
    from conftest import wait_until
    wait_until(lambda: (metric(server, 'sra_transcriptions_total{outcome="cancelled"}') or 0) > before,
               timeout=120, what="the abandoned job to be cancelled")
    assert requests.get(server.url("/health"), timeout=5).status_code == 200
