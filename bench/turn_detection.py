"""Turn ends in live sessions: server_vad (silence only) against semantic_vad (Silero finds the
pause, smart-turn judges whether it ends the thought), on real speech with a pause put inside a
sentence, streamed through /v1/realtime as a client does.

Clips: the LibriVox lines and "go forward ten meters" of Debian's pocketsphinx-testdata, JFK's
inaugural line and the Python speech-recognition-api project's test clip: each one sentence
(JFK's has pauses of its own). A pause of 600 or 1200 ms of silence is put between two words near
the middle (word times from our own word timestamps; never after punctuation), then 9 s of
silence close the clip (more than the longest wait of any mode).

Per mode: false cuts (turns that end before the sentence does), the latency of the real end (the
last turn's end, in stream time, after the last word's end), smart-turn's judgements, and whether
the words survive (WER of all turns' text against the clip's own transcript).

Usage: python bench/turn_detection.py [--out bench/turn-detection.md] [--pace 8]
"""
import argparse
import base64
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import threading
import time
import wave

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from websockets.sync.client import connect  # noqa: E402
from conftest import AUDIO, Server, base_env, word_error_rate  # noqa: E402

BASE = REPO / "models" / "ggml-base.bin"
VAD = REPO / "models" / "silero_vad-v6.2.3.onnx"
TURN = REPO / "models" / "smart-turn-v3.2-cpu.onnx"
TESTDATA = pathlib.Path("/usr/share/pocketsphinx/test/data")
TRAILING_SILENCE_S = 9  # longer than the longest wait (semantic_vad low: 8 s)
MODES = {
    "server_vad, 500 ms": {"type": "server_vad", "silence_duration_ms": 500},
    "server_vad, 1000 ms": {"type": "server_vad", "silence_duration_ms": 1000},
    "semantic_vad, high": {"type": "semantic_vad", "eagerness": "high"},
    "semantic_vad, auto (medium)": {"type": "semantic_vad", "eagerness": "auto"},
    "semantic_vad, low": {"type": "semantic_vad", "eagerness": "low"},
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def read_pcm(path):
    if str(path).endswith(".raw"):
        return np.frombuffer(pathlib.Path(path).read_bytes(), np.int16)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def sources():
    out = []
    for line in (TESTDATA / "librivox" / "transcription").read_text().splitlines():
        text, name = line.replace("<s>", "").replace("</s>", "").rsplit("(", 1)
        out.append((TESTDATA / "librivox" / (name.strip(") ") + ".wav"), text.strip()))
    out.append((TESTDATA / "goforward.raw", "go forward ten meters"))
    out.append((AUDIO / "jfk.wav", "And so my fellow Americans, ask not what your country can do for you, "
                                   "ask what you can do for your country."))
    out.append((AUDIO / "seed-audio.wav", "Having returned to the royal cavern, Kaliko first pounded the gong and "
                                          "then sat in the throne, wearing Ruggedo's discarded ruby crown, and "
                                          "holding in his hand the sceptre which Ruggedo had so often thrown at "
                                          "his head."))
    return out


def words_of(server, pcm):
    wav = tempfile.NamedTemporaryFile(suffix=".wav", delete=False)
    with wave.open(wav.name, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    with open(wav.name, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "language": "en", "response_format": "verbose_json",
                                "timestamp_granularities[]": "word"}, timeout=600)
    os.unlink(wav.name)
    r.raise_for_status()
    return r.json()["words"]


def with_pause(pcm, words, pause_ms):
    """The clip with `pause_ms` of silence between the two words nearest its middle that no
    punctuation separates, 3 s of silence after it, and the last word's end in the new clip."""
    middle = (words[0]["start"] + words[-1]["end"]) / 2
    candidates = [i for i in range(len(words) - 1) if not words[i]["word"].rstrip().endswith((",", ".", ";", "?", "!"))]
    i = min(candidates, key=lambda k: abs(words[k]["end"] - middle))
    cut = int((words[i]["end"] + words[i + 1]["start"]) / 2 * 16000)
    pause = np.zeros(int(pause_ms * 16), np.int16)
    out = np.concatenate([pcm[:cut], pause, pcm[cut:], np.zeros(TRAILING_SILENCE_S * 16000, np.int16)])
    last_end = words[-1]["end"] + pause_ms / 1000
    return out, cut / 16000, last_end


def run_session(server, turn_detection, pcm, pace):
    url = server.url("/v1/realtime?intent=transcription").replace("http://", "ws://")
    events = []
    with connect(url, max_size=None) as ws:
        assert json.loads(ws.recv())["type"] == "session.created"
        ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000},
            "transcription": {"model": "whisper-1", "language": "en"}, "turn_detection": turn_detection}}}}))
        updated = json.loads(ws.recv())
        assert updated["type"] == "session.updated", updated
        data = pcm.tobytes()
        step = 1600 * 2  # 100 ms

        def send():
            start = time.time()
            for k, at in enumerate(range(0, len(data), step)):
                ws.send(json.dumps({"type": "input_audio_buffer.append",
                                    "audio": base64.b64encode(data[at:at + step]).decode()}))
                delay = start + (k + 1) * 0.1 / pace - time.time()
                if delay > 0:
                    time.sleep(delay)
            ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        committed = completed = 0
        cleared = False
        deadline = time.time() + 600
        while time.time() < deadline:
            e = json.loads(ws.recv(timeout=600))
            events.append(e)
            committed += e["type"] == "input_audio_buffer.committed"
            completed += e["type"].endswith("transcription.completed") or e["type"].endswith("transcription.failed")
            cleared = cleared or e["type"] == "input_audio_buffer.cleared"
            if cleared and completed == committed:  # every append taken, every turn transcribed
                break
        sender.join()
    stops = [e["audio_end_ms"] / 1000 for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
    text = " ".join(e["transcript"] for e in events if e["type"].endswith("transcription.completed"))
    return stops, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "turn-detection.md"))
    ap.add_argument("--pace", type=float, default=8.0)
    ap.add_argument("--pauses", default="600,1200")
    args = ap.parse_args()
    pauses = [int(p) for p in args.pauses.split(",")]
    work = pathlib.Path(tempfile.mkdtemp(prefix="turns-"))
    server = Server(work / "server", base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE, VAD_MODEL_PATH=VAD,
                                              TURN_MODEL_PATH=TURN, LOG_LEVEL="warning",
                                              REALTIME_MAX_AHEAD_SECONDS="3600")).start()
    rows = []
    try:
        clips = []
        for path, text in sources():
            pcm = read_pcm(path)
            words = words_of(server, pcm)
            for pause in pauses:
                clip, cut, last_end = with_pause(pcm, words, pause)
                clips.append((path, text, pause, clip, cut, last_end))
        for mode, td in MODES.items():
            for path, text, pause, clip, cut, last_end in clips:
                stops, said = run_session(server, td, clip, args.pace)
                rows.append((mode, pathlib.Path(path).stem, pause, cut, last_end, stops, said, text))
                log(f"{mode:28} {pathlib.Path(path).stem[-12:]:12} pause {pause:4} cut at {cut:5.2f} s, "
                    f"ends {last_end:5.2f} s: stops {[round(s, 2) for s in stops]}")
    finally:
        server.stop()

    pathlib.Path(args.out).write_text(render(args, len(clips), pauses, rows))
    log(f"wrote {args.out}")


