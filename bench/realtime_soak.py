"""Soak of live sessions beside HTTP clients: what a hostile or careless client mix does to the
server over minutes.

N live sessions (`/v1/realtime`, raw WebSocket, PCM16 at 16 kHz, server_vad, language en) run for
the whole time, each repeating its pattern with real speech of known text (jfk.wav, the
PocketSphinx test clips whose transcriptions Debian ships, goforward.raw):
  steady     - a clip at the pace it is spoken (100 ms appends), then 6 s of silence at that pace
  burst      - a clip sent at 10x its pace, then as long idle as the audio lasted
  idle_burst - idle for 20 s, then the clip and silence in ONE append (up to the pace bucket)
  junk       - the steady pattern with junk between the appends: invalid JSON, unknown event
               types, binary frames, a 1 MB message that is not an append
(assigned round-robin). Beside them, M HTTP clients: a quarter post jfk.wav to
/sync/v1/transcribe (a second between requests), the others call /health, /v1/models and
/openapi.json (50 ms between requests, so that the clients do not take the cores they share with
the server).

Measured: the server's resident memory every second (peak over the run vs after warm-up, and the
bound the settings state: REALTIME_MAX_BUFFERED_SECONDS of 32-bit samples and the largest message
per session, MAX_BUFFERED_UPLOAD_BYTES for uploads), /health latency (p50/p99/max, from a client
of its own, every 200 ms), the HTTP clients' status counts, every session's turns and the word
error rate of its completed transcripts against the text of the clips it sent (lower case,
letters, digits and apostrophes; "mister" and the numbers to ten written alike on both sides),
sessions closed by the server and why, error events.

Usage: python bench/realtime_soak.py [--sessions 8] [--http 16] [--minutes 10]
                                     [--model tiny.en] [--smoke] [--out bench/realtime-soak.md]
--smoke: 2 sessions, 4 HTTP clients, 25 s, the base model (CI runs it so that it cannot rot).
"""
import argparse
import base64
import json
import os
import pathlib
import platform
import random
import sys
import tempfile
import threading
import time
import wave

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import AUDIO, PS_DATA, Server, base_env, word_error_rate, words  # noqa: E402

MODELS = {"base": REPO / "models" / "ggml-base.bin", "tiny.en": REPO / "models" / "ggml-tiny.en.bin"}
VAD_MODEL = REPO / "models" / "silero_vad-v6.2.3.onnx"
RATE = 16000
CHUNK = 0.1
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
PATTERNS = ["steady", "burst", "idle_burst", "junk"]


def pcm_of(path):
    if str(path).endswith(".raw"):
        return pathlib.Path(path).read_bytes()
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


def clips():
    """(name, 16 kHz PCM, its words) of every clip with a known text."""
    out = [("jfk.wav", pcm_of(AUDIO / "jfk.wav"), words(JFK)),
           ("goforward.raw", pcm_of(PS_DATA / "goforward.raw"), words("go forward ten meters"))]
    for line in (PS_DATA / "librivox" / "transcription").read_text().splitlines():
        text, name = line.rsplit("(", 1)
        text = text.replace("<s>", "").replace("</s>", "")
        out.append((name.strip(" )") + ".wav", pcm_of(PS_DATA / "librivox" / (name.strip(" )") + ".wav")),
                    words(text)))
    return out


