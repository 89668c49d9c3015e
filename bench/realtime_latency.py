"""Live transcription latency: OpenAI's Python SDK realtime client streams real speech to
/v1/realtime at the pace it is spoken (100 ms appends, PCM16 at 24 kHz, server_vad) and records
every server event with its arrival time.

For each word of OpenAI's reference transcript (shared/whisper/reference/words: the times at which
each word ends in the audio) the latency is the time from the moment the word's audio had been
sent (the stream's start + the word's end) to the arrival of the first delta holding it (words
matched to the reference in order, by letters and digits); the same for the `completed` event of
its turn. Reported per model and clip: p50/p90 of both, turns, and the word error rate of the
completed turns and of the deltas against the reference. Then N sessions at once (the 60 s clip
each, started 1 s apart) until the delta latency's median is more than twice one session's.

Clips: jfk.wav (11 s), seed-audio.wav (14.5 s) and a 63.7 s clip (long_mix.wav, then jfk.wav).

Usage: python bench/realtime_latency.py [--models base,tiny.en] [--sessions 1,2,3,4]
                                        [--smoke] [--out bench/realtime.md]
--smoke: the base model, jfk.wav only, no concurrency (CI runs it so that the script cannot rot).
"""
import argparse
import base64
import difflib
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import threading
import time
import wave

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import BINARY, SHARED, AUDIO, Server, base_env, word_error_rate, words  # noqa: E402

REFERENCE = SHARED / "whisper" / "reference" / "words" / "base.openai_words.jsonl"
MODELS = {"base": REPO / "models" / "ggml-base.bin", "tiny.en": REPO / "models" / "ggml-tiny.en.bin"}
VAD_MODEL = REPO / "models" / "silero_vad-v6.2.3.onnx"
RATE = 24000
CHUNK = 0.1


def reference_words():
    refs = {}
    for line in REFERENCE.read_text().splitlines():
        d = json.loads(line)
        if d["file"] in refs:
            continue
        refs[d["file"]] = [(w["word"], w["end"]) for s in d["segments"] for w in s["words"]]
    return refs


def pcm24(path):
    return subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-ar", str(RATE), "-ac", "1",
                           "-f", "s16le", "-"], capture_output=True, check=True).stdout


def clips():
    refs = reference_words()
    long_mix = SHARED / "whisper" / "audio" / "words" / "long_mix.wav"
    with wave.open(str(long_mix)) as w:
        mix_seconds = w.getnframes() / w.getframerate()
    jfk, seed = pcm24(AUDIO / "jfk.wav"), pcm24(AUDIO / "seed-audio.wav")
    long_words = refs["long_mix.wav"] + [(w, e + mix_seconds) for w, e in refs["jfk.wav"]]
    return {"jfk.wav": (jfk, refs["jfk.wav"]),
            "seed-audio.wav": (seed, refs["seed-audio.wav"]),
            "long_mix.wav + jfk.wav": (pcm24(long_mix) + jfk, long_words)}


def session(url, pcm, results, key):
    """One realtime session streaming `pcm` at real-time pace; events with arrival times."""
    from openai import OpenAI
    client = OpenAI(base_url=url, api_key="local")
    events = []
    tail = pcm + b"\0" * RATE * 2 * 2  # 2 s of silence ends the last turn
    with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        conn.recv()
        conn.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": RATE},
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}})
        conn.recv()
        step = int(RATE * CHUNK) * 2
        start = time.time()
        cleared = False

        def send():
            for i, at in enumerate(range(0, len(tail), step)):
                conn.send({"type": "input_audio_buffer.append",
                           "audio": base64.b64encode(tail[at:at + step]).decode()})
                delay = start + (i + 1) * CHUNK - time.time()
                if delay > 0:
                    time.sleep(delay)
            # A marker: its answer (`cleared`) says every append has been taken.
            conn.send({"type": "input_audio_buffer.clear"})
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        committed = completed = 0
        while True:
            e = conn.recv().model_dump(exclude_none=True)
            e["_t"] = time.time() - start
            events.append(e)
            committed += e["type"] == "input_audio_buffer.committed"
            completed += e["type"].endswith(".completed") or e["type"].endswith(".failed")
            cleared = cleared or e["type"] == "input_audio_buffer.cleared"
            if cleared and committed and completed == committed:
                break
        sender.join()
    results[key] = events


def latencies(events, reference, kind):
    """Per reference word: arrival of the first `kind` event that holds it minus its audio's end."""
    got = []  # (word, arrival)
    for e in events:
        if kind == "delta" and e["type"].endswith("transcription.delta"):
            got += [(w, e["_t"]) for w in words(e["delta"])]
        elif kind == "completed" and e["type"].endswith("transcription.completed"):
            got += [(w, e["_t"]) for w in words(e["transcript"])]
    ref = [(k, end) for word, end in reference for k in words(word)]
    matcher = difflib.SequenceMatcher(a=[w for w, _ in ref], b=[w for w, _ in got], autojunk=False)
    out = []
    for a, b, n in matcher.get_matching_blocks():
        for i in range(n):
            out.append(got[b + i][1] - ref[a + i][1])
    return out, len(ref)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_server(model_path, workdir):
    server = Server(workdir, base_env(MODEL="whisper", WHISPER_MODEL_PATH=model_path, VAD_MODEL_PATH=VAD_MODEL,
                                      MAX_REALTIME_SESSIONS=16, LOG_LEVEL="warn"))
    return server.start(wait=True)


