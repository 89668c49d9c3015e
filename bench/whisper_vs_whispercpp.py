"""Our Whisper engine and whisper.cpp side by side, on the same files, threads and settings.

whisper.cpp is built from a pinned source: PyPI's pywhispercpp 1.5.1 source distribution carries
the whole whisper.cpp tree under whisper.cpp/. The script downloads the .tar.gz itself (checking
its sha256), builds whisper-cli, whisper-bench and whisper-quantize natively (-DGGML_NATIVE=ON)
into the cache folder (~/.cache/speech-recognition-api/whispercpp), makes q8_0, q5_1, q5_0 and
q4_0 files of models/ggml-base.bin with whisper-quantize (and checks that
`speech-recognition-api convert q8_0|q4_0` writes the same bytes), then runs both
engines in alternation, each run a fresh process:

- whole file: `speech-recognition-api transcribe --json` vs `whisper-cli`, greedy (whisper-cli
  -bs 1 -bo 1), language en, timestamps on, temperature fallback on in both; wall time of the
  process (model load and audio decoding included) and its peak RSS; the texts compared;
- encoder, one 30 s window: `speech-recognition-api bench` vs `whisper-bench -w 0`;
- decoder per token: `speech-recognition-api bench` (greedy steps, prompt included) vs
  whisper-cli's own "decode time" per run on jfk.wav;
- model load: `bench`'s load vs whisper-cli's "load time".

Medians over the rounds, ratios ours / whisper.cpp. OpenBLAS picks its kernels for the CPU unless
OPENBLAS_CORETYPE names others; this script unsets it for our runs (a machine may set it; the
report says which kernels ran).

Usage: python bench/whisper_vs_whispercpp.py [--rounds 5] [--threads 2] [--smoke]
                                             [--out bench/whisper-vs-whispercpp.md] [--build-only]
--smoke: one round, jfk.wav, the f16 file only (CI runs it so that the script cannot rot).
--build-only: fetch and build whisper.cpp, nothing else (scripts/test.sh does it before the
tests run side by side).
"""
import argparse
import hashlib
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import AUDIO, BINARY, SHARED, word_error_rate  # noqa: E402

SDIST_URL = ("https://files.pythonhosted.org/packages/9f/35/"
             "610787a277e177e6b7983277a35a2969c0876b46c0d889bc6a0c4b4ac4a7/pywhispercpp-1.5.1.tar.gz")
SDIST_SHA256 = "5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5"
# Outside the checkout, so that every checkout (and CI's, on a machine that keeps its cache)
# builds whisper.cpp once: $SRA_CACHE_DIR, else ~/.cache/speech-recognition-api.
CACHE = pathlib.Path(os.environ.get("SRA_CACHE_DIR")
                     or pathlib.Path.home() / ".cache" / "speech-recognition-api") / "whispercpp"
BASE = REPO / "models" / "ggml-base.bin"
CLIPS = {"jfk.wav (11 s)": AUDIO / "jfk.wav",
         "seed-audio.wav (14.5 s)": AUDIO / "seed-audio.wav",
         "long_00000.wav (56.7 s)": SHARED / "whisper" / "audio" / "long" / "long_00000.wav"}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build_whisper_cpp():
    """whisper.cpp's binaries, built once into CACHE (a lock file keeps two processes, such as
    two test files run side by side, from building into it at once)."""
    import fcntl
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_whisper_cpp()


# Native, but without AMX: ggml's AMX path dies with SIGILL on quantized files, where the virtual
# machine does not grant the tile state (XTILEDATA) and, with pywhispercpp 1.5.1's ggml, even where
# it does (a `tileloadd` in a worker thread, seen 2026-12-06). GCC keeps explicit -mno-* flags over
# what -march=native turns on.
BUILD_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
# The f16 file with WHISPER_COMPUTE=bf16 (opt-in), whisper.cpp on the f16 file beside it.
BF16 = "f16, ours bf16"


