"""The long-form set: files of several minutes with known text, for measuring what a long-form
transcription keeps and loses (bench/longform.py, tests/integration/test_long_files.py).

Each file is clips with known text, in a seeded random order, joined by 0.3-9 s gaps of digital
silence or quiet noise (white noise at -50 to -40 dBFS), the clips at gains of -6..0 dB:
- `real`: real voices: the LibriVox lines and the card names of Debian's pocketsphinx-testdata
  (with its transcriptions), its "go forward ten meters", JFK's inaugural line and the Python
  speech-recognition-api project's test clip (an Oz book, read aloud);
- `flite`: sentences with names, numbers and ordinary words, said by Debian's flite voices
  (kal, awb, rms, slt), each sentence once per file;
- `noisy`: real voices as in `real` (in another order) over a continuous noise floor 25 dB below
  the speech.

The reference text of each file is its clips' texts in order; build() also returns the span of
every clip, so that a test can tell which words were lost and where.

Usage: python bench/longform_set.py OUT_DIR [--minutes 6] [--seed 7]   (writes WAV + JSON)
"""
import argparse
import json
import pathlib
import subprocess
import tempfile
import wave

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
TESTDATA = pathlib.Path("/usr/share/pocketsphinx/test/data")
RATE = 16000

# The Python project's clip (Tik-Tok of Oz, read aloud), as the book writes it.
SEED_AUDIO_TEXT = ("Having returned to the royal cavern, Kaliko first pounded the gong and then sat in the "
                   "throne, wearing Ruggedo's discarded ruby crown, and holding in his hand the sceptre "
                   "which Ruggedo had so often thrown at his head.")
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, ask what you can do "
            "for your country.")

FLITE_VOICES = ["kal", "awb", "rms", "slt"]
FLITE_SENTENCES = [
    "The meeting with Doctor Patel moved to Thursday at half past three.",
    "Please send the invoice to Margaret before the end of the month.",
    "Our train leaves from platform seven at twenty past eight.",
    "The river flooded the lower fields after three days of heavy rain.",
    "Samuel bought two loaves of bread and a small jar of honey.",
    "The library closes early on Sundays during the summer.",
    "A cold wind came down from the mountains that evening.",
    "She painted the kitchen a pale shade of green.",
    "The children played football in the park until it grew dark.",
    "Turn left at the church and keep walking for five minutes.",
    "The old bridge was rebuilt in nineteen fifty two.",
    "Captain Morgan ordered the crew to lower the sails.",
    "We counted forty one birds on the lake this morning.",
    "The bakery on the corner sells the best apple pie in town.",
    "His grandmother kept a diary for more than sixty years.",
    "The concert was cancelled because the singer had a fever.",
    "Put the blue folder on the top shelf next to the printer.",
    "The museum opens a new exhibition about ancient Egypt in May.",
    "Every winter the village holds a festival of lights.",
    "The doctor told him to drink more water and rest.",
    "Elena found a silver coin buried in the garden.",
    "The storm knocked out the power for most of the night.",
    "Our neighbours are moving to Scotland next spring.",
    "The committee will vote on the new budget tomorrow.",
    "He fixed the bicycle with a wrench and some wire.",
    "The ship reached the harbour just before sunrise.",
    "Dinner is served at seven in the main hall.",
    "The teacher asked the class to read the first chapter.",
    "A small dog followed us all the way home.",
    "The price of coffee has gone up again this year.",
    "Thomas wrote a long letter to his brother in Canada.",
    "The factory makes parts for farm machines.",
    "They planted tomatoes and beans along the fence.",
    "The lighthouse keeper lived alone on the island.",
    "Please remember to lock the back door tonight.",
    "The students finished their exams on Friday afternoon.",
    "A heavy fog covered the valley until noon.",
    "The mayor opened the new swimming pool last week.",
    "We watched the eclipse from the roof of the hotel.",
    "The recipe needs three eggs and a cup of sugar.",
    "The pilot announced that we would land in twenty minutes.",
    "Rebecca plays the violin in the city orchestra.",
    "The hospital is building a new wing for children.",
    "Fresh snow fell on the hills during the night.",
    "The market sells fish, cheese and fresh flowers.",
    "He lost his keys somewhere between the station and the office.",
]


def _read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def _read_raw(path):
    return np.frombuffer(pathlib.Path(path).read_bytes(), dtype="<i2").astype(np.float32) / 32768