# Spellings that differ without being errors, made alike on both sides before the WER.
NORMAL = {"mister": "mr", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
          "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}


def normalized(word_list):
    return " ".join(NORMAL.get(w, w) for w in word_list)


def append_event(pcm):
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


class Session:
    """One live session following `pattern` until `stop`; collects what the server sent."""

    def __init__(self, url, pattern, clips, stop, seed):
        self.url, self.pattern, self.clips, self.stop = url, pattern, clips, stop
        self.rng = random.Random(seed)
        self.sent_words = []      # the words of the clips sent, in order
        self.transcripts = []     # completed transcripts, in order
        self.errors = {}          # error code -> count
        self.closed = None        # (code, reason) if the server closed the session
        self.turns = 0
        self.lock = threading.Lock()

    def run(self):
        from websockets.sync.client import connect
        from websockets.exceptions import ConnectionClosed
        try:
            with connect(self.url, max_size=None, open_timeout=30) as ws:
                json.loads(ws.recv(timeout=30))
                ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": {"type": "server_vad"}}}}}))
                reader = threading.Thread(target=self.read, args=(ws,), daemon=True)
                reader.start()
                while not self.stop.is_set() and reader.is_alive():
                    self.cycle(ws)
                # Everything sent has been taken once `cleared` comes; then the last turns finish.
                ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                reader.join(120)
        except ConnectionClosed as e:
            self.closed = (e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else str(e))

    def read(self, ws):
        from websockets.exceptions import ConnectionClosed
        committed = completed = 0
        cleared = False
        try:
            while True:
                e = json.loads(ws.recv(timeout=180))
                t = e["type"]
                if t == "input_audio_buffer.committed":
                    committed += 1
                elif t.endswith("transcription.completed"):
                    completed += 1
                    with self.lock:
                        self.transcripts.append(e["transcript"])
                        self.turns += 1
                elif t.endswith("transcription.failed"):
                    completed += 1
                    self.count_error("transcription_failed")
                elif t == "error":
                    self.count_error(e["error"]["code"])
                elif t == "input_audio_buffer.cleared" and self.stop.is_set():
                    cleared = True
                # The closing `clear` is answered and every committed turn has its text: done.
                if cleared and completed == committed:
                    return
        except ConnectionClosed as e:
            self.closed = (e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else "")
        except TimeoutError:
            self.closed = (None, "no event for 180 s")

    def count_error(self, code):
        with self.lock:
            self.errors[code] = self.errors.get(code, 0) + 1

    def paced(self, ws, pcm, pace, junk=False):
        # A clip started is sent whole, even past the end of the run: its words are counted.
        step = int(RATE * CHUNK) * 2
        start = time.time()
        for i, at in enumerate(range(0, len(pcm), step)):
            ws.send(append_event(pcm[at:at + step]))
            if junk and i % 5 == 0:
                ws.send(self.rng.choice([
                    "{not json", json.dumps({"type": "response.create"}), b"\x00\x01binary",
                    json.dumps({"type": "x", "a": [0] * 250_000}),  # ~1 MB, not an append
                ]))
            delay = start + (i + 1) * CHUNK / pace - time.time()
            if delay > 0:
                time.sleep(delay)

    def cycle(self, ws):
        name, pcm, text = self.rng.choice(self.clips)
        silence = b"\0" * (RATE * 2 * 6)
        if self.pattern in ("steady", "junk"):
            self.sent_words.extend(text)
            self.paced(ws, pcm + silence, 1.0, junk=self.pattern == "junk")
        elif self.pattern == "burst":
            self.sent_words.extend(text)
            self.paced(ws, pcm + silence, 10.0)
            self.stop.wait(len(pcm + silence) / (2 * RATE))
        else:  # idle_burst
            self.stop.wait(20)
            if not self.stop.is_set():
                self.sent_words.extend(text)
                ws.send(append_event(pcm + silence))


def http_client(url, kind, clip, stop, counts, lock):
    import requests
    session = requests.Session()
    while not stop.is_set():
        try:
            if kind == "transcribe":
                r = session.post(url + "/sync/v1/transcribe", files={"file": ("clip.wav", clip)}, timeout=300)
            else:
                r = session.get(url + random.choice(["/health", "/v1/models", "/openapi.json"]), timeout=60)
            key = f"{kind} {r.status_code}"
        except Exception as e:  # noqa: BLE001 - a refused or dropped connection is a finding
            key = f"{kind} {type(e).__name__}"
            time.sleep(0.2)
        with lock:
            counts[key] = counts.get(key, 0) + 1
        stop.wait(1.0 if kind == "transcribe" else 0.05)


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def run(args):
    model = MODELS[args.model]
    assert model.exists(), f"{model}: speech-recognition-api models pull {args.model}"
    assert VAD_MODEL.exists(), "speech-recognition-api models pull silero-v6.2.3"
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sra-soak-"))
    env = base_env(MODEL="whisper", WHISPER_MODEL_PATH=model, VAD_MODEL_PATH=VAD_MODEL, LOG_LEVEL="warn",
                   MAX_REALTIME_SESSIONS=max(8, args.sessions), REALTIME_MAX_SESSIONS_PER_CLIENT=0,
                   MAX_CONNECTIONS_PER_CLIENT=0)
    server = Server(workdir, env).start()
    url = server.url("")
    all_clips = clips()
    jfk_file = (AUDIO / "jfk.wav").read_bytes()
    import requests
    # Warm-up: one transcription, so the baseline holds the model's pages.
    requests.post(url + "/sync/v1/transcribe", files={"file": ("jfk.wav", jfk_file)}, timeout=300)
    baseline = rss_mb(server.proc.pid)

    stop = threading.Event()
    sessions = [Session(url.replace("http://", "ws://") + "/v1/realtime?intent=transcription",
                        PATTERNS[i % len(PATTERNS)], all_clips, stop, seed=i) for i in range(args.sessions)]
    counts, lock = {}, threading.Lock()
    threads = [threading.Thread(target=s.run, daemon=True) for s in sessions]
    threads += [threading.Thread(target=http_client, args=(url, "transcribe" if i % 4 == 0 else "light",
                                                            jfk_file, stop, counts, lock), daemon=True)
                for i in range(args.http)]
    health, rss = [], []

    def probe():
        s = requests.Session()
        while not stop.is_set():
            t0 = time.time()
            try:
                s.get(url + "/health", timeout=30)
                health.append(time.time() - t0)
            except Exception:  # noqa: BLE001
                health.append(float("inf"))
            time.sleep(0.2)

    def watch():
        while not stop.is_set():
            rss.append(rss_mb(server.proc.pid))
            time.sleep(1)

    threads += [threading.Thread(target=probe, daemon=True), threading.Thread(target=watch, daemon=True)]
    started = time.time()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(300)
    elapsed = time.time() - started
    alive = server.proc.poll() is None
    server.stop()

    lines = []
    lines.append(f"Run: {args.sessions} live sessions and {args.http} HTTP clients for {elapsed:.0f} s; model "
                 f"{args.model}; server defaults otherwise ({platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} cores). The server {'stayed up' if alive else 'DIED'}.")
    lines.append("")
    per_session_mb = (360 * RATE * 4 + 2 * 4 * 1024 * 1024) / 2**20
    bound = baseline + args.sessions * per_session_mb + 512
    lines.append(f"Resident memory: {baseline:.0f} MB after warm-up, **{max(rss):.0f} MB at its peak** "
                 f"(stated bound: {bound:.0f} MB = the warm-up's + {args.sessions} sessions x "
                 f"{per_session_mb:.0f} MB (REALTIME_MAX_BUFFERED_SECONDS of samples and the largest message "
                 f"twice) + 512 MB of uploads held at once).")
    finite = [h for h in health if h != float("inf")]
    lines.append(f"/health: {len(health)} probes, p50 {pct(finite, 50) * 1000:.1f} ms, **p99 {pct(finite, 99) * 1000:.1f} "
                 f"ms**, max {max(finite) * 1000:.1f} ms, failed {len(health) - len(finite)}.")
    lines.append("")
    lines.append("HTTP clients: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".")
    lines.append("")
    lines.append("| session | pattern | turns | words sent | WER | error events | closed by the server |")
    lines.append("|---|---|---|---|---|---|---|")
    worst = 0.0
    for i, s in enumerate(sessions):
        hyp = normalized(words(" ".join(s.transcripts)))
        errors, n = word_error_rate(normalized(s.sent_words), hyp)
        wer = errors / max(n, 1)
        worst = max(worst, wer)
        errs = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "-"
        lines.append(f"| {i} | {s.pattern} | {s.turns} | {len(s.sent_words)} | {wer:.3f} | {errs} | "
                     f"{s.closed if s.closed else '-'} |")
    lines.append("")
    lines.append(f"Worst session WER: **{worst:.3f}**.")
    return "\n".join(lines), dict(alive=alive, peak=max(rss), bound=bound, worst_wer=worst,
                                  health_p99=pct(finite, 99), closed=[s.closed for s in sessions])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--http", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--model", default="tiny.en", choices=sorted(MODELS))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "realtime-soak.md")
    args = parser.parse_args()
    if args.smoke:
        args.sessions, args.http, args.minutes, args.model = 4, 4, 25 / 60, "base"
    args.seconds = args.minutes * 60
    report, facts = run(args)
    text = ("# Live sessions soak (`/v1/realtime` beside HTTP clients)\n\n"
            "Made by `bench/realtime_soak.py` (its docstring says what each pattern sends and how each "
            "figure is measured).\n\n" + report + "\n")
    args.out.write_text(text)
    print(text)
    ok = facts["alive"] and facts["peak"] <= facts["bound"] and all(
        c is None for c in facts["closed"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
