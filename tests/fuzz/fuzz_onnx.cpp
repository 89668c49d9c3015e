// libFuzzer harness: the ONNX interpreter (engine/onnx) on hostile model files: the protobuf
// reader, the tensors' shapes and data, the attributes, the operators and their checks. A file
// that loads is run on a small input of each shape the graph may take. Property: no crash, no
// huge allocation, no hang: every problem is an sra::Error. The input is written to /dev/shm.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/errors.h"
#include "engine/onnx/onnx_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/dev/shm/sra-fuzz-onnx-" + std::to_string(::getpid()) + ".onnx";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    sra::onnx::OnnxGraph graph(path);
    for (const auto& shape :
         {std::vector<std::int64_t>{1, 2, 8}, std::vector<std::int64_t>{2, 8}}) {
      std::map<std::string, sra::onnx::Tensor> inputs;
      for (const auto& name : graph.input_names()) {
        sra::onnx::Tensor t;
        t.shape = shape;
        t.f.assign(t.count(), 0.25f);
        inputs[name] = t;
      }
      try {
        graph.run(inputs);
      } catch (const sra::Error&) {
      }
    }
  } catch (const sra::Error&) {
  }
  return 0;
}
