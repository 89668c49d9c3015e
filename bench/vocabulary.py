"""Keyterm biasing and the language restriction, measured on bench/vocabulary_set.py's clips
through our server's OpenAI route (as a user sends them), with faster-whisper's `hotwords` (its
prompt-prefix way of favouring words) side by side.

Keyterms: for every clip, the whole glossary is sent (`keyterms`); term recall is the share of
the terms a clip says that come back spelled as in the glossary (case-insensitive, whole words);
false insertions are glossary terms in a transcript whose clip does not say them; WER is over the
words that are not terms (OpenAI's English normalizer), so that it shows what biasing does to the
rest of the text. The boost is chosen on the `tune` clips; the `held_out` clips only report.

Languages: /v1/audio/language on short English utterances (one to three words, where Whisper's
detection is least sure), without and with `languages=en,de,fr,es`.

Usage: python bench/vocabulary.py [--out bench/vocabulary.md] [--boosts 0.75,1.5,3]
       [--smoke]  (a quick look: four tune clips and a plain one, one boost)
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
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import requests  # noqa: E402
from conftest import Server, base_env  # noqa: E402
from longform_score import score  # noqa: E402
from vocabulary_set import build  # noqa: E402

BASE = REPO / "models" / "ggml-base.bin"
THREADS = 2
DEFAULT_BOOST = 1.5  # WHISPER_KEYTERM_BOOST's default, chosen on the tune clips of this report


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def found_terms(text, glossary):
    """The glossary terms a transcript spells as the glossary does (whole words, any case)."""
    return {t for t in glossary if re.search(r"(?<![\w])" + re.escape(t) + r"(?![\w])", text, re.IGNORECASE)}


def non_term_wer(reference, hypothesis, glossary):
    """Word errors and reference words, the glossary's terms left out of both texts."""
    lower = {t.lower() for t in glossary}
    strip_terms = lambda text: " ".join(w for w in re.findall(r"[\w']+", text) if w.lower() not in lower)
    s = score(strip_terms(reference), strip_terms(hypothesis))
    return s.substituted + s.deleted + s.inserted, s.words


class Tally:
    def __init__(self):
        self.said = self.recalled = self.false = self.errors = self.words = 0
        self.seconds = []

    def add(self, clip, text, glossary, seconds):
        terms = found_terms(text, glossary)
        self.said += len(clip["terms"])
        self.recalled += len(terms & set(clip["terms"]))
        self.false += len(terms - set(clip["terms"]))
        e, n = non_term_wer(clip["text"], text, glossary)
        self.errors += e
        self.words += n
        self.seconds.append(seconds)

    def cells(self):
        recall = f"{100 * self.recalled / self.said:.0f} % ({self.recalled}/{self.said})" if self.said else "-"
        return [recall, str(self.false), f"{100 * self.errors / max(self.words, 1):.1f} %",
                f"{statistics.median(self.seconds):.2f} s"]


