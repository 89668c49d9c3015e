"""Diarization error rate, as NIST md-eval and pyannote.metrics define it with no collar and
overlap scored: (missed speech + false alarm + speaker confusion) / reference speech, over 10 ms
frames, with the mapping of hypothesis speakers to reference speakers that minimises the error
(found by trying every one-to-one mapping: fine for the handful of speakers of a test)."""
import itertools

STEP = 0.01


def read_rttm(text):
    turns = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def _frames(turns, length):
    speakers = sorted({s for _, _, s in turns})
    grid = {s: [False] * length for s in speakers}
    for start, end, s in turns:
        for i in range(int(round(start / STEP)), min(length, int(round(end / STEP)))):
            grid[s][i] = True
    return grid


def der(reference, hypothesis):
    """(error rate, details) for two lists of (start, end, speaker)."""
    length = int(max([e for _, e, _ in reference + hypothesis] + [0]) / STEP) + 1
    ref, hyp = _frames(reference, length), _frames(hypothesis, length)
    r_names, h_names = list(ref), list(hyp)
    total = missed = false_alarm = 0
    n_ref = [sum(ref[s][i] for s in r_names) for i in range(length)]
    n_hyp = [sum(hyp[s][i] for s in h_names) for i in range(length)]
    for i in range(length):
        total += n_ref[i]
        missed += max(0, n_ref[i] - n_hyp[i])
        false_alarm += max(0, n_hyp[i] - n_ref[i])
    best_correct = 0
    pad = [None] * max(0, len(h_names) - len(r_names))
    for mapping in itertools.permutations(r_names + pad, len(h_names)):
        correct = 0
        for h, r in zip(h_names, mapping):
            if r is not None:
                correct += sum(1 for i in range(length) if hyp[h][i] and ref[r][i])
        best_correct = max(best_correct, correct)
    confusion = sum(min(n_ref[i], n_hyp[i]) for i in range(length)) - best_correct
    details = {"missed": missed * STEP, "false_alarm": false_alarm * STEP,
               "confusion": confusion * STEP, "total": total * STEP}
    return (missed + false_alarm + confusion) / total, details
