// WhisperModelFile: the contents of one whisper.cpp ggml model file (ggml-tiny.en.bin ...
// ggml-large-v3-turbo.bin), validated and ready for the encoder and decoder.
//
// The file is memory-mapped read-only. Weight matrices (2-D tensors other than the positional
// embeddings) are used in place as the file stores them: f32, f16, or whisper.cpp's quantized
// q4_0, q4_1, q5_0, q5_1, q8_0 (the kernels read those types directly), so processes that load the
// same file share its pages and nothing is converted at load. Vectors, convolution kernels and
// positional embeddings are small and are widened to f32; the pages they, the header and the
// vocabulary were read from leave the process's memory after load. Every size read from the file
// is checked against the bytes that remain and against sane limits before anything is allocated: a
// wrong, truncated or hostile file is refused with sra::Error(config) saying what is wrong and
// where, never a crash or an unbounded allocation. Immutable after load(): safe to share between
// threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/whisper/weight_type.h"

namespace sra::whisper {

struct HParams {
  int n_vocab = 0;        // tokens in the vocabulary, special tokens included
  int n_audio_ctx = 0;    // encoder positions (1500 for 30 s)
  int n_audio_state = 0;  // encoder width
  int n_audio_head = 0;   // encoder attention heads
  int n_audio_layer = 0;  // encoder blocks
  int n_text_ctx = 0;     // decoder positions (448)
  int n_text_state = 0;   // decoder width
  int n_text_head = 0;    // decoder attention heads
  int n_text_layer = 0;   // decoder blocks
  int n_mels = 0;         // mel bins of the input (80, or 128 for large-v3)
  int ftype = 0;          // 0: f32, 1: f16, else whisper.cpp's quantized 1000 * version + type
};

struct Int8Matrix;  // int8_gemm.h
struct Bf16Matrix;  // bf16_gemm.h

// What the kernels derive from a weight matrix on first use: built once, under the flag, by the
// first thread that needs it, then shared read-only (kernels.cpp).
struct DerivedWeights {
  // The matrix is read from the file's mapping: once its int8 or bf16 form is made, its pages
  // may be dropped from memory (they come back from the file if read again).
  bool mapped = false;
  std::once_flag int8_once;
  std::shared_ptr<const Int8Matrix> int8;  // the rows quantized for WHISPER_COMPUTE=int8
  std::once_flag bf16_once;
  std::shared_ptr<const Bf16Matrix> bf16;  // the rows rounded for WHISPER_COMPUTE=bf16
};

// A weight tensor, row-major in PyTorch's order of dimensions. A matrix [rows, cols] is `rows`
// rows of `cols` values, each row_bytes() long at `raw`.
struct Tensor {
  WeightType type = WeightType::f32;  // how `raw` stores the values
  const void* raw = nullptr;          // the values as stored (mapped from the file, or owned)
  const float* data = nullptr;        // the values as float32 when type is f32, else null
  std::vector<std::int64_t> shape;
  std::shared_ptr<DerivedWeights> derived;  // weight matrices only (null for the other tensors)
  std::size_t size() const {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
  std::size_t rows() const { return shape.empty() ? 0 : static_cast<std::size_t>(shape[0]); }
  std::size_t cols() const { return rows() ? size() / rows() : 0; }
  std::size_t row_bytes() const { return whisper::row_bytes(type, cols()); }
  const void* row(std::size_t r) const {
    return static_cast<const unsigned char*>(raw) + r * row_bytes();
  }
};

class ModelFile {
 public:
  // Throws sra::Error(config) naming the file and the problem.
  static std::shared_ptr<const ModelFile> load(const std::filesystem::path& path);
  ~ModelFile();

  const HParams& hparams() const { return hparams_; }
  // n_mels x n_fft_bins, row-major.
  const std::vector<float>& mel_filters() const { return mel_filters_; }
  int n_fft_bins() const { return n_fft_bins_; }
  // The bytes of each ordinary token, indexed by id.
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  // The tensor `name` with exactly `shape`; throws sra::Error(config) if missing or misshapen.
  const Tensor& tensor(const std::string& name, const std::vector<std::int64_t>& shape) const;
  bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
  // Every tensor, in the file's order, as stored (for converters and inspection).
  const std::vector<std::string>& tensor_names() const { return order_; }
  const Tensor& tensor_any_shape(const std::string& name) const {
    return tensors_.find(name)->second;
  }
  const std::filesystem::path& path() const { return path_; }
  // The file's bytes as mapped (for inspection): after load(), only the pages that hold tensors
  // used in place are read again; the rest were dropped once copied.
  const unsigned char* mapping() const { return map_; }
  std::size_t mapping_size() const { return map_size_; }
  // The storage type of most weight matrices ("f16", "q8_0", ...).
  std::string_view weight_type() const;
  // Bytes of weights mapped from the file and bytes converted into memory of our own.
  std::size_t mapped_bytes() const { return mapped_bytes_; }
  std::size_t owned_bytes() const { return owned_bytes_; }

 private:
  ModelFile() = default;
  void parse();
  // Drops the mapped pages parse() copied from and no tensor reads in place.
  void drop_copied_pages();

  std::filesystem::path path_;
  const unsigned char* map_ = nullptr;
  std::size_t map_size_ = 0;
  HParams hparams_;
  std::vector<float> mel_filters_;
  int n_fft_bins_ = 0;
  std::vector<std::string> vocabulary_;
  std::map<std::string, Tensor, std::less<>> tensors_;
  std::vector<std::string> order_;
  std::vector<std::unique_ptr<float[]>> owned_;
  // The mapped bytes tensors read in place, in file order (parse() to drop_copied_pages()).
  std::vector<std::pair<const unsigned char*, const unsigned char*>> in_place_;
  std::map<int, int> type_counts_;  // weight matrices per storage type id
  std::size_t mapped_bytes_ = 0;
  std::size_t owned_bytes_ = 0;
};

}  // namespace sra::whisper