def _transcriptions(path):
    out = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if "(" not in line:
            continue
        text, _, key = line.rpartition("(")
        out[key.strip(" )")] = " ".join(w for w in text.split() if w not in ("<s>", "</s>"))
    return out


def real_clips(shared):
    """(samples, text) of every real-voice clip with known text."""
    clips = []
    libri = _transcriptions(TESTDATA / "librivox" / "transcription")
    for key, text in sorted(libri.items()):
        clips.append((_read_wav(TESTDATA / "librivox" / f"{key}.wav"), text))
    cards = _transcriptions(TESTDATA / "cards" / "cards.transcription")
    for key, text in sorted(cards.items()):
        clips.append((_read_wav(TESTDATA / "cards" / f"{key}.wav"), text))
    clips.append((_read_raw(TESTDATA / "goforward.raw"), "go forward ten meters"))
    clips.append((_read_wav(pathlib.Path(shared) / "audio" / "jfk.wav"), JFK_TEXT))
    clips.append((_read_wav(pathlib.Path(shared) / "audio" / "seed-audio.wav"), SEED_AUDIO_TEXT))
    return clips


def flite_clips(rng):
    """(samples, text) of every flite sentence, each in a voice drawn from FLITE_VOICES."""
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(FLITE_SENTENCES):
            voice = FLITE_VOICES[rng.integers(len(FLITE_VOICES))]
            out = pathlib.Path(tmp) / f"{i}.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
            with wave.open(str(out)) as w:
                rate = w.getframerate()
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
            if rate != RATE:  # kal/awb/rms/slt speak at 8 or 16 kHz: linear resampling is enough here
                t = np.arange(int(len(x) * RATE / rate)) * rate / RATE
                x = np.interp(t, np.arange(len(x)), x).astype(np.float32)
            clips.append((x, text))
    return clips


def _gap(rng, seconds):
    n = int(seconds * RATE)
    if rng.random() < 0.5:
        return np.zeros(n, np.float32)
    level = 10 ** (rng.uniform(-50, -40) / 20)
    return (rng.normal(0, level, n)).astype(np.float32)


def _join(clips, rng, minutes, once):
    """Clips in random order (each once if `once`, else repeated) until `minutes`, with gaps."""
    samples, spans, texts = [_gap(rng, rng.uniform(0.3, 2.0))], [], []
    total = len(samples[0])
    order = []
    while total < minutes * 60 * RATE:
        if not order:
            if once and texts:
                break
            order = list(rng.permutation(len(clips)))
        x, text = clips[order.pop()]
        x = x * 10 ** (rng.uniform(-6, 0) / 20)
        spans.append((total / RATE, (total + len(x)) / RATE, text))
        samples.append(x)
        texts.append(text)
        total += len(x)
        g = _gap(rng, rng.uniform(0.3, 9.0))
        samples.append(g)
        total += len(g)
    return np.concatenate(samples), spans


def _write_wav(path, x):
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def build(out_dir, shared, minutes=6.0, seed=7, kinds=("real", "flite", "noisy")):
    """Writes OUT_DIR/<kind>.wav and <kind>.json ({"text", "spans": [[start, end, text]]});
    returns {kind: (wav path, reference text, spans)}. Deterministic for a seed."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind in kinds:
        rng = np.random.default_rng([seed, ["real", "flite", "noisy"].index(kind)])
        if kind == "flite":
            x, spans = _join(flite_clips(rng), rng, minutes, once=True)
        else:
            x, spans = _join(real_clips(shared), rng, minutes, once=False)
            if kind == "noisy":
                speech_rms = float(np.sqrt(np.mean(np.concatenate(
                    [x[int(s * RATE):int(e * RATE)] for s, e, _ in spans]) ** 2)))
                x = x + rng.normal(0, speech_rms * 10 ** (-25 / 20), len(x)).astype(np.float32)
        wav = out_dir / f"{kind}.wav"
        _write_wav(wav, x)
        text = " ".join(t for _, _, t in spans)
        (out_dir / f"{kind}.json").write_text(json.dumps({"text": text, "spans": spans}, indent=1))
        files[kind] = (wav, text, spans)
    return files


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared"))
    args = ap.parse_args()
    for kind, (wav, text, spans) in build(args.out_dir, args.shared, args.minutes, args.seed).items():
        print(f"{wav}: {spans[-1][1] / 60:.1f} min, {len(spans)} clips, {len(text.split())} words")