def measure(url, pcm, reference):
    results = {}
    session(url, pcm, results, 0)
    events = results[0]
    d, n = latencies(events, reference, "delta")
    c, _ = latencies(events, reference, "completed")
    completed = " ".join(e["transcript"] for e in events if e["type"].endswith("transcription.completed"))
    said = " ".join(e["delta"] for e in events if e["type"].endswith("transcription.delta"))
    ref_text = " ".join(w for w, _ in reference)
    turns = sum(e["type"] == "input_audio_buffer.committed" for e in events)
    e1, n1 = word_error_rate(ref_text, completed)
    e2, n2 = word_error_rate(ref_text, said)
    return {"delta": d, "completed": c, "words": n, "turns": turns, "wer_completed": e1 / n1,
            "wer_deltas": e2 / n2, "texts": [e["transcript"] for e in events
                                             if e["type"].endswith("transcription.completed")]}


def concurrent(url, pcm, reference, n):
    results, threads = {}, []
    for i in range(n):
        t = threading.Thread(target=session, args=(url, pcm, results, i))
        t.start()
        threads.append(t)
        time.sleep(1.0)
    for t in threads:
        t.join()
    lat = []
    for events in results.values():
        lat += latencies(events, reference, "delta")[0]
    return lat


def cpu_name():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="base,tiny.en")
    ap.add_argument("--sessions", default="1,2,3,4")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    models = ["base"] if args.smoke else args.models.split(",")
    all_clips = clips()
    if args.smoke:
        all_clips = {"jfk.wav": all_clips["jfk.wav"]}
    lines = [f"Machine: {cpu_name()}, {os.cpu_count()} cores; server defaults (INFERENCE_THREADS = "
             f"WHISPER_THREADS = cores, REALTIME_PARTIAL_SECONDS=1); greedy, language en; "
             f"PCM16 24 kHz in 100 ms appends at real-time pace; server_vad 0.5 / 300 ms / 500 ms.", "",
             "| model | clip | turns | delta latency p50 / p90 (s) | completed latency p50 / p90 (s) | "
             "words in a delta | WER completed | WER deltas |", "|---|---|---|---|---|---|---|---|"]
    texts, scaling = [], []
    for model in models:
        path = MODELS[model]
        if not path.exists():
            subprocess.run([str(BINARY), "models", "pull", model, "--dir", str(path.parent), "--env-file",
                            "/dev/null"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            server = run_server(path, tmp)
            url = server.url("/v1")
            try:
                for name, (pcm, reference) in all_clips.items():
                    r = measure(url, pcm, reference)
                    row = (f"| {model} | {name} | {r['turns']} | {pct(r['delta'], 50):.2f} / {pct(r['delta'], 90):.2f} | "
                           f"{pct(r['completed'], 50):.2f} / {pct(r['completed'], 90):.2f} | "
                           f"{len(r['delta'])}/{r['words']} | {r['wer_completed']:.3f} | {r['wer_deltas']:.3f} |")
                    print(row, flush=True)
                    lines.append(row)
                    texts.append((model, name, r["texts"]))
                if not args.smoke:
                    pcm, reference = all_clips["long_mix.wav + jfk.wav"]
                    single = None
                    for n in [int(x) for x in args.sessions.split(",")]:
                        lat = concurrent(url, pcm, reference, n)
                        p50 = pct(lat, 50)
                        single = single or p50
                        row = f"| {model} | {n} | {p50:.2f} | {pct(lat, 90):.2f} | {p50 / single:.2f} |"
                        print(row, flush=True)
                        scaling.append(row)
                        if p50 > 2 * single:
                            break
            finally:
                server.stop()
    if scaling:
        lines += ["", "Sessions at once (the 63.7 s clip each, started 1 s apart): delta latency over all "
                  "their words.", "", "| model | sessions | p50 (s) | p90 (s) | p50 / one session's |",
                  "|---|---|---|---|---|"] + scaling
    lines += ["", "Final text per turn:", ""]
    for model, name, turns in texts:
        lines.append(f"- {model}, {name}: " + " / ".join(f"\u201c{t}\u201d" for t in turns))
    report = ("# Live transcription latency (`/v1/realtime`)\n\nMade by `bench/realtime_latency.py` (its "
              "docstring says how each figure is measured): OpenAI's\nPython SDK realtime client streams each "
              "clip at the pace it is spoken; a word's latency runs from\nthe moment its audio had been sent to "
              "the first event that holds it.\n\n" + "\n".join(lines) + "\n")
    if args.out:
        pathlib.Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