def ours(server, clip, **fields):
    t0 = time.perf_counter()
    with open(clip["path"], "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "language": "en", **fields}, timeout=600)
    r.raise_for_status()
    return r.json()["text"], time.perf_counter() - t0


FW_RUNNER = r"""
import json, sys, time
from faster_whisper import WhisperModel
model_dir, threads, hotwords = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
for line in sys.stdin:
    t0 = time.perf_counter()
    segments, _ = m.transcribe(line.strip(), language="en", beam_size=1, hotwords=hotwords or None)
    text = "".join(s.text for s in segments)
    print(json.dumps({"text": text, "seconds": time.perf_counter() - t0}), flush=True)
"""


def faster_whisper(clips, hotwords):
    from longform import ct2_base
    paths = "".join(c["path"] + "\n" for c in clips)
    out = subprocess.run([sys.executable, "-c", FW_RUNNER, str(ct2_base()), str(THREADS), hotwords],
                         input=paths, capture_output=True, text=True, check=True, timeout=3600).stdout
    return [(r["text"], r["seconds"]) for r in map(json.loads, out.strip().splitlines())]


def detect(server, clip, **fields):
    with open(clip["path"], "rb") as f:
        r = requests.post(server.url("/v1/audio/language"), files={"file": ("a.wav", f)}, data=fields, timeout=600)
    r.raise_for_status()
    return r.json()["language"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "vocabulary.md"))
    ap.add_argument("--boosts", default="0.75,1.5,3")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-peer", action="store_true", help="leave faster-whisper out")
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="vocabulary-"))
    glossary, clips = build(work)
    boosts = [float(b) for b in args.boosts.split(",")]
    if args.smoke:
        clips = [c for c in clips if c["split"] == "tune"][:4] + [c for c in clips if c["kind"] == "plain"][:1]
        boosts = boosts[1:2] or boosts
    server = Server(work / "server", base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE, WHISPER_THREADS=THREADS,
                                              INFERENCE_THREADS=THREADS, LOG_LEVEL="warning")).start()
    terms = ", ".join(glossary)
    systems = {"ours, no keyterms": {}}
    for b in boosts:  # keyterms_prompt is on by default
        label = " (the defaults)" if b == DEFAULT_BOOST else ""
        systems[f"ours, keyterms, boost {b:g}{label}"] = {"keyterms": terms, "keyterm_boost": str(b)}
    middle = str(boosts[len(boosts) // 2])
    for b in boosts:
        systems[f"ours, keyterms, boost {b:g}, no prompt"] = {"keyterms": terms, "keyterm_boost": str(b),
                                                             "keyterms_prompt": "false"}
    systems["ours, keyterms_prompt only (boost 0)"] = {"keyterms": terms, "keyterm_boost": "0"}
    systems[f"ours, keyterms, boost {middle}, beam 5"] = {"keyterms": terms, "keyterm_boost": middle,
                                                          "beam_size": "5"}
    scored = [c for c in clips if c["kind"] in ("term", "plain")]
    tallies = {}  # (system, split) -> Tally
    examples = {}
    try:
        for name, fields in systems.items():
            for clip in scored:
                text, seconds = ours(server, clip, **fields)
                split = clip["split"] if clip["kind"] == "term" else "plain"
                tallies.setdefault((name, split), Tally()).add(clip, text, glossary, seconds)
                examples.setdefault(clip["path"], {})[name] = text
            log(name, *(f"{s}: {tallies[(name, s)].cells()}" for s in ("tune", "held_out", "plain")
                        if (name, s) in tallies))
        if not args.no_peer and not args.smoke:
            for name, hot in (("faster-whisper int8", ""), ("faster-whisper int8, hotwords", terms)):
                for clip, (text, seconds) in zip(scored, faster_whisper(scored, hot)):
                    split = clip["split"] if clip["kind"] == "term" else "plain"
                    tallies.setdefault((name, split), Tally()).add(clip, text, glossary, seconds)
                    examples.setdefault(clip["path"], {})[name] = text
                systems[name] = None
                log(name, *(f"{s}: {tallies[(name, s)].cells()}" for s in ("tune", "held_out", "plain")))
        short = [c for c in clips if c["kind"] == "short"]
        allowed = "en,de,fr,es"
        detections = [(c, detect(server, c), detect(server, c, languages=allowed)) for c in short]
    finally:
        server.stop()

    splits = [s for s in ("tune", "held_out", "plain") if any(k[1] == s for k in tallies)]
    lines = ["# Vocabulary: keyterms and allowed languages", "",
             f"`python bench/vocabulary.py{' --smoke' if args.smoke else ''} --boosts {args.boosts}` on "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads, "
             f"{time.strftime('%Y-%m-%d')}, the base model (ggml-base.bin), greedy unless said, `language=en`; "
             f"`keyterms_prompt` (the terms also open every window's prompt) is on unless said. "
             f"Clips by bench/vocabulary_set.py (Debian's flite voices): {sum(c['kind'] == 'term' for c in clips)} "
             f"with terms ({sum(c['split'] == 'tune' for c in clips)} tune, "
             f"{sum(c['split'] == 'held_out' and c['kind'] == 'term' for c in clips)} held out), "
             f"{sum(c['kind'] == 'plain' for c in clips)} plain sentences. Every request sends the whole "
             f"glossary of {len(glossary)} terms.", "",
             "Per split: term recall (terms spelled as in the glossary), glossary terms inserted where the clip "
             "does not say them, WER of the words that are not terms, median seconds per request:", "",
             "| system | " + " | ".join(f"{s}: recall | inserted | WER | s" for s in splits) + " |",
             "|---|" + "---|---|---|---|" * len(splits)]
    for name in systems:
        cells = []
        for s in splits:
            cells += tallies[(name, s)].cells() if (name, s) in tallies else ["-"] * 4
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Allowed languages", "",
              f"/v1/audio/language on {len(detections)} short English utterances (one to three words; held out: "
              f"not used to choose anything), clean and under white noise: how many are detected as English "
              f"with every language, and with `languages={allowed}`:", "",
              "| noise | any language | allowed | what the misses were detected as |", "|---|---|---|---|"]
    for snr in sorted({c["snr"] for c, _, _ in detections}, key=lambda v: 99 if v is None else -v):
        rows = [(a, b) for c, a, b in detections if c["snr"] == snr]
        misses = ", ".join(f"{a} -> {b}" for a, b in rows if a != "en" or b != "en") or "none"
        lines.append(f"| {'clean' if snr is None else f'SNR {snr} dB'} | {sum(a == 'en' for a, _ in rows)}/{len(rows)} | "
                     f"{sum(b == 'en' for _, b in rows)}/{len(rows)} | {misses} |")
    lines.append(f"| all | {sum(a == 'en' for _, a, _ in detections)}/{len(detections)} | "
                 f"{sum(b == 'en' for _, _, b in detections)}/{len(detections)} | |")
    lines += ["", "## Transcripts of the held-out clips (terms, then plain)", ""]
    for c in clips:
        if c["kind"] == "short" or c["split"] != "held_out" or c["path"] not in examples:
            continue
        lines.append(f"- **{c['text']}** ({pathlib.Path(c['path']).stem.split('-', 1)[1]})")
        for name, text in examples[c["path"]].items():
            lines.append(f"  - {name}: {text.strip()}")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
