"""A short run of the load test (bench/load_test.py) so that it cannot rot: every kind of client
at once (sync, OpenAI, SSE, async with polling, trickling uploads, clients that hang up), and
then nothing accepted is lost, no 500, /health never fails, the server stays up."""
import subprocess
import sys

from conftest import BINARY, REPO, assert_report_fields_match


def test_load_smoke(tmp_path):
    out = tmp_path / "load.md"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "load_test.py"), "--binary", str(BINARY),
                        "--clients", "16", "--seconds", "15", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    print(r.stdout[-3000:], r.stderr[-3000:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = out.read_text()
    assert "lost: 0" in report and "alive at the end: True" in report
    assert "stopped on SIGTERM: True" in report
    assert_report_fields_match(REPO / "bench" / "load-test.md", report)
