"""The vocabulary set: clips with rare names and product terms, ordinary sentences and short
utterances, for measuring keyterm biasing and the language restriction (bench/vocabulary.py,
tests/integration/test_vocabulary.py).

- `term` clips: twelve sentences, each with two or three terms of GLOSSARY (names of people and
  places, product words), said by two of Debian's flite voices; the first six sentences tune the
  boost (`tune`), the last six are held out (`held_out`).
- `plain` clips: ordinary sentences with none of the terms, by the same voices: what biasing must
  not break (WER and terms wrongly inserted).
- `short` clips: English utterances of one to three words, where language detection is least sure,
  clean and under white noise at 5, 0 and -5 dB SNR (seeded).

Every clip has its reference text; the glossary given to a request is always the whole list (a
user's glossary holds more terms than any one clip says).

Usage: python bench/vocabulary_set.py OUT_DIR   (writes WAVs and set.json)
"""
import argparse
import json
import pathlib
import subprocess
import wave

import numpy as np

GLOSSARY = ["Siobhan", "Nguyen", "Kubernetes", "Terraform", "PostgreSQL", "Saoirse", "Xiaomi",
            "Reykjavik", "Kibana", "Grafana", "Siddharth", "Jupyter", "Tchaikovsky", "Ljubljana",
            "Okonkwo", "Oaxaca", "Kafka", "Prometheus", "Figma", "Vercel", "Worcestershire",
            "Huawei", "Supabase", "Anthropic", "Nvidia"]

TERM_SENTENCES = [
    "Please ask Siobhan Nguyen to deploy the Kubernetes cluster before Thursday.",
    "The Terraform plan failed because the PostgreSQL password had expired.",
    "Saoirse bought a Xiaomi phone at the airport in Reykjavik.",
    "We moved our dashboards from Kibana to Grafana last spring.",
    "Siddharth wrote the report in a Jupyter notebook on his laptop.",
    "The orchestra played Tchaikovsky in Ljubljana on Friday night.",
    "Okonkwo flew to Oaxaca to meet the new suppliers.",
    "The Kafka consumers fall behind whenever Prometheus scrapes too often.",
    "Our designers share mockups in Figma and deploy previews on Vercel.",
    "Add a dash of Worcestershire sauce to the soup before serving.",
    "The Huawei router dropped the connection during the Supabase migration.",
    "Anthropic and Nvidia announced the partnership on Tuesday.",
]
PLAIN_SENTENCES = [
    "The meeting moved to Thursday at half past three.",
    "Please send the invoice before the end of the month.",
    "Our train leaves from platform seven at twenty past eight.",
    "The river flooded the lower fields after three days of heavy rain.",
    "Put the blue folder on the top shelf next to the printer.",
    "The doctor told him to drink more water and rest.",
]
SHORT_UTTERANCES = ["Yes.", "No thanks.", "Okay.", "Stop.", "Hello there.", "Good night.",
                    "Turn it off.", "Thank you.", "Next one.", "Call mom.", "Lights on.", "Pause music."]
VOICES = ["slt", "rms", "awb", "kal16"]
NOISE_SNRS_DB = [None, 5, 0, -5]  # None: clean


def add_noise(source, target, snr_db, seed):
    with wave.open(str(source)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    noise = np.random.default_rng(seed).normal(size=len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x + noise, -1, 1) * 32767).astype(np.int16).tobytes())


def say(text, voice, path):
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    # kal16 and the others are 16 kHz mono already; the server resamples whatever it gets.


def build(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, text in enumerate(TERM_SENTENCES):
        for voice in (VOICES[i % 4], VOICES[(i + 1) % 4]):
            path = out / f"term{i:02d}-{voice}.wav"
            if not path.exists():
                say(text, voice, path)
            clips.append({"kind": "term", "split": "tune" if i < 6 else "held_out", "path": str(path),
                          "text": text, "terms": [t for t in GLOSSARY if t in text]})
    for i, text in enumerate(PLAIN_SENTENCES):
        voice = VOICES[i % 4]
        path = out / f"plain{i:02d}-{voice}.wav"
        if not path.exists():
            say(text, voice, path)
        clips.append({"kind": "plain", "split": "held_out", "path": str(path), "text": text, "terms": []})
    for i, text in enumerate(SHORT_UTTERANCES):
        voice = VOICES[i % 4]
        clean = out / f"short{i:02d}-{voice}.wav"
        if not clean.exists():
            say(text, voice, clean)
        for snr in NOISE_SNRS_DB:
            path = clean if snr is None else out / f"short{i:02d}-{voice}-snr{snr}.wav"
            if not path.exists():
                add_noise(clean, path, snr, seed=i * 100 + snr + 50)
            clips.append({"kind": "short", "split": "held_out", "path": str(path), "text": text, "terms": [],
                          "snr": snr})
    (out / "set.json").write_text(json.dumps({"glossary": GLOSSARY, "clips": clips}, indent=1))
    return GLOSSARY, clips


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    build(parser.parse_args().out_dir)
