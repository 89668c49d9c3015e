"""bench/whisper_vs_whispercpp.py's smoke run, so that it cannot rot: whisper.cpp built from the
pinned source (downloaded and built once into ~/.cache/speech-recognition-api/whispercpp), one round on jfk.wav."""
import re

import pytest

from conftest import BASE_MODEL, run_benchmark_smoke

pytestmark = pytest.mark.skipif(not BASE_MODEL.exists(), reason="models/ggml-base.bin is missing")


def test_whisper_vs_whispercpp_smoke(tmp_path):
    report = run_benchmark_smoke("whisper_vs_whispercpp.py", tmp_path / "vs.md", timeout=2300)
    row = next(line for line in report.splitlines() if line.startswith("| f16 | jfk.wav"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    ours, half, theirs = float(cells[2]), float(cells[3]), float(cells[4])
    assert ours > 0 and half > 0 and theirs > 0, row
    assert cells[8] == "yes", row  # both engines write JFK's sentence alike
    assert cells[9] == "same", row  # and the f16 cache changes nothing here
    parts = next(line for line in report.splitlines() if line.startswith("| f16 | ") and "/" in line
                 and "jfk" not in line)
    assert re.search(r"\*\*[\d.]+\*\*", parts), parts
    assert "avx" in report or "portable" in report  # the kernels that ran are named
