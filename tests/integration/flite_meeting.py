"""A three-voice meeting made with Debian's flite voices (slt, awb, rms taking turns with gaps of
0.4-0.9 s), and the turns as they were made: a diarization fixture with an exact reference, used
by tests/integration/test_diarization.py and bench/diarization.py."""
import subprocess
import wave

import numpy as np

LINES = [("slt", "Good morning everyone, thank you for joining the weekly planning meeting today."),
         ("awb", "Thanks. I have three updates about the release schedule and the testing budget."),
         ("rms", "Before that, can we talk about the customer feedback from last week?"),
         ("slt", "Sure, let us start with the feedback, then move to the release."),
         ("rms", "Most customers liked the new dashboard, but the export feature is too slow."),
         ("awb", "We measured it. Exports of large reports take almost two minutes on the old servers."),
         ("slt", "That is far too long. What would it take to bring it under ten seconds?"),
         ("awb", "A new index on the reports table, and streaming the file instead of building it in memory."),
         ("rms", "I can help with the streaming part, I wrote the original export code."),
         ("slt", "Great, then the two of you own that. Now, the release schedule please."),
         ("awb", "We planned the release for the fourteenth, but the security review is not finished."),
         ("rms", "The reviewers asked for two more days, so the sixteenth looks realistic."),
         ("slt", "Fine. Let us announce the sixteenth and keep the fourteenth as an internal goal.")]


def build_meeting(directory, lines=LINES, seed=3, name="meeting.wav"):
    """Writes `directory`/`name` (16 kHz mono); returns (path, [(start, end, voice), ...])."""
    rng = np.random.default_rng(seed)
    pieces, turns, t = [], [], 0.0
    for i, (voice, text) in enumerate(lines):
        raw, resampled = directory / f"{i}.wav", directory / f"{i}-16k.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1",
                        str(resampled)], check=True)
        with wave.open(str(resampled)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        loud = np.nonzero(np.abs(x) > 200)[0]
        x = x[loud[0]:loud[-1] + 1]
        gap = int(16000 * rng.uniform(0.4, 0.9))
        pieces += [np.zeros(gap, dtype="<i2"), x]
        t += gap / 16000
        turns.append((t, t + len(x) / 16000, voice))
        t += len(x) / 16000
    pieces.append(np.zeros(8000, dtype="<i2"))
    path = directory / name
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate(pieces).tobytes())
    return path, turns
