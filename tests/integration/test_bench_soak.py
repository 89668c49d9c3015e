"""bench/realtime_soak.py's smoke run, so that it cannot rot: 4 live sessions (steady, 10x bursts,
idle then one large append, junk between appends) beside 4 HTTP clients for 25 s. The script
fails when the server dies, its memory passes the stated bound or a session is closed; here the
report's figures are checked too."""
import re

from conftest import BASE_MODEL, REPO, assert_report_fields_match, run_benchmark_smoke


def test_soak_smoke(tmp_path):
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    report = run_benchmark_smoke("realtime_soak.py", tmp_path / "soak.md")
    assert "The server stayed up." in report, report
    assert float(re.search(r"Worst session WER: \*\*([\d.]+)\*\*", report).group(1)) <= 0.1, report
    assert re.search(r"failed 0\.", report), report
    sessions = re.findall(r"^\| \d \| (\w+) \| (\d+) \|", report, re.M)
    assert len(sessions) == 4 and all(int(turns) > 0 for _, turns in sessions), report
    assert_report_fields_match(REPO / "bench" / "realtime-soak.md", report)
