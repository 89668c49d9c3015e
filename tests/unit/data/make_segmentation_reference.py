"""Makes segmentation_*.npy: pyannote.audio's own segmentation-3.0 model (pyannote.audio 3.3.2,
torch, float32 CPU) on 10 s chunks of the shared real speech, the log-probabilities [589][7] that
tests/unit/engine/speaker_segmentation_test.cpp compares the native network with. Run by hand
where torch and pyannote.audio are installed (they are not test dependencies):

    python tests/unit/data/make_segmentation_reference.py SHARED_DIR CHECKPOINT
"""
import pathlib
import sys
import wave

import numpy as np
import torch
from pyannote.audio import Model

HERE = pathlib.Path(__file__).resolve().parent
# (name, file under SHARED_DIR, first second)
CHUNKS = [("jfk", "audio/jfk.wav", 0), ("long_mix_20s", "whisper/audio/words/long_mix.wav", 20)]


def samples(path, start):
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    chunk = data[start * 16000:start * 16000 + 160000]
    return np.pad(chunk, (0, 160000 - len(chunk)))


def main(shared, checkpoint):
    model = Model.from_pretrained(checkpoint)
    model.eval()
    for name, file, start in CHUNKS:
        x = samples(pathlib.Path(shared) / file, start)
        with torch.inference_mode():
            y = model(torch.from_numpy(x)[None, None, :])[0].numpy().astype(np.float32)
        np.save(HERE / f"segmentation_{name}.npy", y)
        print(name, y.shape, np.bincount(y.argmax(1), minlength=7), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
