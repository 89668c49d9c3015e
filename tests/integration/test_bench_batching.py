"""bench/whisper_batching.py's smoke run, so that it cannot rot: 4 requests one after another and
at once, and a short request behind a long one."""
import re

import pytest

from conftest import BASE_MODEL, REPO, assert_report_fields_match, run_benchmark_smoke

# What these tests need must be there: missing, they fail (scripts/test.sh assembles it).
@pytest.fixture(autouse=True)
def base_model_present():
    assert BASE_MODEL.exists(), "models/ggml-base.bin is missing: scripts/fetch-base-model.sh models"


def test_batching_smoke(tmp_path):
    report = run_benchmark_smoke("whisper_batching.py", tmp_path / "batching.md")
    assert re.search(r"\| f16 \(exact\) \| [\d.]+ \| [\d.]+ \| \*\*[\d.]+x\*\* \| 4 of 4 \|", report), report
    windows = float(re.search(r"\*\*([\d.]+) windows\*\*", report).group(1))
    assert windows < 3, report  # a short request is not stuck behind a long one
    assert_report_fields_match(REPO / "bench" / "whisper-batching.md", report)
