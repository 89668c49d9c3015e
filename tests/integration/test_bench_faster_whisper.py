"""bench/whisper_vs_faster_whisper.py's smoke run, so that it cannot rot: faster-whisper 1.2.1 from
the test environment, PyPI's CTranslate2 base (assembled once into ~/.cache/speech-recognition-api),
one round on jfk.wav."""
import re

import pytest

from conftest import BASE_MODEL, REPO, assert_report_fields_match, report_fields, run_benchmark_smoke


# What these tests need must be there: missing, they fail (scripts/test.sh assembles it).
@pytest.fixture(autouse=True)
def base_model_present():
    assert BASE_MODEL.exists(), "models/ggml-base.bin is missing: scripts/fetch-base-model.sh models"


def test_whisper_vs_faster_whisper_smoke(tmp_path):
    report = run_benchmark_smoke("whisper_vs_faster_whisper.py", tmp_path / "vs.md", timeout=900)
    rows = [line for line in report.splitlines() if line.startswith("| jfk.wav")]
    assert len(rows) == 5, report  # ours four ways (q8_0; f16 exact, int8, bf16) and faster-whisper
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2].split()[0]) > 0, row
        # Every system hears JFK's words alike (the same weights).
        assert cells[5] in ("yes", "-"), row
    assert re.search(r"\*\*[\d.]+\*\*", rows[0]), rows[0]
    assert "products" in report and ("int8" in report or "f32" in report)
    committed = REPO / "bench" / "whisper-vs-faster-whisper.md"
    full_only = {f for f in report_fields(committed.read_text()) if re.match(r"- ours|- faster", f)}
    assert_report_fields_match(committed, report, full_only=full_only)
