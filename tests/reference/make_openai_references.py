"""Writes tests/reference/openai/base.decoding.jsonl: OpenAI's own whisper.transcribe() output for
the real base model (models/ggml-base.bin) with the options whose references ../shared/whisper
lacks: translation of non-English speech, beam search with patience, carry_initial_prompt and
hallucination_silence_threshold (on a clip where it changes the result). Run by hand, not by CI
(it needs PyTorch); its output is committed and tests/integration/test_openai_references.py
checks the server against it.

Setup (Debian 12): apt-get install python3-torch ffmpeg; then
  /usr/bin/python3 -m venv --system-site-packages /tmp/owenv
  /tmp/owenv/bin/pip install --no-deps openai-whisper==20250625 && /tmp/owenv/bin/pip install tiktoken numba more-itertools
  /tmp/owenv/bin/python tests/reference/make_openai_references.py

The ggml file is read into OpenAI's own Whisper module with load_state_dict(strict=True) (its
tensor names are PyTorch's; f16 values widen exactly to float32): the weights are the very ones
the server runs. The clips are committed next to the output (tests/reference/audio/) or come
from ../shared.
"""
import json
import pathlib
import struct
import subprocess
import sys

import numpy as np
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
OUT = REPO / "tests" / "reference" / "openai"
AUDIO = REPO / "tests" / "reference" / "audio"
GGML_TYPES = {0: np.float32, 1: np.float16}


def load_ggml(path):
    """OpenAI's Whisper module with the weights of a ggml f32/f16 file (FORMAT.md's layout)."""
    data = pathlib.Path(path).read_bytes()
    at = 0

    def ints(n):
        nonlocal at
        values = struct.unpack_from(f"<{n}i", data, at)
        at += 4 * n
        return values

    assert ints(1)[0] == 0x67676D6C, "not a ggml file"
    (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state,
     n_text_head, n_text_layer, n_mels, _ftype) = ints(11)
    n_mel, n_fft = ints(2)
    at += 4 * n_mel * n_fft
    (count,) = ints(1)
    for _ in range(count):
        (length,) = ints(1)
        at += length
    tensors = {}
    while at < len(data):
        n_dims, name_length, kind = ints(3)
        shape = ints(n_dims)[::-1]
        name = data[at:at + name_length].decode()
        at += name_length
        dtype = GGML_TYPES[kind]
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        tensors[name] = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=at).astype(np.float32)
        at += size
    dims = ModelDimensions(n_mels=n_mels, n_audio_ctx=n_audio_ctx, n_audio_state=n_audio_state,
                           n_audio_head=n_audio_head, n_audio_layer=n_audio_layer, n_vocab=n_vocab,
                           n_text_ctx=n_text_ctx, n_text_state=n_text_state, n_text_head=n_text_head,
                           n_text_layer=n_text_layer)
    model = Whisper(dims)
    state = model.state_dict()
    loaded = {name: torch.from_numpy(tensors[name].reshape(tuple(param.shape)).copy())
              for name, param in state.items()}
    model.load_state_dict(loaded, strict=True)
    model.set_alignment_heads(whisper._ALIGNMENT_HEADS["base"])
    return model.eval()


def espeak_clip(name, voice, text):
    """A committed clip of espeak-ng speech (made once; the file is what the references use)."""
    path = AUDIO / name
    if not path.exists():
        AUDIO.mkdir(parents=True, exist_ok=True)
        raw = subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text], check=True,
                             capture_output=True).stdout
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", "-", "-ar", "16000", "-ac", "1",
                        "-c:a", "pcm_s16le", str(path)], input=raw, check=True)
    return path


def repeated(name, source, times):
    """`source`'s samples `times` over, as a WAV file in a temporary folder (the tests make the
    same bytes: the clip is not committed)."""
    import wave
    with wave.open(str(source)) as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp()) / name
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(frames * times)
    return path


def rounded(result):
    """The result as the references store it: segments with their tokens and times."""
    keep = ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
            "compression_ratio", "no_speech_prob")
    segments = []
    for s in result["segments"]:
        seg = {k: s[k] for k in keep}
        if "words" in s:
            seg["words"] = [{k: w[k] for k in ("word", "start", "end", "probability")} for w in s["words"]]
        segments.append(seg)
    return {"text": result["text"], "language": result["language"], "segments": segments}


def main():
    torch.set_num_threads(2)
    model = load_ggml(REPO / "models" / "ggml-base.bin")
    jfk = REPO.parent / "shared" / "audio" / "jfk.wav"
    seed = REPO.parent / "shared" / "audio" / "seed-audio.wav"
    long_mix = SHARED / "whisper" / "audio" / "words" / "long_mix.wav"
    german = espeak_clip("german.wav", "de",
                         "Guten Morgen. Das Wetter ist heute schön, und wir gehen in den Park. "
                         "Am Nachmittag trinken wir Kaffee mit unseren Freunden.")
    french = espeak_clip("french.wav", "fr",
                         "Bonjour à tous. Le train part à huit heures du matin, "
                         "et nous arrivons à Paris avant midi.")
    # Speech across the 30 s window boundary, so that the last window does not end on a lone
    # timestamp: hallucination_silence_threshold then moves the next window (OpenAI's rule).
    seed_x3 = repeated("seed_x3.wav", seed, 3)
    prompt = "and so my fellow americans ask not what your country can do for you"
    base = dict(fp16=False, verbose=None)
    cases = [
        ("german.wav", german, dict(task="translate", temperature=0.0)),
        ("german.wav", german, dict(task="transcribe", temperature=0.0)),
        ("french.wav", french, dict(task="translate", temperature=0.0)),
        ("jfk.wav", jfk, dict(language="en", temperature=0.0, beam_size=5, patience=2.0)),
        ("seed-audio.wav", seed, dict(language="en", temperature=0.0, beam_size=5, patience=1.0)),
        ("long_mix.wav", long_mix, dict(language="en", temperature=0.0, beam_size=3, patience=1.5)),
        # Without conditioning on the previous text, only carry_initial_prompt gives the later
        # windows the prompt (its lower case, no punctuation style carries over).
        ("long_mix.wav", long_mix, dict(language="en", temperature=0.0, condition_on_previous_text=False,
                                        initial_prompt=prompt, carry_initial_prompt=True)),
        ("long_mix.wav", long_mix, dict(language="en", temperature=0.0, condition_on_previous_text=False,
                                        initial_prompt=prompt)),
        ("seed_x3.wav", seed_x3, dict(language="en", temperature=0.0, word_timestamps=True)),
        ("seed_x3.wav", seed_x3, dict(language="en", temperature=0.0, word_timestamps=True,
                                      hallucination_silence_threshold=2.0)),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, path, options in cases:
        result = whisper.transcribe(model, whisper.load_audio(str(path)), **options, **base)
        line = {"file": name, "options": options, **rounded(result)}
        lines.append(json.dumps(line, ensure_ascii=False))
        print(name, options, "->", result["text"][:100], file=sys.stderr)
    (OUT / "base.decoding.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
