"""Live sessions (/v1/realtime) against a hostile client: the pace is a token bucket that idling
never fills past REALTIME_MAX_AHEAD_SECONDS, a session's memory does not grow with the square of
an append cut into many turns, a large message that is not an append is never parsed into a
document, every limit applies whether or not a turn is open, one client cannot hold every
session, a silent session is closed, and a page of another origin cannot open one. Each test
failed on the code before the second hardening round (issue 23); the docstrings say how."""
import base64
import json
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import AUDIO, SHARED
from test_realtime import pcm16, recv_json, until, vad_model, ws_url  # noqa: F401

TINY = SHARED / "whisper" / "models" / "ggml-tiny-test-f32.bin"


@pytest.fixture
def tiny_live(make_server, vad_model):  # noqa: F811
    """A server whose model is the fast random tiny-shaped one: these tests are about the
    session's bounds, not the words."""
    def make(**env):
        settings = dict(MODEL="whisper", WHISPER_MODEL_PATH=TINY, VAD_MODEL_PATH=vad_model, WHISPER_THREADS=1)
        settings.update(env)
        return make_server(**settings)
    return make


def peak_rss_mb(server):
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def append_event(pcm):
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


def closed_with(ws, code, timeout=30):
    with pytest.raises(ConnectionClosed) as closed:
        deadline = time.time() + timeout
        while time.time() < deadline:
            ws.recv(timeout=timeout)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code, closed.value


def manual_16k(ws):
    ws.send(json.dumps({"type": "transcription_session.update", "session": {
        "input_audio_format": "pcm16", "turn_detection": None}}))
    assert recv_json(ws)["type"] == "transcription_session.updated"


def test_idling_never_banks_more_than_the_pace_allows(tiny_live):
    """Before: audio was checked against the wall clock since the first append plus 30 s, so a
    session that idled banked credit (150 s idle, then one append of 60 s of audio went through)."""
    server = tiny_live(REALTIME_MAX_AHEAD_SECONDS=5)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        ws.send(append_event(b"\0" * 48000))  # 1 s at 24 kHz: the clock starts
        time.sleep(3)
        ws.send(append_event(b"\0" * 48000 * 7))  # 7 s: within 3 s idle + 5 s, past the bucket
        e = until(ws, "error")
        assert e["error"]["code"] == "input_audio_rate_exceeded"
        closed_with(ws, 1008)


def turns_pcm16(seconds, speech=0.3, silence=0.3):
    """16 kHz PCM of short speech bursts (cut from jfk.wav) and silences: many turns."""
    jfk = pcm16(AUDIO / "jfk.wav", 16000)
    out = bytearray()
    at = 0
    while len(out) < seconds * 32000:
        piece = jfk[at:at + int(speech * 32000) // 2 * 2]
        if len(piece) < int(speech * 32000):
            at = 0
            continue
        out += piece + b"\0" * (int(silence * 32000) // 2 * 2)
        at += len(piece) + 16000 * 2  # skip a second: other words
    return bytes(out[:seconds * 32000])


def test_an_append_of_many_turns_costs_memory_in_proportion(tiny_live):
    """Before: each turn's end copied the rest of the append back and the next turn copied it
    again, keeping the large allocations: one 1.9 MB append of 108 turns took the server's peak
    RSS from 69 MB to 713 MB."""
    server = tiny_live(REALTIME_MAX_AHEAD_SECONDS=90, REALTIME_MAX_PENDING_TURNS=1000,
                       REALTIME_PARTIAL_SECONDS=0)
    pcm = turns_pcm16(60)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 200, "prefix_padding_ms": 100}}}}}))
        assert recv_json(ws)["type"] == "session.updated"
        before = peak_rss_mb(server)
        ws.send(append_event(pcm))
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        committed = 0
        while True:
            e = recv_json(ws, timeout=120)
            committed += e["type"] == "input_audio_buffer.committed"
            if e["type"] == "input_audio_buffer.cleared":
                break
        assert committed >= 50, committed
        grown = peak_rss_mb(server) - before
    # The append's own bytes (2 MB of base64, 2 MB decoded, 4 MB of samples) and the turns'.
    assert grown < 60, f"peak RSS grew by {grown:.0f} MB for a 1.9 MB append of {committed} turns"


