"""Makes tests/integration/data/turbo_shape.openai.json: OpenAI's own transcribe() (openai-whisper
20250625, PyTorch, float32 on the CPU) on a random-weight model shaped as large-v3-turbo is (128
mels, the 100-language vocabulary of 51,866 tokens, many encoder layers and few decoder layers),
written by random_whisper.write_random_model with a fixed seed. Run by hand, where torch and
openai-whisper are installed (they are not test dependencies):

    python tests/integration/references/make_turbo_shape.py /path/to/shared
"""
import json
import pathlib
import sys

import torch
import whisper
from whisper.model import ModelDimensions, Whisper

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from random_whisper import random_tensors, write_random_model  # noqa: E402

SEED = 20261205
SHAPE = {"n_audio_layer": 6, "n_text_layer": 2}  # turbo: 32 encoder layers, 4 decoder layers
CLIPS = ["dev/dev_00000.wav", "dev/dev_00001.wav", "dev/dev_00002.wav", "long/long_00000.wav"]
OPTIONS = dict(language="en", temperature=0.0, condition_on_previous_text=False,
               word_timestamps=True, fp16=False)


def main(shared):
    shared = pathlib.Path(shared)
    source = shared / "whisper" / "models" / "ggml-random-v3-small-f32.bin"
    path = pathlib.Path("/tmp/ggml-random-turbo-shape-f32.bin")
    dims = write_random_model(path, source, SEED, **SHAPE)
    model = Whisper(ModelDimensions(**dims))
    state = {k: torch.from_numpy(v) for k, v in random_tensors(dims, SEED).items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    torch.set_num_threads(2)
    results = []
    for clip in CLIPS:
        audio = whisper.load_audio(str(shared / "whisper" / "audio" / clip))
        r = whisper.transcribe(model, audio, **OPTIONS)
        results.append({
            "file": clip,
            "text": r["text"],
            "segments": [{k: s[k] for k in ("seek", "start", "end", "text", "tokens", "avg_logprob",
                                            "compression_ratio", "no_speech_prob")} |
                         {"words": [{k: w[k] for k in ("word", "start", "end", "probability")}
                                    for w in s.get("words", [])]}
                         for s in r["segments"]],
        })
        print(clip, repr(r["text"][:80]), len(r["segments"]), "segments", file=sys.stderr)
    out = HERE.parent / "data" / "turbo_shape.openai.json"
    out.write_text(json.dumps({
        "made_by": f"openai-whisper {whisper.__version__}, torch {torch.__version__}, float32, CPU",
        "seed": SEED, "dims": dims, "options": OPTIONS, "results": results}, indent=1,
        ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE.parents[3] / "shared")
