#include "engine/vad/silero_vad.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/errors.h"
#include "engine/whisper/model_file.h"

namespace sra::vad {
namespace {

constexpr int kHidden = 128;
constexpr int kFft = 256, kHop = 128, kBins = kFft / 2 + 1;   // 129
constexpr int kPadded = kSileroContext + kSileroWindow + 64;  // reflect-padded input: 640
constexpr int kFrames = (kPadded - kFft) / kHop + 1;          // 4

// The bytes of a ggml Silero file, read with bounds checks.
class Reader {
 public:
  Reader(const std::filesystem::path& path) : path_(path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error("VAD model " + path.string() + " cannot be read");
    std::stringstream s;
    s << in.rdbuf();
    bytes_ = s.str();
  }
  bool done() const { return at_ == bytes_.size(); }
  std::int32_t i32() {
    std::int32_t v;
    take(&v, 4);
    return v;
  }
  std::string text(std::size_t n) {
    if (n > 256) fail("a name is too long");
    std::string s(n, '\0');
    take(s.data(), n);
    return s;
  }
  void take(void* out, std::size_t n) {
    if (bytes_.size() - at_ < n) fail("it ends early");
    std::memcpy(out, bytes_.data() + at_, n);
    at_ += n;
  }
  // The bytes not read yet (valid while the reader lives); the reader is then at its end.
  std::string_view rest() {
    std::string_view v = std::string_view(bytes_).substr(at_);
    at_ = bytes_.size();
    return v;
  }
  void rewind(std::size_t n) { at_ -= std::min(n, at_); }
  [[noreturn]] void fail(const std::string& why) const {
    throw config_error("VAD model " + path_.string() +
                       " is not a Silero file (ggml or ONNX): " + why);
  }