def render(args, clip_count, pauses, rows):
    """The report from the per-clip rows: (mode, clip, pause ms, put at s, sentence end s, turn
    ends s, text, reference text)."""
    summary = {}
    for mode, _, pause, cut, last_end, stops, said, text in rows:
        r = summary.setdefault(mode, {"at_pause": 0, "other": 0, "clips": 0, "latency": [], "missed": 0,
                                      "wer": [0, 0]})
        r["clips"] += 1
        for stop in stops:
            if cut <= stop <= cut + pause / 1000 + 0.6:
                r["at_pause"] += 1  # the turn ended at the pause put inside the sentence
            elif stop < last_end - 0.05:
                r["other"] += 1  # at a pause of the speaker's own
        ends = [stop for stop in stops if stop >= last_end - 0.05]
        if ends:
            r["latency"].append(1000 * (ends[0] - last_end))
        else:
            r["missed"] += 1
        e, n = word_error_rate(text, said)
        r["wer"][0] += e
        r["wer"][1] += n
    lines = ["# Turn detection: server_vad against semantic_vad", "",
             f"`python bench/turn_detection.py --pace {args.pace:g} --pauses {args.pauses}` on "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}: "
             f"{clip_count} clips ({clip_count // len(pauses)} real sentences, each with a pause of "
             + " or ".join(f"{p} ms" for p in pauses) + " put between two words near its middle), streamed to "
             f"/v1/realtime at {args.pace:g}x real time with the base model. Times are stream times (audio "
             "ms), so the pace does not change them.", "",
             "| mode | turns ended at the pause put inside the sentence | at the speakers' own pauses | "
             "end latency after the last word, median (max) | real ends missed | WER of the turns' text |",
             "|---|---|---|---|---|---|"]
    for mode, r in summary.items():
        lat = r["latency"]
        latency = f"{statistics.median(lat):.0f} ms ({max(lat):.0f} ms)" if lat else "-"
        lines.append(f"| {mode} | {r['at_pause']} of {r['clips']} | {r['other']} | {latency} | {r['missed']} | "
                     f"{100 * r['wer'][0] / max(r['wer'][1], 1):.1f} % |")
    lines += ["", "Per clip (stream seconds): where the pause was put, where the sentence ends, where each turn "
              "ended, and what the turns said:", "",
              "| mode | clip | pause | put at | sentence ends | turns ended at | text |", "|---|---|---|---|---|---|---|"]
    for mode, name, pause, cut, last_end, stops, said, _ in rows:
        lines.append(f"| {mode} | {name} | {pause} ms | {cut:.2f} | {last_end:.2f} | "
                     f"{', '.join(f'{s:.2f}' for s in stops)} | {said.strip()} |")
    return "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
