"""VAD on a file that is half silence: wall time and hallucinated words of a transcription with
and without `vad_filter`, the base model on this machine, runs interleaved, medians printed as a
Markdown table.

The file (built here, deterministic) puts the five reference clips of shared/whisper/reference/
words (41.2 s of speech) between stretches of quiet room noise (white noise at -50 dBFS with a
faint 50 Hz hum) as long as the speech, 82 s in all. A hallucinated word is one whose middle lies
in the noise, more than 0.5 s from any speech; the word error rate is against OpenAI's reference
transcripts of the clips.

Usage: python bench/vad_half_silence.py [--runs 3] [--model models/ggml-base.bin]
                                        [--vad-model models/silero_vad-v6.2.3.onnx]
"""
import argparse
import json
import math
import os
import pathlib
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import BINARY, SHARED, word_error_rate  # noqa: E402

REFERENCE = SHARED / "whisper" / "reference" / "words" / "base.openai_words.jsonl"
CLIPS = ["sense_and_sensibility_01_austen_64kb-0870.wav", "jfk.wav", "sense_and_sensibility_01_austen_64kb-0890.wav",
         "seed-audio.wav", "sense_and_sensibility_01_austen_64kb-0930.wav"]


def read(name):
    path = SHARED / "whisper" / "audio" / "words" / name
    if not path.exists():
        path = SHARED / "audio" / name
    with wave.open(str(path)) as w:
        data = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def noise(seconds, rng, dbfs):
    n = int(seconds * 16000)
    level = 10 ** (dbfs / 20)
    return [int(max(-32768, min(32767, rng.gauss(0, level) * 32768
                                 + 0.001 * 32768 * math.sin(2 * math.pi * 50 * i / 16000)))) for i in range(n)]


def build(path, dbfs):
    rng = random.Random(1)
    samples, speech = [], []
    for name in CLIPS:
        clip = read(name)
        samples += noise(len(clip) / 16000, rng, dbfs)
        speech.append((len(samples) / 16000, (len(samples) + len(clip)) / 16000))
        samples += clip
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return speech, len(samples) / 16000


def run(path, vad, model, vad_model_dir):
    env = dict(os.environ, MODEL="whisper", WHISPER_MODEL_PATH=str(model), WHISPER_LANGUAGE="en",
               WHISPER_WORD_TIMESTAMPS="true", VAD_FILTER="true" if vad else "false",
               WHISPER_MODELS_DIR=str(vad_model_dir), MODEL_DOWNLOAD="false", LOG_LEVEL="warning")
    start = time.monotonic()
    r = subprocess.run([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null", str(path)],
                       capture_output=True, text=True, env=env, check=True)
    return time.monotonic() - start, json.loads(r.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--noise-dbfs", type=float, action="append",
                        help="level of the noise between the clips (default: -50, -30 and -20)")
    parser.add_argument("--model", default=str(REPO / "models" / "ggml-base.bin"))
    parser.add_argument("--vad-model", default=str(REPO / "models" / "silero_vad-v6.2.3.onnx"))
    args = parser.parse_args()
    references = {json.loads(l)["file"]: json.loads(l)["text"] for l in REFERENCE.read_text().splitlines()}
    reference_text = " ".join(references[name] for name in CLIPS)
    print("| noise | | wall time (median) | words | hallucinated words | word error rate |")
    print("|---|---|---|---|---|---|")
    for dbfs in args.noise_dbfs or [-50.0, -30.0, -20.0]:
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "half_silence.wav"
            speech, duration = build(path, dbfs)
            vad_dir = pathlib.Path(args.vad_model).parent
            times = {False: [], True: []}
            results = {}
            for _ in range(args.runs):
                for vad in (False, True):
                    seconds, result = run(path, vad, args.model, vad_dir)
                    times[vad].append(seconds)
                    results[vad] = result
        for vad in (False, True):
            words = [w for s in results[vad]["segments"] for w in s.get("words", [])]
            hallucinated = [w for w in words
                            if not any(a - 0.5 <= (w["start"] + w["end"]) / 2 <= b + 0.5 for a, b in speech)]
            errors, n = word_error_rate(reference_text, results[vad]["text"])
            print(f"| {dbfs:.0f} dBFS | {'with VAD' if vad else 'without VAD'} | "
                  f"{statistics.median(times[vad]):.2f} s | {len(words)} | "
                  f"{len(hallucinated)} {' '.join(w['word'].strip() for w in hallucinated[:8])} | "
                  f"{errors / n:.3f} |")
    print(f"\nFile: {duration:.1f} s, of which {sum(b - a for a, b in speech):.1f} s speech; "
          f"{args.runs} runs each, interleaved; {pathlib.Path(args.model).name}, "
          f"{len(os.sched_getaffinity(0))} threads (every CPU this process may use).")


if __name__ == "__main__":
    main()
