"""What docs/api.md says of live sessions (/v1/realtime), each claim on the wire: G.711 sessions
transcribe, turns waiting past REALTIME_MAX_PENDING_TURNS close the session (1013,
`transcription_backlog`), a session ends at REALTIME_MAX_SESSION_SECONDS, a silent connection is
pinged and closed after REALTIME_PING_SECONDS (a pong keeps it open), an append over 15 MiB of
audio gets `audio_too_large`, a turn's audio counts against RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE.
Every wait is on an event (a server event, a frame, a metric), never on the clock alone."""
import base64
import json
import os
import socket
import struct
import subprocess
import threading

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import AUDIO, metric, wait_until, word_error_rate
from test_hostile_live import append_event, closed_with, manual_16k, tiny_live  # noqa: F401
from test_realtime import JFK, live_server, pcm16, recv_json, until, vad_model, wav_bytes, ws_url  # noqa: F401


def g711(path, law):
    """The clip as 8 kHz G.711 (`mulaw` or `alaw`) bytes, as a telephone line carries it."""
    return subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-ar", "8000", "-ac", "1",
                           "-f", law, "-"], capture_output=True, check=True).stdout


def commit_and_wait(ws, audio):
    for at in range(0, len(audio), 8000):
        ws.send(append_event(audio[at:at + 8000]))
    ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    committed = until(ws, "input_audio_buffer.committed")
    done = until(ws, "conversation.item.input_audio_transcription.completed", timeout=120)
    assert done["item_id"] == committed["item_id"]
    return done