 private:
  std::filesystem::path path_;
  std::string bytes_;
  std::size_t at_ = 0;
};

struct RawTensor {
  std::vector<std::int64_t> shape;  // PyTorch's order
  std::vector<float> values;
};

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}

// The elements of a tensor of `shape`, checked dimension by dimension so that no product
// overflows: each dimension at most 2^20, at most 2^22 in all.
std::int64_t checked_count(const std::vector<std::int64_t>& shape, const Reader& r) {
  std::int64_t count = 1;
  for (auto d : shape) {
    if (d <= 0 || d > (1 << 20)) r.fail("bad tensor shape");
    count *= d;
    if (count > (1 << 22)) r.fail("tensor too large");
  }
  return count;
}

// The parameters the network takes, by their names in the official model (whisper.cpp's ggml
// file prefixes them with "_model."), and the short names used below.
const std::map<std::string, std::string>& parameter_names() {
  static const std::map<std::string, std::string> names = {
      {"stft.forward_basis_buffer", "stft"},
      {"encoder.0.reparam_conv.weight", "conv0.weight"},
      {"encoder.0.reparam_conv.bias", "conv0.bias"},
      {"encoder.1.reparam_conv.weight", "conv1.weight"},
      {"encoder.1.reparam_conv.bias", "conv1.bias"},
      {"encoder.2.reparam_conv.weight", "conv2.weight"},
      {"encoder.2.reparam_conv.bias", "conv2.bias"},
      {"encoder.3.reparam_conv.weight", "conv3.weight"},
      {"encoder.3.reparam_conv.bias", "conv3.bias"},
      {"decoder.rnn.weight_ih", "lstm.weight_ih"},
      {"decoder.rnn.weight_hh", "lstm.weight_hh"},
      {"decoder.rnn.bias_ih", "lstm.bias_ih"},
      {"decoder.rnn.bias_hh", "lstm.bias_hh"},
      {"decoder.decoder.2.weight", "out.weight"},
      {"decoder.decoder.2.bias", "out.bias"}};
  return names;
}

// whisper.cpp's ggml layout: a header of hyperparameters, then tensors (f16 convolutions).
std::map<std::string, RawTensor> read_ggml(Reader& r) {
  std::int32_t name_length = r.i32();
  if (name_length < 0) r.fail("bad model type");
  std::string type = r.text(static_cast<std::size_t>(name_length));
  if (type != "silero-16k") r.fail("model type '" + type + "', not silero-16k");
  r.i32(), r.i32(), r.i32();  // version
  if (r.i32() != kSileroWindow || r.i32() != kSileroContext) r.fail("not 512-sample windows");
  if (r.i32() != 4) r.fail("not 4 encoder layers");
  for (int i = 0; i < 4 * 3 + 4; ++i) r.i32();  // layer sizes and LSTM sizes: checked by shape
  std::map<std::string, RawTensor> tensors;
  while (!r.done()) {
    std::int32_t dims = r.i32(), length = r.i32(), type_id = r.i32();
    if (dims < 0 || dims > 4 || length <= 0 || (type_id != 0 && type_id != 1))
      r.fail("bad tensor header");
    RawTensor t;
    for (int d = 0; d < dims; ++d) t.shape.insert(t.shape.begin(), r.i32());  // PyTorch's order
    const std::int64_t count = checked_count(t.shape, r);
    std::string name = r.text(static_cast<std::size_t>(length));
    t.values.resize(static_cast<std::size_t>(count));
    if (type_id == 0) {
      r.take(t.values.data(), t.values.size() * 4);
    } else {
      std::vector<std::uint16_t> half(t.values.size());
      r.take(half.data(), half.size() * 2);
      for (std::size_t i = 0; i < half.size(); ++i) t.values[i] = whisper::half_to_float(half[i]);
    }
    constexpr std::string_view kPrefix = "_model.";
    if (!std::string_view(name).starts_with(kPrefix)) continue;
    const auto& names = parameter_names();
    if (auto it = names.find(name.substr(kPrefix.size())); it != names.end())
      tensors[it->second] = std::move(t);
  }
  return tensors;
}

// A minimal reader of protobuf's wire format, enough to walk an ONNX model to its constants.
class Protobuf {
 public:
  Protobuf(std::string_view bytes, const Reader& owner) : bytes_(bytes), owner_(owner) {}
  bool done() const { return at_ >= bytes_.size(); }
  // The next field: its number and wire type; `value` holds a varint, `payload` a length-delimited
  // body (other wire types are skipped).
  bool next(std::uint32_t& field, std::uint32_t& wire, std::uint64_t& value,
            std::string_view& payload) {
    if (done()) return false;
    std::uint64_t key = varint();
    field = static_cast<std::uint32_t>(key >> 3);
    wire = static_cast<std::uint32_t>(key & 7);
    switch (wire) {
      case 0:
        value = varint();
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        std::uint64_t n = varint();
        if (n > bytes_.size() - at_) owner_.fail("a protobuf field runs past its message");
        payload = bytes_.substr(at_, n);
        at_ += n;
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        owner_.fail("unsupported protobuf wire type");
    }
    return true;
  }

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) owner_.fail("a protobuf varint is cut off");
      auto b = static_cast<unsigned char>(bytes_[at_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    owner_.fail("a protobuf varint is too long");
  }

 private:
  void skip(std::size_t n) {
    if (n > bytes_.size() - at_) owner_.fail("a protobuf field is cut off");
    at_ += n;
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
  const Reader& owner_;
};

// An ONNX TensorProto of floats: its dims and values (raw_data or float_data).
RawTensor onnx_tensor(std::string_view bytes, const Reader& r) {
  Protobuf pb(bytes, r);
  RawTensor t;
  std::uint32_t field, wire;
  std::uint64_t value = 0;
  std::string_view payload;
  std::int64_t type = 0;
  std::string_view raw, floats;
  while (pb.next(field, wire, value, payload)) {
    if (field == 1 && wire == 0) t.shape.push_back(static_cast<std::int64_t>(value));
    if (field == 1 && wire == 2) {  // packed dims: a run of varints
      Protobuf dims(payload, r);
      while (!dims.done()) t.shape.push_back(static_cast<std::int64_t>(dims.varint()));
    }
    if (field == 2 && wire == 0) type = static_cast<std::int64_t>(value);
    if (field == 4 && wire == 2) floats = payload;
    if (field == 9 && wire == 2) raw = payload;
  }
  if (type != 1) return {};  // not FLOAT
  std::string_view data = raw.empty() ? floats : raw;
  const std::int64_t count = checked_count(t.shape, r);
  if (data.size() != static_cast<std::size_t>(count) * 4)
    r.fail("a tensor's data does not match its shape");
  t.values.resize(static_cast<std::size_t>(count));
  std::memcpy(t.values.data(), data.data(), data.size());
  return t;
}

// Collects the float tensors of every Constant node (and initializer) of an ONNX graph and its
// subgraphs, by output name.
void onnx_constants(std::string_view graph, const Reader& r, int depth,
                    std::map<std::string, RawTensor>& out) {
  if (depth > 8) r.fail("ONNX graphs nested too deeply");
  Protobuf pb(graph, r);
  std::uint32_t field, wire;
  std::uint64_t value = 0;
  std::string_view payload;
  while (pb.next(field, wire, value, payload)) {
    if (wire != 2) continue;
    if (field == 5) {  // initializer
      Protobuf t(payload, r);
      std::uint32_t f, w;
      std::uint64_t v;
      std::string_view p, name;
      while (t.next(f, w, v, p))
        if (f == 8 && w == 2) name = p;
      RawTensor tensor = onnx_tensor(payload, r);
      if (!tensor.values.empty()) out[std::string(name)] = std::move(tensor);
    }
    if (field != 1) continue;  // node
    Protobuf node(payload, r);
    std::uint32_t f, w;
    std::uint64_t v;
    std::string_view p, output, op;
    std::vector<std::string_view> attributes;
    while (node.next(f, w, v, p)) {
      if (f == 2 && w == 2 && output.empty()) output = p;
      if (f == 4 && w == 2) op = p;
      if (f == 5 && w == 2) attributes.push_back(p);
    }
    for (std::string_view a : attributes) {
      Protobuf attribute(a, r);
      std::string_view tensor, subgraph;
      while (attribute.next(f, w, v, p)) {
        if (f == 5 && w == 2) tensor = p;
        if (f == 6 && w == 2) subgraph = p;
      }
      if (op == "Constant" && !tensor.empty()) {
        RawTensor t = onnx_tensor(tensor, r);
        if (!t.values.empty()) out[std::string(output)] = std::move(t);
      }
      if (!subgraph.empty()) onnx_constants(subgraph, r, depth + 1, out);
    }
  }
}

// The official ONNX model of the silero-vad package (silero_vad.onnx): f32 weights, read from
// the constants of its 16 kHz branch (the one whose STFT basis is 258 x 256).
std::map<std::string, RawTensor> read_onnx(Reader& r) {
  Protobuf model(r.rest(), r);
  std::uint32_t field, wire;
  std::uint64_t value = 0;
  std::string_view payload;
  std::map<std::string, RawTensor> constants;
  while (model.next(field, wire, value, payload)) {
    if (field == 7 && wire == 2) onnx_constants(payload, r, 0, constants);
  }
  // Constants are named "<branch prefix>__<parameter>"; the branch of 16 kHz has the 256-point
  // STFT.
  std::string prefix;
  const std::string basis = "stft.forward_basis_buffer";
  for (const auto& [name, t] : constants) {
    if (name.size() >= basis.size() &&
        name.compare(name.size() - basis.size(), basis.size(), basis) == 0 &&
        t.values.size() == static_cast<std::size_t>(2 * kBins) * kFft) {
      prefix = name.substr(0, name.size() - basis.size());
    }
  }
  if (prefix.empty() && !constants.count(basis)) r.fail("no 16 kHz STFT basis in the ONNX model");
  std::map<std::string, RawTensor> tensors;
  for (const auto& [onnx_name, ours] : parameter_names()) {
    auto it = constants.find(prefix + onnx_name);
    if (it != constants.end()) tensors[ours] = std::move(it->second);
  }
  return tensors;
}

}  // namespace

SileroVad::SileroVad(const std::filesystem::path& path) {
  Reader r(path);
  std::uint64_t first;
  r.take(&first, 8);
  std::map<std::string, RawTensor> tensors;
  if (static_cast<std::uint32_t>(first) == 0x67676d6cu) {
    r.rewind(4);
    tensors = read_ggml(r);
  } else if ((first & 0xff) == 0x08) {  // protobuf: ModelProto.ir_version first
    r.rewind(8);
    tensors = read_onnx(r);
  } else {
    r.fail("neither a ggml file nor an ONNX model");
  }
  auto take = [&](const std::string& name, std::vector<std::int64_t> shape) {
    auto it = tensors.find(name);
    if (it == tensors.end()) r.fail("no tensor " + name);
    std::int64_t count = 1;
    for (auto d : shape) count *= d;
    if (static_cast<std::int64_t>(it->second.values.size()) != count)
      r.fail("tensor " + name + " has the wrong size");
    return std::move(it->second.values);
  };
  basis_ = take("stft", {2 * kBins, 1, kFft});
  const int strides[] = {1, 2, 2, 1};
  int in = kBins;
  for (int i = 0; i < 4; ++i) {
    const std::string p = "conv" + std::to_string(i) + ".";
    auto shape =
        tensors.count(p + "weight") ? tensors[p + "weight"].shape : std::vector<std::int64_t>{};
    if (shape.size() != 3 || shape[1] != in || shape[2] != 3 || shape[0] <= 0 || shape[0] > 1024)
      r.fail("unexpected encoder layer " + std::to_string(i));
    Conv c;
    c.in = in;
    c.out = static_cast<int>(shape[0]);
    c.stride = strides[i];
    c.weight = take(p + "weight", {c.out, c.in, 3});
    c.bias = take(p + "bias", {c.out});
    encoder_.push_back(std::move(c));
    in = encoder_.back().out;
  }
  if (in != kHidden) r.fail("the encoder does not end in 128 channels");
  w_ih_ = take("lstm.weight_ih", {4 * kHidden, kHidden});
  w_hh_ = take("lstm.weight_hh", {4 * kHidden, kHidden});
  b_ih_ = take("lstm.bias_ih", {4 * kHidden});
  b_hh_ = take("lstm.bias_hh", {4 * kHidden});
  out_w_ = take("out.weight", {kHidden});
  out_b_ = take("out.bias", {1})[0];
}

float SileroVad::process(const float* window, SileroStream& s) const {
  // The previous window's tail, the new samples, and 64 reflected samples on the right.
  float x[kPadded];
  std::memcpy(x, s.context.data(), sizeof(float) * kSileroContext);
  std::memcpy(x + kSileroContext, window, sizeof(float) * kSileroWindow);
  constexpr int n = kSileroContext + kSileroWindow;
  for (int i = 0; i < kPadded - n; ++i) x[n + i] = x[n - 2 - i];
  std::memcpy(s.context.data(), x + n - kSileroContext, sizeof(float) * kSileroContext);

  // STFT magnitudes: channel-major [129][4].
  std::vector<float> cur(static_cast<std::size_t>(kBins) * kFrames);
  for (int f = 0; f < kBins; ++f) {
    const float* re = basis_.data() + static_cast<std::size_t>(f) * kFft;
    const float* im = basis_.data() + static_cast<std::size_t>(f + kBins) * kFft;
    for (int t = 0; t < kFrames; ++t) {
      float a = 0, b = 0;
      const float* in = x + t * kHop;
      for (int k = 0; k < kFft; ++k) {
        a += re[k] * in[k];
        b += im[k] * in[k];
      }
      cur[static_cast<std::size_t>(f) * kFrames + t] = std::sqrt(a * a + b * b);
    }
  }
  int frames = kFrames;
  for (const Conv& c : encoder_) {
    const int out_frames = (frames + 2 - 3) / c.stride + 1;
    std::vector<float> next(static_cast<std::size_t>(c.out) * out_frames);
    for (int o = 0; o < c.out; ++o) {
      for (int t = 0; t < out_frames; ++t) {
        float acc = c.bias[static_cast<std::size_t>(o)];
        for (int i = 0; i < c.in; ++i) {
          const float* w = c.weight.data() + (static_cast<std::size_t>(o) * c.in + i) * 3;
          const float* row = cur.data() + static_cast<std::size_t>(i) * frames;
          for (int k = 0; k < 3; ++k) {
            int at = t * c.stride + k - 1;  // padding 1
            if (at >= 0 && at < frames) acc += w[k] * row[at];
          }
        }
        next[static_cast<std::size_t>(o) * out_frames + t] = acc > 0 ? acc : 0;  // ReLU
      }
    }
    cur = std::move(next);
    frames = out_frames;
  }
  // LSTM cell (PyTorch's gate order: input, forget, cell, output) on the single frame left.
  float gates[4 * kHidden];
  for (int g = 0; g < 4 * kHidden; ++g) {
    float acc = b_ih_[static_cast<std::size_t>(g)] + b_hh_[static_cast<std::size_t>(g)];
    const float* wi = w_ih_.data() + static_cast<std::size_t>(g) * kHidden;
    const float* wh = w_hh_.data() + static_cast<std::size_t>(g) * kHidden;
    for (int j = 0; j < kHidden; ++j)
      acc += wi[j] * cur[static_cast<std::size_t>(j) * frames] +
             wh[j] * s.h[static_cast<std::size_t>(j)];
    gates[g] = acc;
  }
  float out = out_b_;
  for (int j = 0; j < kHidden; ++j) {
    const auto u = static_cast<std::size_t>(j);
    float i = sigmoid(gates[j]), f = sigmoid(gates[kHidden + j]);
    float g = std::tanh(gates[2 * kHidden + j]), o = sigmoid(gates[3 * kHidden + j]);
    s.c[u] = f * s.c[u] + i * g;
    s.h[u] = o * std::tanh(s.c[u]);
    out += out_w_[u] * (s.h[u] > 0 ? s.h[u] : 0);  // ReLU, then the 1x1 convolution
  }
  return sigmoid(out);
}

std::vector<float> SileroVad::probabilities(const std::vector<float>& samples, std::size_t length,
                                            const CancelToken* cancel) const {
  length = std::max(length, samples.size());
  SileroStream stream;
  std::vector<float> out;
  out.reserve(length / kSileroWindow + 1);
  float window[kSileroWindow];
  for (std::size_t at = 0; at < length; at += kSileroWindow) {
    if (cancel && out.size() % 512 == 0) cancel->check();  // every ~16 s of audio
    std::size_t n =
        at < samples.size() ? std::min<std::size_t>(kSileroWindow, samples.size() - at) : 0;
    if (n) std::memcpy(window, samples.data() + at, n * sizeof(float));
    std::fill(window + n, window + kSileroWindow, 0.0f);
    out.push_back(process(window, stream));
  }
  return out;
}

}  // namespace sra::vad
