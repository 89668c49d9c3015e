// libFuzzer harness: the PyTorch checkpoint reader (engine/torch) on hostile files: the zip
// directory, the pickle's opcodes, memo and stack, the persistent storage ids, tensor sizes,
// strides and offsets against the storages present. Property: no crash, no huge allocation, no
// hang, no leak: every problem is an sra::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/errors.h"
#include "engine/torch/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    sra::torch::TorchCheckpoint checkpoint(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const auto& [name, tensor] : checkpoint.tensors()) {
      std::size_t count = 1;
      for (auto d : tensor.shape) count *= static_cast<std::size_t>(d);
      if (count != tensor.values.size()) __builtin_trap();  // shape and values must agree
    }
  } catch (const sra::Error&) {
  }
  return 0;
}
