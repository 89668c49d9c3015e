// The ONNX interpreter on a small QDQ graph built with the onnx package (the fuzzer's seed:
// tests/fuzz/corpus/fuzz_onnx/small.onnx) and on files that are not models.
#include "engine/onnx/onnx_graph.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "test_paths.h"

namespace sra::onnx {
namespace {

std::filesystem::path small_model() {
  return std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / "fuzz" / "corpus" / "fuzz_onnx" /
         "small.onnx";
}

// DequantizeLinear (per axis), QuantizeLinear + DequantizeLinear, MatMul, LayerNormalization,
// Erf, Softmax, Shape, Reshape, Transpose, ReduceSum: every row of the softmax sums to 1, so the
// graph gives the number of rows, whatever the input; onnxruntime gives 2 for 2 rows.
TEST(OnnxGraph, RunsASmallQuantizedGraph) {
  OnnxGraph graph(small_model());
  ASSERT_EQ(graph.input_names(), std::vector<std::string>{"x"});
  ASSERT_EQ(graph.output_names(), std::vector<std::string>{"y"});
  for (std::int64_t rows : {1, 2, 5}) {
    Tensor x;
    x.shape = {rows, 8};
    x.f.assign(static_cast<std::size_t>(rows * 8), 0.25f);
    for (std::size_t i = 0; i < x.f.size(); ++i) x.f[i] += 0.01f * static_cast<float>(i % 7);
    auto out = graph.run({{"x", x}});
    ASSERT_EQ(out.at("y").f.size(), 1u);
    EXPECT_NEAR(out.at("y").f[0], static_cast<float>(rows), 1e-5);
  }
  Tensor wrong;
  wrong.shape = {2, 3};
  wrong.f.assign(6, 0.0f);
  EXPECT_THROW(graph.run({{"x", wrong}}), Error);  // MatMul's inner dimensions differ
  EXPECT_THROW(graph.run({}), Error);              // the input is missing
}

TEST(OnnxGraph, FilesThatAreNotModelsAreRefusedByName) {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir.path() / name, std::ios::binary) << bytes;
    return dir.path() / name;
  };
  std::string model = test::read_file(small_model());
  for (const auto& path :
       {write("empty.onnx", ""), write("text.onnx", "not a model"),
        write("cut.onnx", model.substr(0, model.size() / 2)), dir.path() / "missing.onnx"}) {
    try {
      OnnxGraph graph(path);
      FAIL() << path << " loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::config) << path;
      EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace sra::onnx
