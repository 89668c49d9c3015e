// Writing whisper.cpp ggml model files: the f16 converter and tests that need small or broken
// model files use it. Layout as FORMAT.md and whisper.cpp's converter: header, mel filters,
// vocabulary, then tensors with ggml's innermost-first dimensions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/whisper/model_file.h"

namespace sra::whisper {

struct TensorToWrite {
  std::string name;
  std::vector<std::int64_t> shape;  // PyTorch order
  std::vector<float> values;
  bool as_f16 = false;  // store as IEEE half
};

// Writes a model file; `hparams.ftype` is written as given. Throws std::runtime_error on I/O
// failure.
void write_model_file(const std::filesystem::path& path, const HParams& hparams,
                      const std::vector<float>& mel_filters,
                      const std::vector<std::string>& vocabulary,
                      const std::vector<TensorToWrite>& tensors);

// Converts an f32 model file to f16 laid out as whisper.cpp's files are: matrices and
// convolution kernels f16; 1-D tensors, conv biases and both positional embeddings stay f32.
void convert_to_f16(const std::filesystem::path& in, const std::filesystem::path& out);

std::uint16_t float_to_half(float f);

}  // namespace sra::whisper
