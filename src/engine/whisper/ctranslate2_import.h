// Importing a Whisper model published in CTranslate2's format (faster-whisper's model.bin with
// its vocabulary.txt) as a whisper.cpp ggml file, so that the engine has one file format.
//
// CTranslate2 fuses the attention projections (q|k|v, and k|v for cross-attention); they are
// split back into OpenAI's tensors. Mel filters, which CTranslate2 files do not carry, are
// computed as librosa computes them (Slaney scale and normalisation), which is what OpenAI's
// mel_filters.npz holds. The vocabulary's GPT-2 byte-to-unicode strings become raw token bytes.
// Only float16 and float32 CTranslate2 files are read. Errors are sra::Error(config).
#pragma once

#include <filesystem>
#include <vector>

namespace sra::whisper {

// Writes `output` (f16 ggml, as whisper.cpp lays out f16 files) from CTranslate2's `model_bin`
// and `vocabulary_txt`.
void import_ctranslate2(const std::filesystem::path& model_bin,
                        const std::filesystem::path& vocabulary_txt,
                        const std::filesystem::path& output);

// librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels): n_mels x 201, row-major.
std::vector<float> slaney_mel_filters(int n_mels);

}  // namespace sra::whisper
