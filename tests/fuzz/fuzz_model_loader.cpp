// libFuzzer harness: the ggml model loader on hostile files (sizes, shapes, counts, names and
// truncation chosen by the fuzzer). Property: no crash and no huge allocation: every problem is
// an sra::Error. The input is written to a file in /dev/shm (the loader maps files).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/errors.h"
#include "engine/whisper/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/dev/shm/sra-fuzz-model-" + std::to_string(::getpid()) + ".bin";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    auto file = sra::whisper::ModelFile::load(path);
    for (const auto& name : file->tensor_names()) (void)file->tensor_any_shape(name);
  } catch (const sra::Error&) {
  }
  return 0;
}
