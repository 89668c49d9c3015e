// TorchCheckpoint: the tensors of a PyTorch checkpoint (a torch.save() zip file: `data.pkl` and
// one entry per storage under `data/`), read without Python so that networks published as
// PyTorch weights (pyannote's segmentation model, speaker-embedding models) run natively.
//
// `data.pkl` is read by a small unpickler that understands the opcodes torch.save() writes
// (protocols 2-5) and builds only plain values: dicts, lists, tuples, numbers, strings and
// tensors (torch._utils._rebuild_tensor_v2 / _rebuild_parameter over a persistent storage id).
// Any other global (a training library's class pickled into the checkpoint) becomes an opaque
// value: nothing is ever imported or called, so a hostile file can only be refused. Every count,
// size and stride is checked against the bytes present (at most 2^26 elements per tensor and
// 512 MiB per entry, 1 GiB of storages, a bounded stack, memo and nesting), so a malformed file is
// an error, never an out-of-bounds read or an unbounded allocation.
//
// Tensors of float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8 and bool
// storages are returned as float32 values in row-major order of their shape (strided views
// gathered). Immutable after loading; safe to share across threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sra::torch {

struct Tensor {
  std::vector<std::int64_t> shape;  // PyTorch's shape, outermost first
  std::vector<float> values;        // row-major

  std::size_t count() const { return values.size(); }
};

class TorchCheckpoint {
 public:
  // Reads `path`. Throws sra::Error(config) naming the file and the fault for anything that is
  // not a readable checkpoint.
  explicit TorchCheckpoint(const std::filesystem::path& path);
  // Reads a checkpoint held in memory (the fuzz harness); `name` is for messages.
  TorchCheckpoint(std::string_view zip_bytes, const std::string& name);

  // Every tensor reachable through dicts from the pickled object, by its dotted key path
  // ("state_dict.lstm.weight_ih_l0"; a checkpoint that is a state dict has plain names).
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

  // The tensor named `name`, or, failing that, `prefix` + "." + name for the prefixes
  // checkpoints put state dicts under ("state_dict", "model"), checked against `shape` (empty:
  // any). Throws sra::Error(config) naming the file and the tensor when it is absent or shaped
  // otherwise.
  const Tensor& get(const std::string& name, const std::vector<std::int64_t>& shape = {}) const;

 private:
  void load(std::string_view zip_bytes);

  std::string name_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace sra::torch
