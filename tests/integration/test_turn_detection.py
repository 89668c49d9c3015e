"""End of turn by meaning: smart-turn v3.2 run natively (`speech-recognition-api turn`) against
onnxruntime on the same file, and OpenAI's semantic_vad turn detection of live sessions."""
import importlib.util
import json
import subprocess
import sys
import wave

import numpy as np
import onnxruntime
import pytest

from conftest import AUDIO, BINARY, REPO, SHARED, base_env

TURN_MODEL = REPO / "models" / "smart-turn-v3.2-cpu.onnx"
SENTENCES = [("Can you tell me the weather for", "Can you tell me the weather for tomorrow in Paris?"),
             ("I think that we should", "I think that we should leave now."),
             ("Turn off the lights in the", "Turn off the lights in the kitchen.")]


@pytest.fixture(scope="module")
def pipecat_features(tmp_path_factory):
    """Pipecat's own feature code (the numpy port of Hugging Face's WhisperFeatureExtractor that
    its smart-turn analyzer feeds the model), loaded from the pipecat-ai wheel the model comes in."""
    directory = tmp_path_factory.mktemp("pipecat")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory),
                    "pipecat-ai==1.14.0"], check=True, timeout=600)
    import zipfile
    wheel = next(directory.glob("pipecat_ai-*.whl"))
    member = "pipecat/audio/turn/smart_turn/_whisper_features.py"
    with zipfile.ZipFile(wheel) as z:
        (directory / "features.py").write_bytes(z.read(member))
    spec = importlib.util.spec_from_file_location("pipecat_features", directory / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def write_wav(path, x):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())


def last_8_seconds(x):
    n = 8 * 16000
    return x[-n:] if len(x) > n else np.pad(x, (n - len(x), 0))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    directory = tmp_path_factory.mktemp("turn-clips")
    paths = []
    for i, voice in enumerate(["slt", "rms", "awb", "kal16"]):
        for partial, whole in SENTENCES:
            for kind, text in (("partial", partial), ("whole", whole)):
                path = directory / f"{voice}-{kind}-{len(paths)}.wav"
                subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
                # flite's 16 kHz voices; kal16 too. Resampled by ffmpeg if a voice is not.
                paths.append(path)
    rng = np.random.default_rng(3)
    write_wav(directory / "silence.wav", np.zeros(16000, np.float32))
    write_wav(directory / "noise.wav", rng.normal(scale=0.05, size=3 * 16000).astype(np.float32))
    paths += [directory / "silence.wav", directory / "noise.wav", AUDIO / "jfk.wav",
              AUDIO / "seed-audio.wav", SHARED / "whisper" / "audio" / "words" / "long_mix.wav"]
    return paths


def test_smart_turn_equals_onnxruntime(clips, pipecat_features):
    """Same input features (Pipecat's), and a probability within the stated tolerance of
    onnxruntime's reference execution of the graph (the QDQ model in float, as ONNX defines it).
    onnxruntime's default (integer kernels) execution is reported beside it: it differs from its
    own reference by more than we do, because the model's 8-bit activation grids turn small float
    differences into whole steps."""
    assert TURN_MODEL.exists(), "scripts/test.sh pulls it: speech-recognition-api models pull smart-turn-v3.2"
    out = subprocess.run([str(BINARY), "turn", "--features", "--model", str(TURN_MODEL), *map(str, clips)],
                         capture_output=True, text=True, env=base_env(), timeout=600)
    assert out.returncode == 0, out.stderr
    ours = [json.loads(line) for line in out.stdout.splitlines()]
    assert [o["file"] for o in ours] == [str(c) for c in clips]
    reference_options = onnxruntime.SessionOptions()
    reference_options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = onnxruntime.InferenceSession(str(TURN_MODEL), sess_options=reference_options)
    optimized = onnxruntime.InferenceSession(str(TURN_MODEL))
    ours_vs_reference, optimized_vs_reference = [], []
    for clip, o in zip(clips, ours):
        features = pipecat_features(last_8_seconds(read_wav(clip)), do_normalize=True)
        assert np.abs(np.array(o["features"], np.float32).reshape(80, 800) - features).max() < 1e-4, clip
        p_reference = reference.run(None, {"input_features": features[None]})[0].item()
        p_optimized = optimized.run(None, {"input_features": features[None]})[0].item()
        ours_vs_reference.append(abs(o["probability"] - p_reference))
        optimized_vs_reference.append(abs(p_optimized - p_reference))
        assert ours_vs_reference[-1] <= 0.15, (clip, o["probability"], p_reference)
        if abs(p_reference - 0.5) > 0.1:  # a clear decision is the same decision
            assert (o["probability"] > 0.5) == (p_reference > 0.5), (clip, o["probability"], p_reference)
    assert np.mean(ours_vs_reference) <= 0.05, ours_vs_reference
    print(f"mean |ours - reference| {np.mean(ours_vs_reference):.3f} (max {max(ours_vs_reference):.3f}); "
          f"onnxruntime optimized vs reference {np.mean(optimized_vs_reference):.3f} "
          f"(max {max(optimized_vs_reference):.3f})")


def test_hostile_turn_models_are_refused(tmp_path):
    """Files that are not smart-turn models are refused with a message, never a crash."""
    cases = {"empty.onnx": b"", "text.onnx": b"not a model at all",
             "truncated.onnx": TURN_MODEL.read_bytes()[:100_000]}
    audio = AUDIO / "jfk.wav"
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        r = subprocess.run([str(BINARY), "turn", "--model", str(path), str(audio)], capture_output=True,
                           text=True, env=base_env(), timeout=120)
        assert r.returncode == 1 and "error:" in r.stderr, (name, r.returncode, r.stderr)
