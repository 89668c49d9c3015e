"""Random-weight Whisper models of any shape, written as whisper.cpp's ggml f32 files.

The mel filters and the vocabulary come from one of the shared random models (so a 128-mel,
51,866-token file takes large-v3's), the weights from a seeded NumPy generator, scaled as the
shared random models were so that the output depends on the audio: the token embedding by
3/sqrt(width), the decoder's positional embedding N(0, 1), cross-attention queries and keys x 5,
its output x 8. The same seed and shape always give the same bytes, so a reference made once with
OpenAI's code (tests/integration/references/make_turbo_shape.py) stays valid for the file CI
makes again."""
import struct

import numpy as np


def _read_prefix(source):
    """(hyper-parameters, the bytes of the mel filters and vocabulary) of a ggml file."""
    data = open(source, "rb").read()
    magic, = struct.unpack_from("<i", data, 0)
    assert magic == 0x67676D6C, source
    hparams = list(struct.unpack_from("<11i", data, 4))
    offset = 48
    n_mel, n_fft = struct.unpack_from("<2i", data, offset)
    offset += 8 + 4 * n_mel * n_fft
    count, = struct.unpack_from("<i", data, offset)
    offset += 4
    for _ in range(count):
        length, = struct.unpack_from("<i", data, offset)
        offset += 4 + length
    return hparams, data[48:offset]


def sinusoids(length, channels):
    """whisper.model.sinusoids: the encoder's fixed positional embedding."""
    increment = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def random_tensors(dims, seed):
    """The state dict (PyTorch names and shapes) of a random model with `dims`."""
    rng = np.random.default_rng(seed)
    tensors = {}

    def uniform(shape, fan_in, scale=1.0):
        bound = 1.0 / np.sqrt(fan_in)
        return (rng.uniform(-bound, bound, size=shape) * scale).astype(np.float32)

    def linear(prefix, n_out, n_in, bias=True, scale=1.0):
        tensors[prefix + ".weight"] = uniform((n_out, n_in), n_in, scale)
        if bias:
            tensors[prefix + ".bias"] = uniform((n_out,), n_in)

    def norm(prefix, n):
        tensors[prefix + ".weight"] = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
        tensors[prefix + ".bias"] = (0.1 * rng.standard_normal(n)).astype(np.float32)

    def attention(prefix, n, q_scale=1.0, out_scale=1.0):
        linear(prefix + ".query", n, n, scale=q_scale)
        linear(prefix + ".key", n, n, bias=False, scale=q_scale)
        linear(prefix + ".value", n, n)
        linear(prefix + ".out", n, n, scale=out_scale)

    def block(prefix, n, cross):
        attention(prefix + ".attn", n)
        norm(prefix + ".attn_ln", n)
        if cross:
            attention(prefix + ".cross_attn", n, q_scale=5.0, out_scale=8.0)
            norm(prefix + ".cross_attn_ln", n)
        linear(prefix + ".mlp.0", 4 * n, n)
        linear(prefix + ".mlp.2", n, 4 * n)
        norm(prefix + ".mlp_ln", n)

    a, t = dims["n_audio_state"], dims["n_text_state"]
    tensors["encoder.conv1.weight"] = uniform((a, dims["n_mels"], 3), 3 * dims["n_mels"])
    tensors["encoder.conv1.bias"] = uniform((a,), 3 * dims["n_mels"])
    tensors["encoder.conv2.weight"] = uniform((a, a, 3), 3 * a)
    tensors["encoder.conv2.bias"] = uniform((a,), 3 * a)
    tensors["encoder.positional_embedding"] = sinusoids(dims["n_audio_ctx"], a)
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", a, cross=False)
    norm("encoder.ln_post", a)
    tensors["decoder.token_embedding.weight"] = (
        rng.standard_normal((dims["n_vocab"], t)) * 3 / np.sqrt(t)).astype(np.float32)
    tensors["decoder.positional_embedding"] = rng.standard_normal(
        (dims["n_text_ctx"], t)).astype(np.float32)
    for i in range(dims["n_text_layer"]):
        block(f"decoder.blocks.{i}", t, cross=True)
    norm("decoder.ln", t)
    return tensors


NAMES = ["n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
         "n_text_state", "n_text_head", "n_text_layer", "n_mels"]


def write_random_model(path, source, seed, **overrides):
    """Writes a random f32 model shaped as `source` (a ggml file) with `overrides` of its
    dimensions (NAMES; the vocabulary and mel count must stay); returns the dimensions."""
    hparams, prefix = _read_prefix(source)
    dims = dict(zip(NAMES, hparams[:10]))
    assert not set(overrides) & {"n_vocab", "n_mels"}, "the vocabulary and mels come from source"
    dims.update(overrides)
    tensors = random_tensors(dims, seed)
    with open(path, "wb") as out:
        out.write(struct.pack("<i", 0x67676D6C))
        out.write(struct.pack("<11i", *[dims[n] for n in NAMES], 0))
        out.write(prefix)
        for name, value in tensors.items():
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                value = value.reshape(-1, 1)  # as whisper.cpp's converter stores them
            shape = list(reversed(value.shape))
            encoded = name.encode()
            out.write(struct.pack("<3i", len(shape), len(encoded), 0))
            out.write(struct.pack(f"<{len(shape)}i", *shape))
            out.write(encoded)
            out.write(np.ascontiguousarray(value, dtype="<f4").tobytes())
    return dims