def test_g711_sessions_transcribe_a_telephone_line(live_server):
    """The GA format names (audio/pcmu) and the beta ones (g711_alaw) both decode 8 kHz G.711:
    jfk.wav through a telephone line still says JFK's words, and its usage is its length."""
    server = live_server()
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {
            "format": {"type": "audio/pcmu"}, "transcription": {"language": "en"},
            "turn_detection": None}}}}))
        updated = recv_json(ws)
        assert updated["type"] == "session.updated", updated
        assert updated["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        done = commit_and_wait(ws, g711(AUDIO / "jfk.wav", "mulaw"))
        errors, n = word_error_rate(" ".join(JFK), done["transcript"])
        assert errors / n <= 0.1, done["transcript"]
        assert abs(done["usage"]["seconds"] - 11.0) < 0.05
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        ws.send(json.dumps({"type": "transcription_session.update", "session": {
            "input_audio_format": "g711_alaw", "input_audio_transcription": {"language": "en"},
            "turn_detection": None}}))
        updated = recv_json(ws)
        assert updated["session"]["input_audio_format"] == "g711_alaw", updated
        done = commit_and_wait(ws, g711(AUDIO / "jfk.wav", "alaw"))
        errors, n = word_error_rate(" ".join(JFK), done["transcript"])
        assert errors / n <= 0.1, done["transcript"]


def test_turns_waiting_past_the_bound_close_the_session(live_server, tmp_path):
    """The one inference thread is held by a long HTTP transcription, so committed turns wait:
    the second one past REALTIME_MAX_PENDING_TURNS=1 closes the session with 1013 and
    `transcription_backlog` (the server cannot keep up), whatever the machine's speed."""
    server = live_server(INFERENCE_THREADS=1, INFERENCE_QUEUE_SIZE=0, REALTIME_MAX_PENDING_TURNS=1,
                         REALTIME_PARTIAL_SECONDS=0)
    long_wav = tmp_path / "long.wav"
    long_wav.write_bytes(wav_bytes(pcm16(AUDIO / "jfk.wav", 16000) * 12, 16000))  # 132 s
    holder = threading.Thread(target=lambda: requests.post(
        server.url("/v1/audio/transcriptions"), files={"file": ("long.wav", long_wav.read_bytes())},
        data={"model": "whisper-1"}, timeout=600), daemon=True)
    holder.start()
    wait_until(lambda: metric(server, "sra_inference_admitted") == 1, what="the long job's start")
    second = pcm16(AUDIO / "jfk.wav", 16000)[:32000]
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        manual_16k(ws)
        codes = []
        for _ in range(3):
            try:
                ws.send(append_event(second))
                ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            except ConnectionClosed:  # the server may close it before the third turn is sent;
                break  # what it sent before the close is still read below
        while True:  # committed events, then the error, then the close
            e = recv_json(ws)
            codes.append(e["type"])
            if e["type"] == "error":
                break
        assert e["error"]["code"] == "transcription_backlog", e
        assert "REALTIME_MAX_PENDING_TURNS" in e["error"]["message"]
        assert codes.count("input_audio_buffer.committed") >= 2, codes
        closed_with(ws, 1013)
    # The long job was never part of it: it still holds the thread; /health answers.
    assert metric(server, "sra_inference_admitted") == 1
    assert requests.get(server.url("/health"), timeout=5).status_code == 200


def test_a_session_ends_at_its_longest_life(tiny_live):
    """REALTIME_MAX_SESSION_SECONDS (at least 10): `session_expired`, then a normal close."""
    server = tiny_live(REALTIME_MAX_SESSION_SECONDS=10, REALTIME_IDLE_SECONDS=0)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        e = until(ws, "error", timeout=60)
        assert e["error"]["code"] == "session_expired", e
        assert "REALTIME_MAX_SESSION_SECONDS (10 s)" in e["error"]["message"]
        closed_with(ws, 1000)


class RawWebSocket:
    """A WebSocket client on a bare socket that answers pings only when told to: what the
    libraries do by themselves is what this test must control."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exactly(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self):
        """(opcode, payload) of the next frame; EOFError once the server closed the socket."""
        b0, b1 = self._exactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._exactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._exactly(8))[0]
        return b0 & 0x0F, self._exactly(n)

    def send(self, opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def test_a_silent_connection_is_pinged_then_closed(tiny_live):
    """REALTIME_PING_SECONDS=2: a client that answers nothing gets a ping, then its socket is
    closed; one that answers each ping with a pong outlives three pings and still gets answers
    (REALTIME_IDLE_SECONDS=0: only the ping rule is at work)."""
    server = tiny_live(REALTIME_PING_SECONDS=2, REALTIME_IDLE_SECONDS=0)
    deaf = RawWebSocket(server)
    opcodes = []
    with pytest.raises(EOFError):
        while True:
            opcodes.append(deaf.frame()[0])
    assert opcodes[0] == 0x1  # session.created
    assert 0x9 in opcodes, opcodes  # pinged before being dropped

    polite = RawWebSocket(server)
    pings = 0
    while pings < 3:
        opcode, payload = polite.frame()
        if opcode == 0x9:
            pings += 1
            polite.send(0xA, payload)
    polite.send(0x1, json.dumps({"type": "input_audio_buffer.clear"}).encode())
    while True:
        opcode, payload = polite.frame()
        if opcode == 0x1 and json.loads(payload)["type"] == "input_audio_buffer.cleared":
            break
        if opcode == 0x9:
            polite.send(0xA, payload)


def test_an_append_over_fifteen_mib_of_audio_is_refused(tiny_live):
    """OpenAI's bound of 15 MiB of audio per append, on the wire: `audio_too_large` naming the
    `audio` field, and the session goes on (REALTIME_MAX_AHEAD_SECONDS=7200 so that neither the
    pace rule nor the message cap answers first)."""
    server = tiny_live(REALTIME_MAX_AHEAD_SECONDS=7200)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        ws.send(append_event(b"\0" * (15 * 1024 * 1024 + 1000)))
        e = until(ws, "error", timeout=60)
        assert (e["error"]["code"], e["error"]["param"]) == ("audio_too_large", "audio"), e
        assert "15 MiB" in e["error"]["message"]
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert until(ws, "input_audio_buffer.cleared")


def test_a_turns_audio_counts_against_the_clients_audio_rate(tiny_live):
    """RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE=5: one 11 s turn spends the budget, so the client's next
    HTTP transcription and its next session are refused (429, the variable named)."""
    server = tiny_live(RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE=5)
    with ws_connect(ws_url(server), max_size=None) as ws:
        recv_json(ws)
        manual_16k(ws)
        ws.send(append_event(pcm16(AUDIO / "jfk.wav", 16000)))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        until(ws, "input_audio_buffer.committed")
        e = recv_json(ws, timeout=120)
        while not e["type"].startswith("conversation.item.input_audio_transcription.") or \
                e["type"].endswith(".delta"):
            e = recv_json(ws, timeout=120)
        assert e["type"].endswith(".completed"), e
    r = requests.post(server.url("/v1/audio/transcriptions"),
                      files={"file": ("x.wav", (AUDIO / "jfk.wav").read_bytes())},
                      data={"model": "whisper-1"}, timeout=60)
    assert r.status_code == 429, r.text
    assert "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE" in r.json()["error"]["message"]
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(ws_url(server))
    assert refused.value.response.status_code == 429
