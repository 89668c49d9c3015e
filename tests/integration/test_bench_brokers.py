"""bench/broker_throughput.py's smoke run, so that it cannot rot: one round of 20 tasks on every
bus (Celery and Huey over plain and TLS Redis, the redis bus), drained by 3 worker processes; the
script fails when a bus does not answer, and the committed report has the fields it writes."""
from conftest import REPO, assert_report_fields_match, run_benchmark_smoke


def test_broker_throughput_smoke(tmp_path):
    report = run_benchmark_smoke("broker_throughput.py", tmp_path / "brokers.md", timeout=600)
    rows = [line for line in report.splitlines() if line.startswith("| ") and "this build" in line]
    assert len(rows) == 5, report
    for row in rows:
        assert float(row.split("|")[4]) > 0, row  # tasks/s
    assert_report_fields_match(REPO / "bench" / "broker-throughput.md", report)
