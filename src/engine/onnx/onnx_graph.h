// OnnxGraph: a small interpreter of ONNX models, enough for the compact networks the product runs
// natively (no ONNX runtime): the operators of Whisper-encoder classifiers such as smart-turn,
// including the QuantizeLinear/DequantizeLinear pairs of statically quantized ("QDQ") models,
// which it computes as ONNX defines them (activations rounded to their 8-bit grid, half to even,
// and back; weights dequantized once at load).
//
// Operators: Add, Sub, Mul, Div, Erf, Tanh, Sigmoid, Relu, Sqrt, Pow (numpy broadcasting), MatMul,
// Gemm, Conv (1-D, groups 1), LayerNormalization, Softmax, ReduceSum, ReduceMean,
// Transpose, Reshape, Shape, Gather, Slice, Concat, Unsqueeze, Squeeze, Cast, Constant,
// QuantizeLinear, DequantizeLinear. A model using any other operator is refused at load, naming
// it. Every shape is checked (at most 2^26 elements per tensor) so that a hostile file cannot make
// the interpreter read out of bounds or allocate without bound.
//
// Immutable after loading; run() may be called from several threads at once (each call has its
// own tensors).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sra::onnx {

enum class DType { f32, i64, i32, i8, u8 };

// A tensor: floats in `f` (f32) or integers in `i` (every integer type), row-major.
struct Tensor {
  DType type = DType::f32;
  std::vector<std::int64_t> shape;
  std::vector<float> f;
  std::vector<std::int64_t> i;

  std::size_t count() const;  // elements, from the shape
};

class OnnxGraph {
 public:
  // Reads an ONNX model file. Throws sra::Error(config) naming the file and what is wrong (not
  // ONNX, an operator not supported, a malformed tensor).
  explicit OnnxGraph(const std::filesystem::path& path);

  // Runs the graph on `inputs` (by the graph's input names) and returns its outputs by name.
  // Throws sra::Error(invalid_request) for inputs of the wrong shape or type.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs) const;

  const std::vector<std::string>& input_names() const { return inputs_; }
  const std::vector<std::string>& output_names() const { return outputs_; }

  // An attribute's value: ints, floats and strings, each a list (one item for a scalar), and a
  // tensor.
  struct Attribute {
    std::vector<std::int64_t> ints;
    std::vector<float> floats;
    std::string text;
    Tensor tensor;
    bool has_tensor = false;
  };
  struct Node {
    std::string op;
    std::vector<std::string> inputs;  // "" for an omitted optional input
    std::vector<std::string> outputs;
    std::map<std::string, Attribute> attributes;
  };

 private:
  // Reads path_ into the members below.
  void load();
  // QuantizeLinear -> DequantizeLinear pairs with one per-tensor scale become one node.
  void fuse_quantize_pairs();

  std::filesystem::path path_;
  std::vector<Node> nodes_;                     // in the graph's (topological) order
  std::map<std::string, Tensor> initializers_;  // weights, dequantized where the graph does it
  std::vector<std::string> inputs_, outputs_;
};

}  // namespace sra::onnx
