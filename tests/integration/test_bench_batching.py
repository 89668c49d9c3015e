"""bench/whisper_batching.py's smoke run, so that it cannot rot: 4 requests one after another and
at once, and a short request behind a long one."""
import re

import pytest

from conftest import BASE_MODEL, run_benchmark_smoke

pytestmark = pytest.mark.skipif(not BASE_MODEL.exists(), reason="models/ggml-base.bin is missing")


def test_batching_smoke(tmp_path):
    report = run_benchmark_smoke("whisper_batching.py", tmp_path / "batching.md")
    assert re.search(r"Throughput ratio: \*\*[\d.]+x\*\*; the same text for 4 of 4 requests", report), report
    windows = float(re.search(r"\*\*([\d.]+) windows\*\*", report).group(1))
    assert windows < 3, report  # a short request is not stuck behind a long one
