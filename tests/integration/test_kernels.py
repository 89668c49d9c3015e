"""SRA_KERNELS, as docs/configuration.md states it: a lower kernel set than the CPU's best is used
when asked for (the log says which), it transcribes real speech as the best set does (the sets
differ in the order of float sums only: the same text, avg_logprob within 1e-3), and a name that
is not a set stops the start with a message naming the variable; likewise SRA_BF16_KERNEL."""
import json
import re
import subprocess

import pytest

from conftest import AUDIO, BASE_MODEL, BINARY, base_env


@pytest.fixture(autouse=True)
def base_model_present():
    assert BASE_MODEL.exists(), "models/ggml-base.bin is missing: scripts/fetch-base-model.sh models"


def run(tmp_path, **settings):
    env = base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, WHISPER_LANGUAGE="en", **settings)
    return subprocess.run([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null",
                           str(AUDIO / "jfk.wav")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def result_of(r):
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.splitlines()[0])
    used = re.search(r"runs the (\w+) kernels \(this CPU's best: (\w+)\)", r.stderr)
    assert used, r.stderr
    return result, used.group(1), used.group(2)


def test_a_lower_kernel_set_when_asked_and_the_same_words(tmp_path):
    best, used, cpu_best = result_of(run(tmp_path))
    assert used == cpu_best
    lower = ["portable"] + (["avx2"] if cpu_best == "avx512" else [])
    for name in lower:
        other, used, _ = result_of(run(tmp_path, SRA_KERNELS=name))
        assert used == name
        assert other["text"] == best["text"], name
        for a, b in zip(other["segments"], best["segments"], strict=True):
            assert a["tokens"] == b["tokens"], name
            assert abs(a["avg_logprob"] - b["avg_logprob"]) < 1e-3, name
    # The top set: this CPU's best when it has it, else a fall back to its best (documented).
    _, used, _ = result_of(run(tmp_path, SRA_KERNELS="avx512"))
    assert used == cpu_best


def test_a_name_that_is_not_a_set_stops_the_start(tmp_path):
    r = run(tmp_path, SRA_KERNELS="avx9000")
    assert r.returncode != 0
    assert "SRA_KERNELS" in r.stderr and "avx9000" in r.stderr, r.stderr


def test_the_bf16_kernel_when_asked_and_the_same_words(tmp_path):
    """SRA_BF16_KERNEL=avx512 runs WHISPER_COMPUTE=bf16 on AVX-512 BF16 where the CPU also has
    AMX (the default there): the same operands rounded alike, sums in another order, so the same
    words; a CPU without AVX-512 BF16 computes exactly and says so."""
    default, _, _ = result_of(run(tmp_path, WHISPER_COMPUTE="bf16"))
    r = run(tmp_path, WHISPER_COMPUTE="bf16", SRA_BF16_KERNEL="avx512")
    chosen, _, _ = result_of(r)
    if "bf16 (" not in r.stderr:
        assert "WHISPER_COMPUTE=bf16 needs AVX-512 BF16" in r.stderr, r.stderr
        pytest.skip("this CPU has no AVX-512 BF16: computed exactly, as said")
    assert "bf16 (AVX-512 BF16 kernel) products" in r.stderr, r.stderr
    assert chosen["text"] == default["text"]


def test_a_name_that_is_not_a_bf16_kernel_stops_the_start(tmp_path):
    r = run(tmp_path, SRA_BF16_KERNEL="amx9000")
    assert r.returncode != 0
    assert "SRA_BF16_KERNEL" in r.stderr and "amx9000" in r.stderr, r.stderr
