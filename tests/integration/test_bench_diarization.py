"""bench/diarization.py's smoke run, so that it cannot rot: ours on the flite meeting, scored."""
import subprocess
import sys

from conftest import REPO


def test_diarization_bench_smoke():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "diarization.py"), "--smoke"],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "flite meeting: DER" in r.stdout and "3 speakers" in r.stdout, r.stdout
