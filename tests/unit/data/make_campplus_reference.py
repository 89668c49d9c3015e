"""Makes campplus_*.npy: 3D-Speaker's own CAM++ (speakerlab.models.campplus.DTDNN.CAMPPlus with
campplus_cn_en_common.pt, torch float32 CPU) on its own features (speakerlab's FBank: torchaudio's
Kaldi fbank, 80 bins, mean-normalised) for turns of the shared real speech: the embeddings that
tests/unit/engine/speaker_embedding_test.cpp compares the native network with. Run by hand where
torch, torchaudio and a 3D-Speaker checkout are (they are not test dependencies):

    python tests/unit/data/make_campplus_reference.py SHARED_DIR CHECKPOINT 3D_SPEAKER_DIR
"""
import pathlib
import sys
import wave

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
# (name, file under SHARED_DIR, first second, seconds)
TURNS = [("jfk_0_5", "audio/jfk.wav", 0, 5), ("jfk_5_11", "audio/jfk.wav", 5, 6),
         ("seed_0_3", "audio/seed-audio.wav", 0, 3), ("mix_20_23", "whisper/audio/words/long_mix.wav", 20, 3)]


def samples(path, start, seconds):
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return data[start * 16000:(start + seconds) * 16000]


def main(shared, checkpoint, speakerlab_root):
    sys.path.insert(0, speakerlab_root)
    from speakerlab.models.campplus.DTDNN import CAMPPlus
    from speakerlab.process.processor import FBank
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()
    fbank = FBank(80, sample_rate=16000, mean_nor=True)
    for name, file, start, seconds in TURNS:
        wav = torch.from_numpy(samples(pathlib.Path(shared) / file, start, seconds))
        with torch.inference_mode():
            features = fbank(wav).unsqueeze(0)
            embedding = model(features)[0].numpy().astype(np.float32)
        np.save(HERE / f"campplus_{name}.npy", embedding)
        print(name, embedding.shape, float(np.linalg.norm(embedding)), file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