def _build_whisper_cpp():
    src = CACHE / "pywhispercpp-1.5.1" / "whisper.cpp"
    bin_dir = src / "build" / "bin"
    tools = {name: bin_dir / name for name in ("whisper-cli", "whisper-bench", "whisper-quantize")}
    stamp = src / "build" / "sra-build-flags.txt"
    if all(p.exists() for p in tools.values()) and stamp.exists() and stamp.read_text() == BUILD_FLAGS:
        return tools, src
    archive = CACHE / "pywhispercpp-1.5.1.tar.gz"
    if not archive.exists():
        log("downloading", SDIST_URL)
        with urllib.request.urlopen(SDIST_URL, timeout=120) as r:
            data = r.read()
        if hashlib.sha256(data).hexdigest() != SDIST_SHA256:
            raise SystemExit("pywhispercpp-1.5.1.tar.gz: sha256 mismatch")
        archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(CACHE, filter="data")
        except TypeError:  # a Python without extraction filters (before 3.11.4)
            tar.extractall(CACHE)
    log("building whisper.cpp (GGML_NATIVE=ON, no AMX)")
    subprocess.run(["cmake", "-S", str(src), "-B", str(src / "build"), "-DCMAKE_BUILD_TYPE=Release",
                    "-DGGML_NATIVE=ON", "-DWHISPER_BUILD_TESTS=OFF", "-DWHISPER_SDL2=OFF",
                    "-DWHISPER_CURL=OFF", f"-DCMAKE_C_FLAGS={BUILD_FLAGS}",
                    f"-DCMAKE_CXX_FLAGS={BUILD_FLAGS}"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(src / "build"), "-j", str(os.cpu_count() or 2),
                    "--target", *tools], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(BUILD_FLAGS)
    # Files whisper-quantize wrote with an earlier build are written again.
    for old in CACHE.glob("ggml-base-q*.bin"):
        old.unlink()
    return tools, src


def run(cmd, env=None, cwd=None):
    """Runs a process to its end: (wall seconds, stdout, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out, err = p.communicate(timeout=1800)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {err[-2000:]}")
    return wall, out, err


def timed(cmd, env=None):
    """(wall seconds, peak RSS MiB, stdout, stderr) of one fresh process."""
    wall, out, err = run(["/usr/bin/time", "-f", "@@RSS %M", *cmd], env=env)
    rss = int(re.search(r"@@RSS (\d+)", err).group(1)) / 1024
    return wall, rss, out, err


def our_env(model, threads, cache="f32", compute="auto"):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(MODEL="whisper", WHISPER_MODEL_PATH=str(model), WHISPER_LANGUAGE="en",
               WHISPER_THREADS=str(threads), WHISPER_CROSS_CACHE=cache, WHISPER_COMPUTE=compute,
               LOG_LEVEL="warning")
    return env


def ours_transcribe(model, clip, threads, cache="f32", compute="auto"):
    wall, rss, out, _ = timed([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null",
                               str(clip)], env=our_env(model, threads, cache, compute))
    return wall, rss, json.loads(out.splitlines()[0])["text"].strip()


def cpp_transcribe(tools, model, clip, threads):
    wall, rss, out, err = timed([str(tools["whisper-cli"]), "-m", str(model), "-f", str(clip),
                                 "-t", str(threads), "-l", "en", "-bs", "1", "-bo", "1"])
    # "[00:00:00.000 --> 00:00:11.000]   And so ..." per segment
    text = " ".join(re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in out.splitlines()
                    if line.strip())
    timings = {"load": float(re.search(r"load time =\s+([\d.]+) ms", err).group(1))}
    decode = re.search(r"decode time =\s+([\d.]+) ms /\s+(\d+) runs", err)
    if decode:  # the graph's pass per token
        timings["decode"] = float(decode.group(1)) / max(1, int(decode.group(2)))
    return wall, rss, text, timings


def ours_bench(model, threads, cache="f32", compute="auto"):
    env = our_env(model, threads)
    _, out, _ = run([str(BINARY), "bench", str(model), "--threads", str(threads), "--runs", "3",
                     "--cross-cache", cache, "--compute", compute], env=env)
    value = lambda key: float(re.search(re.escape(key) + r"[^|]*\| ([\d.]+) ms", out).group(1))
    kernels = re.search(r"\| kernels \| (.*) \|", out).group(1)
    products = re.search(r"\| encoder products \| (.*) \|", out).group(1)
    steps = re.search(r"\| decoder step products \| (.*) \|", out).group(1)
    return {"encode": value("encoder, one 30 s window"),
            "decode": value("decoder pass, 1 sequence"), "load": value("| load"),
            "kernels": kernels, "products": products, "steps": steps}


def cpp_bench_encoder(tools, model, threads):
    _, out, err = run([str(tools["whisper-bench"]), "-m", str(model), "-t", str(threads), "-w", "0"])
    return float(re.search(r"encode time =\s+([\d.]+) ms", out + err).group(1))


def cpu_line():
    text = pathlib.Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", text).group(1)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    shown = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                         "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores; flags: {' '.join(shown)}"


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=str(HERE / "whisper-vs-whispercpp.md"))
    ap.add_argument("--build-only", action="store_true",
                    help="download and build whisper.cpp into the cache folder (~/.cache/speech-recognition-api/whispercpp), then stop")
    args = ap.parse_args()
    if args.build_only:
        build_whisper_cpp()
        return
    if not BASE.exists():
        raise SystemExit("models/ggml-base.bin is missing (scripts/fetch-base-model.sh models)")
    rounds = 1 if args.smoke else args.rounds
    clips = {k: v for k, v in CLIPS.items() if not args.smoke or k.startswith("jfk")}
    tools, _ = build_whisper_cpp()

    # kind -> (file, WHISPER_COMPUTE): each file with the default, and the f16 file in the opt-in
    # bfloat16 products (whisper.cpp runs the same f16 file again beside it).
    models = {"f16": (BASE, "auto")}
    if not args.smoke:
        models[BF16] = (BASE, "bf16")
    same_bytes = {}
    if not args.smoke:
        for kind in ("q8_0", "q5_1", "q5_0", "q4_0"):
            theirs = CACHE / f"ggml-base-{kind}.bin"
            if not theirs.exists():
                run([str(tools["whisper-quantize"]), str(BASE), str(theirs), kind])
            if kind in ("q8_0", "q4_0"):  # the kinds our converter writes
                ours = CACHE / f"ours-base-{kind}.bin"
                run([str(BINARY), "convert", kind, str(BASE), str(ours)])
                same_bytes[kind] = theirs.read_bytes() == ours.read_bytes()
                ours.unlink()
            models[kind] = (theirs, "auto")

    results = {}  # (model, clip) -> {"ours": [...], "cpp": [...], ...}
    engine = {}  # model -> {"ours": [bench dicts], "cpp_encode": [...], "cpp": [timings]}
    for r in range(rounds):
        for kind, (model, compute) in models.items():
            e = engine.setdefault(kind, {"ours": [], "ours_half": [], "cpp_encode": [], "cpp": []})
            log(f"round {r + 1}/{rounds} {kind}: engine")
            e["ours"].append(ours_bench(model, args.threads, compute=compute))
            e["ours_half"].append(ours_bench(model, args.threads, "f16", compute))
            e["cpp_encode"].append(cpp_bench_encoder(tools, model, args.threads))
            for name, clip in clips.items():
                log(f"round {r + 1}/{rounds} {kind}: {name}")
                res = results.setdefault((kind, name), {"ours": [], "ours_rss": [], "cpp": [],
                                                        "cpp_rss": [], "half": [], "half_rss": [],
                                                        "texts": None})
                # alternate which engine goes first
                order = ["ours", "half", "cpp"] if r % 2 == 0 else ["cpp", "half", "ours"]
                for who in order:
                    if who == "ours":
                        # The f32 cache where asked: bf16's default (auto) would be halves.
                        wall, rss, text = ours_transcribe(model, clip, args.threads, "f32", compute)
                        res["ours"].append(wall)
                        res["ours_rss"].append(rss)
                        ours_text = text
                    elif who == "half":
                        wall, rss, half_text = ours_transcribe(model, clip, args.threads, "f16",
                                                               compute)
                        res["half"].append(wall)
                        res["half_rss"].append(rss)
                    else:
                        wall, rss, text, timings = cpp_transcribe(tools, model, clip, args.threads)
                        res["cpp"].append(wall)
                        res["cpp_rss"].append(rss)
                        cpp_text = text
                        if name.startswith("jfk"):
                            e["cpp"].append(timings)
                res["texts"] = (ours_text, cpp_text, half_text)

    lines = ["# Our engine vs whisper.cpp", "",
             f"`python bench/whisper_vs_whispercpp.py{' --smoke' if args.smoke else ''} --rounds {rounds} "
             f"--threads {args.threads}`, {time.strftime('%Y-%m-%d', time.gmtime())}.",
             f"CPU: {cpu_line()}.",
             f"whisper.cpp: pywhispercpp 1.5.1's tree, -DGGML_NATIVE=ON, flash attention on (its default), "
             "without AMX (built with it, its AMX path for quantized files stops on SIGILL at a "
             "`tileloadd` in a worker thread on this machine, 2026-12-06; ours uses AMX where the CPU "
             "has it and the OS grants the tile state, as it does here).",
             f"Ours: kernels {next(iter(engine.values()))['ours'][0]['kernels']} (OPENBLAS_CORETYPE unset); "
             "encoder products (WHISPER_COMPUTE=auto, and bf16 where named): "
             + ", ".join(f"{kind} {e['ours'][0]['products']}" for kind, e in engine.items())
             + "; decoder steps: "
             + ", ".join(f"{kind} {e['ours'][0]['steps']}" for kind, e in engine.items()) + ".",
             f"{args.threads} threads each, greedy, language en, timestamps on; medians of {rounds} "
             "interleaved rounds, every run a fresh process (model load and audio decoding "
             "included in whole-file times).", ""]
    if same_bytes:
        lines.append("`speech-recognition-api convert q8_0|q4_0` output equals whisper-quantize's, "
                     "byte for byte: " + ", ".join(f"{k} {'yes' if v else 'NO'}"
                                                   for k, v in same_bytes.items()) + ".")
        lines.append("")
    lines += ["## Whole file", "",
              "Ours with the exact f32 cross-attention cache (the default for f32 and f16 files) and with "
              "`WHISPER_CROSS_CACHE=f16` (whisper.cpp keeps it in f16 too; our default where the products are int8, as they are here for the quantized files). Same text: ours (f32 "
              "cache) against whisper.cpp; the f16 cache's text against ours.", "",
              "| weights | clip | ours (s) | f16 cache (s) | whisper.cpp (s) | ours / whisper.cpp | f16 cache / whisper.cpp | peak RSS ours, f16 cache, whisper.cpp (MiB) | same text | f16 cache's text |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, name), res in results.items():
        ours, cpp, half = median(res["ours"]), median(res["cpp"]), median(res["half"])
        a, b, c = res["texts"]
        errors, count = word_error_rate(b, a)
        same = "yes" if a == b else ("same words" if errors == 0 else f"{errors}/{count} words differ")
        half_errors, _ = word_error_rate(a, c)
        half_same = "same" if a == c else f"{half_errors} words differ"
        lines.append(f"| {kind} | {name} | {ours:.2f} | {half:.2f} | {cpp:.2f} | **{ours / cpp:.2f}** | "
                     f"**{half / cpp:.2f}** | {median(res['ours_rss']):.0f}, "
                     f"{median(res['half_rss']):.0f}, {median(res['cpp_rss']):.0f} | {same} | {half_same} |")
    lines += ["", "## Engine parts", "",
              "Decoder pass: one token through the decoder and the logits (ours: `bench`'s pass "
              "alone; whisper.cpp: its decode time per run on jfk.wav, which leaves out the "
              "window's cross-attention keys and values, computed with its encoder, and sampling). "
              "Load is not the same work on both sides, so it has no ratio: ours maps the file (its "
              "pages come in as the first encoder run touches them, a cost the whole-file times "
              "include), whisper.cpp reads the whole file into its buffers.",
              "", "| weights | encoder, 30 s window: ours / whisper.cpp (ms) | ratio | decoder pass: ours / whisper.cpp (ms) | ratio | with the f16 cache | load: ours, mapped / whisper.cpp, read (ms) |",
              "|---|---|---|---|---|---|---|"]
    for kind, e in engine.items():
        oe = median([b["encode"] for b in e["ours"]])
        ce = median(e["cpp_encode"])
        od = median([b["decode"] for b in e["ours"]])
        oh = median([b["decode"] for b in e["ours_half"]])
        cd = median([t["decode"] for t in e["cpp"] if "decode" in t])
        ol = median([b["load"] for b in e["ours"]])
        cl = median([t["load"] for t in e["cpp"]])
        lines.append(f"| {kind} | {oe:.0f} / {ce:.0f} | **{oe / ce:.2f}** | {od:.2f} / {cd:.2f} | "
                     f"**{od / cd:.2f}** | {oh:.2f} ms, **{oh / cd:.2f}** | {ol:.0f} / {cl:.0f} |")
    lines += ["", "## Texts (last round)", ""]
    for (kind, name), res in results.items():
        a, b, _ = res["texts"]
        lines.append(f"- {kind}, {name}: ours “{a}”" + ("" if a == b else f"; whisper.cpp “{b}”"))
    report = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
