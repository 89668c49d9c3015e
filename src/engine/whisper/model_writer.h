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
  bool as_f16 = false;                    // store as IEEE half
  WeightType quantize = WeightType::f32;  // q8_0 or q4_0: store block-quantized (over as_f16)
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

// Converts an f32 or f16 model file to q8_0 or q4_0 as whisper.cpp's `whisper-quantize` lays
// such files out: every 2-D weight matrix quantized in blocks of 32 (scale = max |x| / 127 for
// q8_0; for q4_0 the value of largest magnitude maps to -8), everything else kept as stored.
// ftype becomes 2000 + whisper.cpp's ftype number. Throws std::runtime_error.
void convert_quantized(const std::filesystem::path& in, const std::filesystem::path& out,
                       WeightType type);

std::uint16_t float_to_half(float f);
// One row of `values` (a multiple of 32) quantized as q8_0 or q4_0, appended to `out`.
void quantize_row(WeightType type, const float* values, std::size_t count, std::string& out);

}  // namespace sra::whisper
