"""Speaker diarization side by side with senko 0.2.2 (PyTorch: Silero VAD, CAM++, clustering; the
reference the issue names), in one run, interleaved, medians and ratios, written as Markdown to
bench/diarization.md.

Quality: the diarization error rate (no collar, overlap scored: missed + false alarm + confusion
over the reference speech; tests/integration/diarization_error.py) and the speakers found, on
pyannote's human-annotated two-speaker sample (pyannote-audio 4.0.7's wheel) and on a three-voice
flite meeting (tests/integration/flite_meeting.py, its turns as built). Speed: wall time of the
whole process (ours: `speech-recognition-api diarize`; senko: its Diarizer.diarize() in a warm
process, model loading excluded, so the comparison favours senko) and peak resident memory, on
those files and on 10 minutes and 1 hour of real speech (the shared LibriVox/JFK mix repeated).

senko needs torch >= 2.8 (some 6 GB with its CUDA wheels): give a Python where it is installed
(`python -m venv /tmp/senko && /tmp/senko/bin/pip install senko==0.2.2`).

Usage: python bench/diarization.py --senko-python /tmp/senko/bin/python [--runs 3] [--hour]
       python bench/diarization.py --smoke      (ours on the flite meeting only)
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import BINARY, SHARED  # noqa: E402
from diarization_error import der, read_rttm  # noqa: E402
from flite_meeting import build_meeting  # noqa: E402

SENKO_RUNNER = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(int(sys.argv[2]))
import senko
d = senko.Diarizer(device="cpu", warmup=True, quiet=True)
out = []
for path in sys.argv[3:]:
    t0 = time.time()
    r = d.diarize(path)
    seconds = time.time() - t0
    segments = (r or {}).get("merged_segments", [])
    out.append({"path": path, "seconds": seconds, "turns": [[s["start"], s["end"], str(s["speaker"])] for s in segments]})
print(json.dumps({"runs": out, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def pyannote_sample(directory):
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory),
                    "pyannote.audio==4.0.7"], check=True)
    with zipfile.ZipFile(directory / "pyannote_audio-4.0.7-py3-none-any.whl") as z:
        (directory / "sample.wav").write_bytes(z.read("pyannote/audio/sample/sample.wav"))
        return directory / "sample.wav", read_rttm(z.read("pyannote/audio/sample/sample.rttm").decode())


def repeated(directory, minutes, name):
    """The shared 52.7 s mix of real voices repeated to `minutes` (no reference: for speed)."""
    source = SHARED / "whisper" / "audio" / "words" / "long_mix.wav"
    times = max(1, round(minutes * 60 / 52.7))
    listing = directory / f"{name}.txt"
    listing.write_text("".join(f"file '{source}'\n" for _ in range(times)))
    path = directory / f"{name}.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(path)], check=True)
    return path


def ours(path, threads):
    """(seconds, peak KB, turns) of one whole `diarize` process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", str(BINARY), "diarize", str(path), "--rttm"],
                       capture_output=True, text=True, env=env, cwd=REPO, check=True)
    seconds = time.time() - t0
    peak = int(r.stderr.strip().splitlines()[-1])
    return seconds, peak, read_rttm(r.stdout)


def senko(python, paths, threads):
    """Per path (seconds, turns), and the process's peak KB, from one warm senko process."""
    r = subprocess.run([python, "-c", SENKO_RUNNER, "x", str(threads), *map(str, paths)],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout.strip().splitlines()[-1])
    return [(run["seconds"], [tuple(t) for t in run["turns"]]) for run in data["runs"]], data["peak_kb"]


def cpu_name():
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--senko-python")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hour", action="store_true", help="also 1 hour of audio (speed only)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="sra-diarization-"))
    meeting, meeting_turns = build_meeting(work)
    if args.smoke:
        seconds, peak, turns = ours(meeting, args.threads)
        rate, details = der(meeting_turns, turns)
        print(f"flite meeting: DER {rate:.1%}, {len({s for *_, s in turns})} speakers, {seconds:.1f} s")
        assert rate < 0.2, details
        return
    sample, sample_turns = pyannote_sample(work)
    files = [("pyannote sample (30 s, 2 speakers, human RTTM)", sample, sample_turns),
             ("flite meeting (65 s, 3 voices)", meeting, meeting_turns),
             ("real speech, 10 min", repeated(work, 10, "ten"), None)]
    if args.hour:
        files.append(("real speech, 1 h", repeated(work, 60, "hour"), None))
    results = {name: {"ours": [], "senko": []} for name, *_ in files}
    peaks = {"ours": 0, "senko": 0}
    for run in range(args.runs):  # interleaved: ours on every file, then senko on every file
        for name, path, _ in files:
            seconds, peak, turns = ours(path, args.threads)
            results[name]["ours"].append((seconds, turns))
            peaks["ours"] = max(peaks["ours"], peak)
            print(f"run {run + 1} ours   {name}: {seconds:.2f} s", file=sys.stderr)
        if args.senko_python:
            runs, peak = senko(args.senko_python, [p for _, p, _ in files], args.threads)
            peaks["senko"] = max(peaks["senko"], peak)
            for (name, *_), (seconds, turns) in zip(files, runs):
                results[name]["senko"].append((seconds, turns))
                print(f"run {run + 1} senko  {name}: {seconds:.2f} s", file=sys.stderr)

    lines = ["# Speaker diarization: ours and senko 0.2.2", "",
             f"`python bench/diarization.py --runs {args.runs} --threads {args.threads}"
             f"{' --hour' if args.hour else ''}` on {cpu_name()}, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; {args.threads} threads each, runs "
             "interleaved, medians. DER: no collar, overlap scored. Ours: the whole process "
             "(models loaded, file decoded); senko: `Diarizer.diarize()` in a warm process (its "
             "model loading not counted).", "",
             "| file | DER ours | DER senko | speakers ours / senko / true | time ours | time senko | ours / senko |",
             "|---|---|---|---|---|---|---|"]
    for name, _, reference in files:
        o, s = results[name]["ours"], results[name]["senko"]
        t_o = statistics.median(x for x, _ in o)
        t_s = statistics.median(x for x, _ in s) if s else None
        def rate(turns):
            return f"{der(reference, turns)[0]:.1%}" if reference else "-"
        def count(turns):
            return len({t[2] for t in turns})
        truth = len({t[2] for t in reference}) if reference else "-"
        lines.append(f"| {name} | {rate(o[-1][1])} | {rate(s[-1][1]) if s else '-'} | "
                     f"{count(o[-1][1])} / {count(s[-1][1]) if s else '-'} / {truth} | {t_o:.2f} s | "
                     f"{f'{t_s:.2f} s' if t_s else '-'} | {f'{t_o / t_s:.2f}x' if t_s else '-'} |")
    lines += ["", f"Peak resident memory: ours {peaks['ours'] / 1024:.0f} MiB (largest file, whole "
              f"process, the decoded audio included), senko {peaks['senko'] / 1024:.0f} MiB (its "
              "process over every file)."]
    (HERE / "diarization.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
