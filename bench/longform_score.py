"""Scores a long-form transcript against its reference: word error rate after OpenAI's English
normalizer (PyPI `whisper-normalizer`, the normalizer of openai/whisper), with substitutions,
deletions and insertions counted apart and the longest run of consecutive reference words
deleted (lost speech shows as a long run; a misheard word does not)."""
from dataclasses import dataclass

from whisper_normalizer.english import EnglishTextNormalizer

_normalizer = EnglishTextNormalizer()


def normalized_words(text):
    return _normalizer(text).split()


@dataclass
class Score:
    words: int  # reference words
    substituted: int
    deleted: int
    inserted: int
    longest_deleted_run: int  # consecutive reference words deleted

    @property
    def wer(self):
        return (self.substituted + self.deleted + self.inserted) / max(self.words, 1)


def score(reference, hypothesis):
    r, h = normalized_words(reference), normalized_words(hypothesis)
    n, m = len(r), len(h)
    # Edit distance with a backtrace (costs 1 each); rows of bytes keep 500 x 500 words cheap.
    cost = [list(range(m + 1))]
    for i in range(1, n + 1):
        prev, row = cost[-1], [i] + [0] * m
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
        cost.append(row)
    i, j = n, m
    sub = dele = ins = 0
    run = longest = 0
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (r[i - 1] != h[j - 1]):
            sub += r[i - 1] != h[j - 1]
            i, j, run = i - 1, j - 1, 0
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            dele += 1
            run += 1
            longest = max(longest, run)
            i -= 1
        else:
            ins += 1
            j -= 1
    return Score(n, sub, dele, ins, longest)