def test_a_large_message_that_is_not_an_append_is_never_parsed(tiny_live):
    """Before: any text message up to 20 MiB was parsed into a document before its type was
    looked at: a 20.8 MB {"type":"x","a":[0,0,...]} took the RSS from 42 MB to 555 MB."""
    server = tiny_live()
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        before = peak_rss_mb(server)
        junk = '{"type":"x","a":[' + "0," * (1_800_000) + '0]}'  # 3.6 MB, under the message cap
        ws.send(junk)
        e = until(ws, "error")
        grown = peak_rss_mb(server) - before
        assert grown < 30, f"peak RSS grew by {grown:.0f} MB for a 3.6 MB message"
        assert e["error"]["code"] == "invalid_event"
        # The session goes on.
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert until(ws, "input_audio_buffer.cleared")
        # A message larger than an append of REALTIME_MAX_AHEAD_SECONDS of audio closes (1009).
        with pytest.raises((ConnectionClosed, BrokenPipeError, ConnectionResetError)):
            ws.send(append_event(b"\0" * (6 * 1024 * 1024)))
            for _ in range(10):
                ws.recv(timeout=10)


def test_the_turn_bound_holds_when_no_turn_is_open(tiny_live):
    """Before: REALTIME_MAX_TURN_SECONDS was checked only against an open turn: the first append
    of 25 s went past a 10 s bound."""
    server = tiny_live(REALTIME_MAX_TURN_SECONDS=10, REALTIME_MAX_AHEAD_SECONDS=60)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        manual_16k(ws)
        ws.send(append_event(b"\0" * 32000 * 25))
        e = until(ws, "error")
        assert e["error"]["code"] == "input_audio_buffer_full"
        # Nothing was taken: a commit has nothing to commit.
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        assert until(ws, "error")["error"]["code"] == "input_audio_buffer_commit_empty"


def connect_from(server, address, **kw):
    sock = socket.create_connection(("127.0.0.1", server.port), source_address=(address, 0), timeout=10)
    return ws_connect(ws_url(server), sock=sock, max_size=None, **kw)


def test_one_client_cannot_hold_every_session(tiny_live):
    """Before: the MAX_REALTIME_SESSIONS sessions could all be held by one client."""
    server = tiny_live(MAX_REALTIME_SESSIONS=3, REALTIME_MAX_SESSIONS_PER_CLIENT=1)
    with connect_from(server, "127.0.0.2") as mine:
        recv_json(mine)
        with pytest.raises(InvalidStatus) as refused:
            connect_from(server, "127.0.0.2")
        assert refused.value.response.status_code == 429
        assert b"REALTIME_MAX_SESSIONS_PER_CLIENT" in refused.value.response.body
        with connect_from(server, "127.0.0.3") as theirs:
            assert recv_json(theirs)["type"] == "session.created"


def test_a_session_without_audio_is_closed(tiny_live):
    """Before: a session that sent nothing held its place until REALTIME_MAX_SESSION_SECONDS."""
    server = tiny_live(REALTIME_IDLE_SECONDS=1)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        e = until(ws, "error", timeout=30)
        assert e["error"]["code"] == "session_idle"
        closed_with(ws, 1000)


def test_pages_of_other_origins_cannot_open_sessions(tiny_live):
    """Before: the upgrade ignored Origin: with CORS_ALLOW_ORIGINS=https://good.example, a page
    on https://evil.example opened /v1/realtime (cross-site WebSocket hijacking)."""
    server = tiny_live(CORS_ALLOW_ORIGINS="https://good.example")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(ws_url(server), origin="https://evil.example")
    assert refused.value.response.status_code == 403
    for origin in ("https://good.example", f"http://127.0.0.1:{server.port}", None):
        with ws_connect(ws_url(server), origin=origin) as ws:
            assert recv_json(ws)["type"] == "session.created"
    # Servers only browsers use may refuse clients that name no origin.
    strict = tiny_live(REALTIME_REQUIRE_ORIGIN="true")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(ws_url(strict))
    assert refused.value.response.status_code == 403
    with ws_connect(ws_url(strict), origin=f"http://127.0.0.1:{strict.port}") as ws:
        assert recv_json(ws)["type"] == "session.created"
