"""What the quantized-file tests (test_quantized.py, test_quantized_whispercpp.py) share: the
binary's transcription of a clip with a model file, and the base model converted to q8_0 and q4_0
by `speech-recognition-api convert`."""
import json
import subprocess

import pytest

from conftest import BASE_MODEL, BINARY, base_env


@pytest.fixture(autouse=True)
def base_model_present():
    """What these tests need must be there: missing, they fail (scripts/test.sh assembles it)."""
    assert BASE_MODEL.exists(), "models/ggml-base.bin is missing: scripts/fetch-base-model.sh models"


def transcribe_logged(model, audio, tmp_path, **settings):
    """The text, the avg_logprob over all tokens, and the binary's log."""
    env = base_env(MODEL="whisper", WHISPER_MODEL_PATH=model, WHISPER_LANGUAGE="en", **settings)
    r = subprocess.run([str(BINARY), "transcribe", "--json", "--env-file", "/dev/null", str(audio)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.splitlines()[0])
    tokens = sum(len(s["tokens"]) for s in result["segments"])
    logprob = sum(s["avg_logprob"] * len(s["tokens"]) for s in result["segments"]) / tokens
    return result["text"], logprob, r.stderr


def transcribe(model, audio, tmp_path, **settings):
    text, logprob, _ = transcribe_logged(model, audio, tmp_path, **settings)
    return text, logprob


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantized")
    files = {}
    for kind in ("q8_0", "q4_0"):
        out = folder / f"ggml-base-{kind}.bin"
        r = subprocess.run([str(BINARY), "convert", kind, str(BASE_MODEL), str(out)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"weights {kind}" in r.stdout
        # whisper.cpp's sizes for base: 81768585 and 46471049 bytes
        assert out.stat().st_size < BASE_MODEL.stat().st_size * (0.6 if kind == "q8_0" else 0.35)
        files[kind] = out
    return files
