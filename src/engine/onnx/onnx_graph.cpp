#include "engine/onnx/onnx_graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "engine/whisper/blas.h"

namespace sra::onnx {
namespace {

constexpr std::int64_t kMaxElements = std::int64_t{1} << 26;
constexpr int kMaxRank = 8;
constexpr double kMaxMultiplyAdds = 4294967296.0;  // 2^32 per node: about a second of one core

void check_work(double multiply_adds) {
  if (multiply_adds > kMaxMultiplyAdds) {
    throw invalid_request("ONNX graph: a node would take more than 2^32 multiply-adds");
  }
}

// Protobuf's wire format, read with bounds checks; `fail` reports a malformed message.
class Wire {
 public:
  Wire(std::string_view bytes, const std::function<void(const std::string&)>& fail)
      : bytes_(bytes), fail_(fail) {}
  bool done() const { return at_ >= bytes_.size(); }
  // The next field. `value` holds a varint or a fixed 32/64-bit value, `payload` a
  // length-delimited body.
  bool next(std::uint32_t& field, std::uint32_t& wire, std::uint64_t& value,
            std::string_view& payload) {
    if (done()) return false;
    const std::uint64_t key = varint();
    field = static_cast<std::uint32_t>(key >> 3);
    wire = static_cast<std::uint32_t>(key & 7);
    value = 0;
    payload = {};
    switch (wire) {
      case 0:
        value = varint();
        break;
      case 1:
        value = fixed(8);
        break;
      case 2: {
        const std::uint64_t n = varint();
        if (n > bytes_.size() - at_) bad("a field runs past its message");
        payload = bytes_.substr(at_, n);
        at_ += n;
        break;
      }
      case 5:
        value = fixed(4);
        break;
      default:
        bad("an unsupported wire type");
    }
    return true;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) bad("a varint is cut off");
      const auto b = static_cast<unsigned char>(bytes_[at_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad("a varint is too long");
  }

 private:
  std::uint64_t fixed(std::size_t n) {
    if (n > bytes_.size() - at_) bad("a fixed-size field is cut off");
    std::uint64_t v = 0;
    std::memcpy(&v, bytes_.data() + at_, n);  // little-endian, as protobuf is
    at_ += n;
    return v;
  }
  [[noreturn]] void bad(const std::string& why) const {
    fail_(why);
    throw std::logic_error(why);  // fail_ throws; this keeps the compiler sure of it
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
  const std::function<void(const std::string&)>& fail_;
};

float float_bits(std::uint64_t v) {
  const auto bits = static_cast<std::uint32_t>(v);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::int64_t element_count(const std::vector<std::int64_t>& shape,
                           const std::function<void(const std::string&)>& fail) {
  if (shape.size() > kMaxRank) fail("a tensor has more than 8 dimensions");
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || d > kMaxElements) fail("a tensor dimension is out of range");
    n *= d;
    if (n > kMaxElements) fail("a tensor has more than 2^26 elements");
  }
  return n;
}

// ONNX's data types that the interpreter holds.
DType dtype_of(std::int64_t onnx_type, const std::function<void(const std::string&)>& fail) {
  switch (onnx_type) {
    case 1:
      return DType::f32;
    case 2:
      return DType::u8;
    case 3:
      return DType::i8;
    case 6:
      return DType::i32;
    case 7:
      return DType::i64;
    default:
      fail("a tensor of data type " + std::to_string(onnx_type) + " (not supported)");
  }
  return DType::f32;
}

Tensor read_tensor(std::string_view bytes, std::string* name,
                   const std::function<void(const std::string&)>& fail) {
  Wire pb(bytes, fail);
  Tensor t;
  std::uint32_t field, wire;
  std::uint64_t value;
  std::string_view payload, raw;
  std::int64_t type = 0;
  std::vector<float> floats;
  std::vector<std::int64_t> ints;
  while (pb.next(field, wire, value, payload)) {
    if (field == 1) {  // dims
      if (wire == 0) t.shape.push_back(static_cast<std::int64_t>(value));
      if (wire == 2) {
        Wire dims(payload, fail);
        while (!dims.done()) t.shape.push_back(static_cast<std::int64_t>(dims.varint()));
      }
    } else if (field == 2 && wire == 0) {
      type = static_cast<std::int64_t>(value);
    } else if (field == 4) {  // float_data
      if (wire == 5) floats.push_back(float_bits(value));
      if (wire == 2) {
        if (payload.size() % 4) fail("float_data is not a whole number of floats");
        const std::size_t at = floats.size();
        floats.resize(at + payload.size() / 4);
        if (!payload.empty()) std::memcpy(floats.data() + at, payload.data(), payload.size());
      }
    } else if (field == 5 || field == 7) {  // int32_data, int64_data
      if (wire == 0) ints.push_back(static_cast<std::int64_t>(value));
      if (wire == 2) {
        Wire list(payload, fail);
        while (!list.done()) {
          const std::uint64_t v = list.varint();
          ints.push_back(field == 5 ? static_cast<std::int32_t>(v) : static_cast<std::int64_t>(v));
        }
      }
    } else if (field == 8 && wire == 2 && name) {
      *name = std::string(payload);
    } else if (field == 9 && wire == 2) {
      raw = payload;
    } else if (field == 14) {
      fail("a tensor keeps its data in another file (not supported)");
    }
  }
  t.type = dtype_of(type, fail);
  const auto n = static_cast<std::size_t>(element_count(t.shape, fail));
  if (t.type == DType::f32) {
    if (!raw.empty()) {
      if (raw.size() != n * 4) fail("a tensor's data does not match its shape");
      t.f.resize(n);
      std::memcpy(t.f.data(), raw.data(), raw.size());
    } else {
      if (floats.size() != n) fail("a tensor's data does not match its shape");
      t.f = std::move(floats);
    }
    return t;
  }
  if (!raw.empty()) {
    const std::size_t width = t.type == DType::i64 ? 8 : t.type == DType::i32 ? 4 : 1;
    if (raw.size() != n * width) fail("a tensor's data does not match its shape");
    t.i.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const char* p = raw.data() + k * width;
      switch (t.type) {
        case DType::i64: {
          std::int64_t v;
          std::memcpy(&v, p, 8);
          t.i[k] = v;
          break;
        }
        case DType::i32: {
          std::int32_t v;
          std::memcpy(&v, p, 4);
          t.i[k] = v;
          break;
        }
        case DType::i8:
          t.i[k] = static_cast<std::int8_t>(*p);
          break;
        default:
          t.i[k] = static_cast<std::uint8_t>(*p);
      }
    }
  } else {
    if (ints.size() != n) fail("a tensor's data does not match its shape");
    t.i = std::move(ints);
  }
  return t;
}

OnnxGraph::Attribute read_attribute(std::string_view bytes, std::string& name,
                                    const std::function<void(const std::string&)>& fail) {
  Wire pb(bytes, fail);
  OnnxGraph::Attribute a;
  std::uint32_t field, wire;
  std::uint64_t value;
  std::string_view payload;
  while (pb.next(field, wire, value, payload)) {
    if (field == 1 && wire == 2) name = std::string(payload);
    if (field == 2 && wire == 5) a.floats.push_back(float_bits(value));
    if (field == 3 && wire == 0) a.ints.push_back(static_cast<std::int64_t>(value));
    if (field == 4 && wire == 2) a.text = std::string(payload);
    if (field == 5 && wire == 2) {
      a.tensor = read_tensor(payload, nullptr, fail);
      a.has_tensor = true;
    }
    if (field == 7) {
      if (wire == 5) a.floats.push_back(float_bits(value));
      if (wire == 2) {
        if (payload.size() % 4) fail("an attribute's floats are cut off");
        for (std::size_t k = 0; k < payload.size(); k += 4) {
          std::uint32_t bits;
          std::memcpy(&bits, payload.data() + k, 4);
          a.floats.push_back(float_bits(bits));
        }
      }
    }
    if (field == 8) {
      if (wire == 0) a.ints.push_back(static_cast<std::int64_t>(value));
      if (wire == 2) {
        Wire list(payload, fail);
        while (!list.done()) a.ints.push_back(static_cast<std::int64_t>(list.varint()));
      }
    }
    if (field == 6 || field == 11) fail("an attribute holds a subgraph (not supported)");
  }
  return a;
}

std::string value_info_name(std::string_view bytes,
                            const std::function<void(const std::string&)>& fail) {
  Wire pb(bytes, fail);
  std::uint32_t field, wire;
  std::uint64_t value;
  std::string_view payload;
  std::string name;
  while (pb.next(field, wire, value, payload))
    if (field == 1 && wire == 2) name = std::string(payload);
  return name;
}

// ---- tensors and operators ----

[[noreturn]] void bad_input(const std::string& why) {
  throw invalid_request("ONNX graph: " + why);
}

Tensor make(DType type, std::vector<std::int64_t> shape) {
  Tensor t;
  t.type = type;
  t.shape = std::move(shape);
  const auto n = static_cast<std::size_t>(element_count(t.shape, bad_input));
  if (type == DType::f32) {
    t.f.assign(n, 0.0f);
  } else {
    t.i.assign(n, 0);
  }
  return t;
}

std::vector<std::int64_t> strides_of(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size(), 1);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d)
    s[static_cast<std::size_t>(d)] =
        s[static_cast<std::size_t>(d) + 1] * shape[static_cast<std::size_t>(d) + 1];
  return s;
}

std::vector<std::int64_t> broadcast_shape(const std::vector<std::int64_t>& a,
                                          const std::vector<std::int64_t>& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  std::vector<std::int64_t> out(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::int64_t x = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const std::int64_t y = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (x != y && x != 1 && y != 1) bad_input("shapes do not broadcast");
    out[k] = x == 1 ? y : x;
  }
  return out;
}

// For each element of `out_shape`, the index of the element of `shape` that broadcasts to it.
std::vector<std::size_t> broadcast_index(const std::vector<std::int64_t>& shape,
                                         const std::vector<std::int64_t>& out_shape) {
  const std::size_t rank = out_shape.size();
  std::vector<std::int64_t> padded(rank, 1);
  std::copy(shape.begin(), shape.end(),
            padded.begin() + static_cast<std::ptrdiff_t>(rank - shape.size()));
  const auto in_strides = strides_of(padded);
  std::int64_t total = 1;
  for (auto d : out_shape) total *= d;
  std::vector<std::size_t> index(static_cast<std::size_t>(total));
  std::vector<std::int64_t> at(rank, 0);
  for (std::int64_t e = 0; e < total; ++e) {
    std::int64_t src = 0;
    for (std::size_t d = 0; d < rank; ++d)
      if (padded[d] != 1) src += at[d] * in_strides[d];
    index[static_cast<std::size_t>(e)] = static_cast<std::size_t>(src);
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++at[static_cast<std::size_t>(d)] < out_shape[static_cast<std::size_t>(d)]) break;
      at[static_cast<std::size_t>(d)] = 0;
    }
  }
  return index;
}

Tensor binary(const Tensor& a, const Tensor& b, const std::string& op) {
  if ((a.type == DType::f32) != (b.type == DType::f32)) bad_input(op + " of mixed types");
  Tensor out =
      make(a.type == DType::f32 ? DType::f32 : DType::i64, broadcast_shape(a.shape, b.shape));
  const std::size_t n = out.count();
  // Where each operand's element of output k is: the same k, one value, the output's trailing
  // dimensions repeated (a bias), or any broadcast (an index table).
  struct Source {
    enum { same, scalar, suffix, table } kind = same;
    std::size_t period = 1;
    std::vector<std::size_t> index;
    std::size_t at(std::size_t k) const {
      switch (kind) {
        case same:
          return k;
        case scalar:
          return 0;
        case suffix:
          return k % period;
        default:
          return index[k];
      }
    }
  };
  auto source_of = [&](const Tensor& t) {
    Source src;
    const std::size_t count = t.count();
    if (t.shape == out.shape) return src;
    if (count == 1) {
      src.kind = Source::scalar;
      return src;
    }
    std::vector<std::int64_t> trimmed = t.shape;
    while (!trimmed.empty() && trimmed.front() == 1) trimmed.erase(trimmed.begin());
    if (trimmed.size() <= out.shape.size() &&
        std::equal(trimmed.begin(), trimmed.end(),
                   out.shape.end() - static_cast<std::ptrdiff_t>(trimmed.size()))) {
      src.kind = Source::suffix;
      src.period = count;
      return src;
    }
    src.kind = Source::table;
    src.index = broadcast_index(t.shape, out.shape);
    return src;
  };
  const Source sa = source_of(a), sb = source_of(b);
  if (out.type == DType::f32) {
    auto apply = [&](auto f) {
      if (sa.kind == Source::same && sb.kind == Source::same) {
        for (std::size_t k = 0; k < n; ++k) out.f[k] = f(a.f[k], b.f[k]);
      } else if (sa.kind == Source::same && sb.kind == Source::scalar) {
        const float y = b.f[0];
        for (std::size_t k = 0; k < n; ++k) out.f[k] = f(a.f[k], y);
      } else if (sa.kind == Source::scalar && sb.kind == Source::same) {
        const float x = a.f[0];
        for (std::size_t k = 0; k < n; ++k) out.f[k] = f(x, b.f[k]);
      } else {
        for (std::size_t k = 0; k < n; ++k) out.f[k] = f(a.f[sa.at(k)], b.f[sb.at(k)]);
      }
    };
    if (op == "Add")
      apply([](float x, float y) { return x + y; });
    else if (op == "Sub")
      apply([](float x, float y) { return x - y; });
    else if (op == "Mul")
      apply([](float x, float y) { return x * y; });
    else if (op == "Div")
      apply([](float x, float y) { return x / y; });
    else
      apply([](float x, float y) { return std::pow(x, y); });
  } else {
    auto apply = [&](auto f) {
      for (std::size_t k = 0; k < n; ++k) out.i[k] = f(a.i[sa.at(k)], b.i[sb.at(k)]);
    };
    // Shape arithmetic: an overflow is an error, never undefined behaviour.
    auto checked = [](bool overflow, std::int64_t v) {
      if (overflow) bad_input("integer arithmetic overflows");
      return v;
    };
    if (op == "Add")
      apply([&](std::int64_t x, std::int64_t y) {
        std::int64_t v;
        return checked(__builtin_add_overflow(x, y, &v), v);
      });
    else if (op == "Sub")
      apply([&](std::int64_t x, std::int64_t y) {
        std::int64_t v;
        return checked(__builtin_sub_overflow(x, y, &v), v);
      });
    else if (op == "Mul")
      apply([&](std::int64_t x, std::int64_t y) {
        std::int64_t v;
        return checked(__builtin_mul_overflow(x, y, &v), v);
      });
    else if (op == "Div")
      apply([](std::int64_t x, std::int64_t y) {
        if (y == 0) bad_input("integer division by zero");
        if (x == std::numeric_limits<std::int64_t>::min() && y == -1)
          bad_input("integer arithmetic overflows");
        return x / y;
      });
    else
      bad_input("Pow of integers");
  }
  return out;
}

Tensor unary(const Tensor& x, const std::string& op) {
  if (x.type != DType::f32) bad_input(op + " of integers");
  Tensor out = x;
  for (float& v : out.f) {
    if (op == "Erf")
      v = std::erf(v);
    else if (op == "Tanh")
      v = std::tanh(v);
    else if (op == "Sigmoid")
      v = 1.0f / (1.0f + std::exp(-v));
    else if (op == "Relu")
      v = v > 0 ? v : 0;
    else
      v = std::sqrt(v);
  }
  return out;
}

std::int64_t normalized_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= std::max<std::int64_t>(r, 1)) bad_input("an axis is out of range");
  return axis < 0 ? axis + r : axis;
}

Tensor matmul(const Tensor& a0, const Tensor& b0) {
  if (a0.type != DType::f32 || b0.type != DType::f32) bad_input("MatMul of integers");
  // Shapes as numpy.matmul reads them (a vector is a row of `a` or a column of `b`).
  std::vector<std::int64_t> sa = a0.shape, sb = b0.shape;
  const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), 1);
  if (b_vec) sb.push_back(1);
  if (sa.size() < 2 || sb.size() < 2) bad_input("MatMul of a scalar");
  const std::int64_t m = sa[sa.size() - 2], k = sa.back();
  const std::int64_t k2 = sb[sb.size() - 2], n = sb.back();
  if (k != k2) bad_input("MatMul's inner dimensions differ");
  const Tensor& a = a0;
  const Tensor& b = b0;
  std::vector<std::int64_t> batch_a(sa.begin(), sa.end() - 2);
  std::vector<std::int64_t> batch_b(sb.begin(), sb.end() - 2);
  std::vector<std::int64_t> batch = broadcast_shape(batch_a, batch_b);
  std::vector<std::int64_t> shape = batch;
  shape.push_back(m);
  shape.push_back(n);
  double batches = 1;
  for (auto d : batch) batches *= static_cast<double>(d);
  check_work(batches * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  Tensor out = make(DType::f32, shape);
  const auto ia = broadcast_index(batch_a, batch), ib = broadcast_index(batch_b, batch);
  for (std::size_t p = 0; p < ia.size(); ++p) {
    if (m && n && k) {
      whisper::sgemm(false, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f,
                     a.f.data() + ia[p] * static_cast<std::size_t>(m * k), static_cast<int>(k),
                     b.f.data() + ib[p] * static_cast<std::size_t>(k * n), static_cast<int>(n),
                     0.0f, out.f.data() + p * static_cast<std::size_t>(m * n), static_cast<int>(n));
    }
  }
  if (a_vec) out.shape.erase(out.shape.end() - 2);
  if (b_vec) out.shape.pop_back();
  return out;
}

}  // namespace

std::size_t Tensor::count() const {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

namespace {

using Node = OnnxGraph::Node;
using Attribute = OnnxGraph::Attribute;

std::int64_t int_attr(const Node& node, const char* name, std::int64_t fallback) {
  auto it = node.attributes.find(name);
  return it == node.attributes.end() || it->second.ints.empty() ? fallback : it->second.ints[0];
}
float float_attr(const Node& node, const char* name, float fallback) {
  auto it = node.attributes.find(name);
  return it == node.attributes.end() || it->second.floats.empty() ? fallback : it->second.floats[0];
}
std::vector<std::int64_t> ints_attr(const Node& node, const char* name) {
  auto it = node.attributes.find(name);
  return it == node.attributes.end() ? std::vector<std::int64_t>{} : it->second.ints;
}

std::vector<std::int64_t> as_ints(const Tensor& t) {
  if (t.type == DType::f32) bad_input("expected integers");
  return t.i;
}

// QuantizeLinear / DequantizeLinear's scale and zero point for element `e` of a tensor of
// `shape`: per tensor (one value) or per slice along `axis`.
struct QuantParams {
  const Tensor& scale;
  const Tensor* zero;
  std::int64_t axis;
  std::int64_t stride = 1, size = 1;
  QuantParams(const Tensor& s, const Tensor* z, std::int64_t a,
              const std::vector<std::int64_t>& shape)
      : scale(s), zero(z), axis(a) {
    if (scale.type != DType::f32 || scale.count() == 0)
      bad_input("a quantization scale is not a float");
    if (scale.count() > 1) {
      axis = normalized_axis(axis, shape.size());
      size = shape[static_cast<std::size_t>(axis)];
      if (static_cast<std::int64_t>(scale.count()) != size)
        bad_input("a per-axis scale does not fit");
      stride = strides_of(shape)[static_cast<std::size_t>(axis)];
    }
    if (zero && (zero->type == DType::f32 || zero->count() != scale.count()))
      bad_input("a zero point does not fit its scale");
  }
  std::size_t slot(std::size_t e) const {
    return scale.count() == 1
               ? 0
               : static_cast<std::size_t>((static_cast<std::int64_t>(e) / stride) % size);
  }
};

Tensor dequantize(const Tensor& x, const Tensor& scale, const Tensor* zero, std::int64_t axis) {
  if (x.type == DType::f32) bad_input("DequantizeLinear of floats");
  QuantParams q(scale, zero, axis, x.shape);
  Tensor out = make(DType::f32, x.shape);
  for (std::size_t e = 0; e < out.f.size(); ++e) {
    const std::size_t s = q.slot(e);
    const std::int64_t z = zero ? zero->i[s] : 0;
    out.f[e] =
        static_cast<float>(static_cast<double>(x.i[e]) - static_cast<double>(z)) * scale.f[s];
  }
  return out;
}

Tensor quantize(const Tensor& x, const Tensor& scale, const Tensor* zero, std::int64_t axis) {
  if (x.type != DType::f32) bad_input("QuantizeLinear of integers");
  QuantParams q(scale, zero, axis, x.shape);
  const DType type = zero ? zero->type : DType::u8;
  const float lo = type == DType::i8 ? -128.0f : 0.0f, hi = type == DType::i8 ? 127.0f : 255.0f;
  Tensor out = make(type, x.shape);
  for (std::size_t e = 0; e < x.f.size(); ++e) {
    const std::size_t s = q.slot(e);
    const float z = zero ? static_cast<float>(zero->i[s]) : 0.0f;
    // Round half to even (the default rounding mode), then saturate, as ONNX defines it.
    float v = std::nearbyint(x.f[e] / scale.f[s]) + z;
    if (!(v >= lo)) v = lo;  // NaN too
    out.i[e] = static_cast<std::int64_t>(std::min(v, hi));
  }
  return out;
}

// QuantizeLinear then DequantizeLinear with the same per-tensor scale and zero point (how a QDQ
// model rounds an activation to its 8-bit grid): the floats of the grid, computed in one pass.
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor* zero) {
  if (x.type != DType::f32) bad_input("QuantizeLinear of integers");
  if (scale.type != DType::f32 || scale.count() != 1 ||
      (zero && (zero->type == DType::f32 || zero->count() != 1)))
    bad_input("a fused quantization is not per tensor");
  const DType type = zero ? zero->type : DType::u8;
  const float s = scale.f[0];
  const float z = zero ? static_cast<float>(zero->i[0]) : 0.0f;
  const float lo = (type == DType::i8 ? -128.0f : 0.0f) - z,
              hi = (type == DType::i8 ? 127.0f : 255.0f) - z;
  Tensor out = x;
  for (float& v : out.f) {
    // Clamped first (so the rounding below is exact), rounded half to even by the 1.5 * 2^23
    // trick (the default rounding mode), then saturated: ONNX's QuantizeLinear, then back.
    float q = std::clamp(v / s, lo - 1.0f, hi + 1.0f);
    q = (q + 12582912.0f) - 12582912.0f;
    v = std::clamp(q, lo, hi) * s;
  }
  return out;
}

// Fills `out` (its shape set) with x[base + sum over d of index[d] * strides[d]] for every index
// of out, in row-major order: a transpose or a slice, as a view of x's elements.
void gather_strided(const Tensor& x, std::int64_t base, const std::vector<std::int64_t>& strides,
                    Tensor& out) {
  const std::size_t rank = out.shape.size();
  std::vector<std::int64_t> at(rank, 0);
  const std::size_t total = out.count();
  for (std::size_t e = 0; e < total; ++e) {
    std::int64_t src = base;
    for (std::size_t d = 0; d < rank; ++d) src += at[d] * strides[d];
    if (x.type == DType::f32) {
      out.f[e] = x.f[static_cast<std::size_t>(src)];
    } else {
      out.i[e] = x.i[static_cast<std::size_t>(src)];
    }
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++at[static_cast<std::size_t>(d)] < out.shape[static_cast<std::size_t>(d)]) break;
      at[static_cast<std::size_t>(d)] = 0;
    }
  }
}

Tensor transpose(const Tensor& x, std::vector<std::int64_t> perm) {
  const std::size_t rank = x.shape.size();
  if (perm.empty()) {
    for (std::size_t d = rank; d-- > 0;) perm.push_back(static_cast<std::int64_t>(d));
  }
  if (perm.size() != rank) bad_input("Transpose's permutation does not fit");
  std::vector<std::int64_t> shape(rank);
  std::vector<bool> seen(rank, false);
  for (std::size_t d = 0; d < rank; ++d) {
    const std::int64_t p = perm[d];
    if (p < 0 || p >= static_cast<std::int64_t>(rank) || seen[static_cast<std::size_t>(p)])
      bad_input("Transpose's permutation is not one");
    seen[static_cast<std::size_t>(p)] = true;
    shape[d] = x.shape[static_cast<std::size_t>(p)];
  }
  Tensor out = make(x.type, shape);
  const auto in_strides = strides_of(x.shape);
  std::vector<std::int64_t> from(rank);
  for (std::size_t d = 0; d < rank; ++d) from[d] = in_strides[static_cast<std::size_t>(perm[d])];
  gather_strided(x, 0, from, out);
  return out;
}

// Conv over one spatial dimension: x [N, C, L], w [O, C, K].
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* bias, const Node& node) {
  if (x.type != DType::f32 || w.type != DType::f32 || x.shape.size() != 3 || w.shape.size() != 3)
    bad_input("Conv supports 1-D float convolutions");
  if (int_attr(node, "group", 1) != 1) bad_input("Conv with groups");
  const std::int64_t batch = x.shape[0], channels = x.shape[1], length = x.shape[2];
  const std::int64_t outs = w.shape[0], kernel = w.shape[2];
  if (w.shape[1] != channels) bad_input("Conv's weights do not fit its input");
  auto pads = ints_attr(node, "pads");
  auto strides = ints_attr(node, "strides");
  auto dilations = ints_attr(node, "dilations");
  const std::int64_t pad_begin = pads.size() >= 1 ? pads[0] : 0;
  const std::int64_t pad_end = pads.size() >= 2 ? pads[1] : 0;
  const std::int64_t stride = strides.empty() ? 1 : strides[0];
  const std::int64_t dilation = dilations.empty() ? 1 : dilations[0];
  if (stride < 1 || dilation < 1 || pad_begin < 0 || pad_end < 0) bad_input("Conv's attributes");
  const std::int64_t span = dilation * (kernel - 1) + 1;
  const std::int64_t out_len = (length + pad_begin + pad_end - span) / stride + 1;
  if (out_len < 1) bad_input("Conv's input is shorter than its kernel");
  if (bias && (bias->type != DType::f32 || static_cast<std::int64_t>(bias->count()) != outs))
    bad_input("Conv's bias does not fit");
  check_work(static_cast<double>(batch) * static_cast<double>(outs) * static_cast<double>(out_len) *
             static_cast<double>(channels) * static_cast<double>(kernel));
  if (static_cast<double>(channels) * static_cast<double>(kernel) * static_cast<double>(out_len) >
      static_cast<double>(kMaxElements))
    bad_input("Conv's columns would be too large");
  Tensor out = make(DType::f32, {batch, outs, out_len});
  // im2col: [C * K, out_len], then weights [O, C * K] times it.
  std::vector<float> columns(static_cast<std::size_t>(channels * kernel * out_len));
  for (std::int64_t b = 0; b < batch; ++b) {
    const float* in = x.f.data() + b * channels * length;
    for (std::int64_t c = 0; c < channels; ++c) {
      for (std::int64_t k = 0; k < kernel; ++k) {
        float* row = columns.data() + (c * kernel + k) * out_len;
        for (std::int64_t t = 0; t < out_len; ++t) {
          const std::int64_t at = t * stride + k * dilation - pad_begin;
          row[t] = at >= 0 && at < length ? in[c * length + at] : 0.0f;
        }
      }
    }
    float* dst = out.f.data() + b * outs * out_len;
    whisper::sgemm(false, static_cast<int>(outs), static_cast<int>(out_len),
                   static_cast<int>(channels * kernel), 1.0f, w.f.data(),
                   static_cast<int>(channels * kernel), columns.data(), static_cast<int>(out_len),
                   0.0f, dst, static_cast<int>(out_len));
    if (bias) {
      for (std::int64_t o = 0; o < outs; ++o)
        for (std::int64_t t = 0; t < out_len; ++t)
          dst[o * out_len + t] += bias->f[static_cast<std::size_t>(o)];
    }
  }
  return out;
}

Tensor gemm(const Tensor& a, const Tensor& b, const Tensor* c, const Node& node) {
  if (a.type != DType::f32 || b.type != DType::f32 || a.shape.size() != 2 || b.shape.size() != 2)
    bad_input("Gemm of 2-D floats");
  if (c && c->type != DType::f32) bad_input("Gemm's C is not floats");
  const bool ta = int_attr(node, "transA", 0) != 0, tb = int_attr(node, "transB", 0) != 0;
  const float alpha = float_attr(node, "alpha", 1.0f), beta = float_attr(node, "beta", 1.0f);
  const Tensor at = ta ? transpose(a, {1, 0}) : a;
  const std::int64_t m = at.shape[0], k = at.shape[1];
  const std::int64_t n = tb ? b.shape[0] : b.shape[1];
  if ((tb ? b.shape[1] : b.shape[0]) != k) bad_input("Gemm's inner dimensions differ");
  check_work(static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  Tensor out = make(DType::f32, {m, n});
  if (c) {
    const auto ic = broadcast_index(c->shape, out.shape);
    for (std::size_t e = 0; e < out.f.size(); ++e) out.f[e] = beta * c->f[ic[e]];
  }
  if (m && n && k) {
    whisper::sgemm(tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha,
                   at.f.data(), static_cast<int>(k), b.f.data(), static_cast<int>(tb ? k : n),
                   c ? 1.0f : 0.0f, out.f.data(), static_cast<int>(n));
  }
  return out;
}

// Applies `f(begin, count, stride)` to every run of `count` elements along `axis`.
template <typename F>
void along_axis(const std::vector<std::int64_t>& shape, std::int64_t axis, F f) {
  const auto strides = strides_of(shape);
  const std::int64_t count = shape[static_cast<std::size_t>(axis)];
  const std::int64_t inner = strides[static_cast<std::size_t>(axis)];
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= shape[static_cast<std::size_t>(d)];
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) f(o * count * inner + i, count, inner);
}

Tensor softmax(const Tensor& x, std::int64_t axis) {
  if (x.type != DType::f32) bad_input("Softmax of integers");
  Tensor out = x;
  if (x.shape.empty()) return out;
  along_axis(x.shape, normalized_axis(axis, x.shape.size()),
             [&](std::int64_t b, std::int64_t n, std::int64_t s) {
               float max = -std::numeric_limits<float>::infinity();
               for (std::int64_t k = 0; k < n; ++k)
                 max = std::max(max, out.f[static_cast<std::size_t>(b + k * s)]);
               double sum = 0;
               for (std::int64_t k = 0; k < n; ++k) {
                 float& v = out.f[static_cast<std::size_t>(b + k * s)];
                 v = std::exp(v - max);
                 sum += v;
               }
               for (std::int64_t k = 0; k < n; ++k)
                 out.f[static_cast<std::size_t>(b + k * s)] /= static_cast<float>(sum);
             });
  return out;
}

Tensor layer_norm(const Tensor& x, const Tensor& scale, const Tensor* bias, const Node& node) {
  if (x.type != DType::f32 || x.shape.empty() || scale.type != DType::f32 ||
      (bias && bias->type != DType::f32))
    bad_input("LayerNormalization of floats");
  const std::int64_t axis = normalized_axis(int_attr(node, "axis", -1), x.shape.size());
  const float eps = float_attr(node, "epsilon", 1e-5f);
  std::int64_t inner = 1;
  for (std::size_t d = static_cast<std::size_t>(axis); d < x.shape.size(); ++d) inner *= x.shape[d];
  if (static_cast<std::int64_t>(scale.count()) != inner ||
      (bias && static_cast<std::int64_t>(bias->count()) != inner))
    bad_input("LayerNormalization's scale does not fit");
  Tensor out = x;
  const std::size_t rows = inner ? x.count() / static_cast<std::size_t>(inner) : 0;
  for (std::size_t r = 0; r < rows; ++r) {
    float* v = out.f.data() + r * static_cast<std::size_t>(inner);
    double mean = 0, var = 0;
    for (std::int64_t k = 0; k < inner; ++k) mean += v[k];
    mean /= static_cast<double>(inner);
    for (std::int64_t k = 0; k < inner; ++k) var += (v[k] - mean) * (v[k] - mean);
    var /= static_cast<double>(inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (std::int64_t k = 0; k < inner; ++k) {
      v[k] = static_cast<float>((v[k] - mean) * inv) * scale.f[static_cast<std::size_t>(k)] +
             (bias ? bias->f[static_cast<std::size_t>(k)] : 0.0f);
    }
  }
  return out;
}

Tensor reduce(const Tensor& x, std::vector<std::int64_t> axes, bool keep, bool mean) {
  if (x.type != DType::f32) bad_input("Reduce of integers");
  if (axes.empty())
    for (std::size_t d = 0; d < x.shape.size(); ++d) axes.push_back(static_cast<std::int64_t>(d));
  std::vector<bool> reduced(x.shape.size(), false);
  for (auto a : axes) reduced[static_cast<std::size_t>(normalized_axis(a, x.shape.size()))] = true;
  std::vector<std::int64_t> kept_shape;
  for (std::size_t d = 0; d < x.shape.size(); ++d)
    kept_shape.push_back(reduced[d] ? 1 : x.shape[d]);
  Tensor out = make(DType::f32, kept_shape);
  const auto index = broadcast_index(kept_shape, x.shape);
  for (std::size_t e = 0; e < x.f.size(); ++e) out.f[index[e]] += x.f[e];
  if (mean && !out.f.empty()) {
    const float n = static_cast<float>(x.f.size() / out.f.size());
    for (float& v : out.f) v /= n;
  }
  if (!keep) {
    std::vector<std::int64_t> shape;
    for (std::size_t d = 0; d < x.shape.size(); ++d)
      if (!reduced[d]) shape.push_back(x.shape[d]);
    out.shape = shape;
  }
  return out;
}

Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& spec, bool allow_zero) {
  std::vector<std::int64_t> shape;
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t d = 0; d < spec.size(); ++d) {
    std::int64_t v = spec[d];
    if (v == 0 && !allow_zero) {
      if (d >= x.shape.size()) bad_input("Reshape copies a dimension the input lacks");
      v = x.shape[d];
    }
    if (v == -1) {
      if (infer >= 0) bad_input("Reshape infers two dimensions");
      infer = static_cast<int>(d);
      v = 1;
    } else if (v < 0) {
      bad_input("Reshape to a negative dimension");
    } else if (v > kMaxElements) {
      bad_input("Reshape to a dimension over 2^26");
    }
    shape.push_back(v);
    known *= v;
    if (known > kMaxElements) bad_input("Reshape to more than 2^26 elements");
  }
  const auto n = static_cast<std::int64_t>(x.count());
  if (infer >= 0) {
    if (known == 0 || n % known) bad_input("Reshape cannot infer a dimension");
    shape[static_cast<std::size_t>(infer)] = n / known;
  } else if (known != n) {
    bad_input("Reshape changes the number of elements");
  }
  Tensor out = x;
  out.shape = shape;
  return out;
}

Tensor slice(const Tensor& x, const std::vector<std::int64_t>& starts,
             const std::vector<std::int64_t>& ends, std::vector<std::int64_t> axes,
             std::vector<std::int64_t> steps) {
  const std::size_t rank = x.shape.size();
  if (axes.empty())
    for (std::size_t d = 0; d < starts.size(); ++d) axes.push_back(static_cast<std::int64_t>(d));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    bad_input("Slice's lists differ in length");
  std::vector<std::int64_t> begin(rank, 0), step(rank, 1), shape = x.shape;
  for (std::size_t k = 0; k < starts.size(); ++k) {
    const auto d = static_cast<std::size_t>(normalized_axis(axes[k], rank));
    const std::int64_t dim = x.shape[d];
    if (steps[k] == 0) bad_input("Slice with a zero step");
    auto clamp_index = [&](std::int64_t v, bool is_end) {
      if (v < 0) v += dim;
      if (steps[k] > 0) return std::clamp<std::int64_t>(v, 0, dim);
      return std::clamp<std::int64_t>(v, -1, dim - 1) + (is_end ? 0 : 0);
    };
    const std::int64_t s = clamp_index(starts[k], false), e = clamp_index(ends[k], true);
    begin[d] = s;
    step[d] = steps[k];
    const std::int64_t len =
        steps[k] > 0 ? (e - s + steps[k] - 1) / steps[k] : (s - e - steps[k] - 1) / -steps[k];
    shape[d] = std::max<std::int64_t>(len, 0);
  }
  Tensor out = make(x.type, shape);
  const auto in_strides = strides_of(x.shape);
  std::int64_t base = 0;
  std::vector<std::int64_t> strides(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    base += begin[d] * in_strides[d];
    strides[d] = step[d] * in_strides[d];
  }
  gather_strided(x, base, strides, out);
  return out;
}

Tensor concat(const std::vector<const Tensor*>& parts, std::int64_t axis0) {
  if (parts.empty()) bad_input("Concat of nothing");
  const Tensor& first = *parts[0];
  const std::int64_t axis = normalized_axis(axis0, first.shape.size());
  std::vector<std::int64_t> shape = first.shape;
  shape[static_cast<std::size_t>(axis)] = 0;
  for (const Tensor* p : parts) {
    if (p->shape.size() != first.shape.size() ||
        (p->type == DType::f32) != (first.type == DType::f32))
      bad_input("Concat of tensors that do not fit");
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (static_cast<std::int64_t>(d) != axis && p->shape[d] != first.shape[d])
        bad_input("Concat of tensors that do not fit");
    shape[static_cast<std::size_t>(axis)] += p->shape[static_cast<std::size_t>(axis)];
  }
  Tensor out = make(first.type == DType::f32 ? DType::f32 : DType::i64, shape);
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= shape[static_cast<std::size_t>(d)];
  std::size_t at = 0;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (const Tensor* p : parts) {
      const std::size_t run = outer ? p->count() / static_cast<std::size_t>(outer) : 0;
      for (std::size_t k = 0; k < run; ++k, ++at) {
        if (out.type == DType::f32) {
          out.f[at] = p->f[static_cast<std::size_t>(o) * run + k];
        } else {
          out.i[at] = p->i[static_cast<std::size_t>(o) * run + k];
        }
      }
    }
  }
  return out;
}

Tensor gather(const Tensor& x, const Tensor& indices, std::int64_t axis0) {
  if (x.shape.empty()) bad_input("Gather from a scalar");
  const std::int64_t axis = normalized_axis(axis0, x.shape.size());
  const std::int64_t dim = x.shape[static_cast<std::size_t>(axis)];
  std::vector<std::int64_t> shape(x.shape.begin(), x.shape.begin() + axis);
  shape.insert(shape.end(), indices.shape.begin(), indices.shape.end());
  shape.insert(shape.end(), x.shape.begin() + axis + 1, x.shape.end());
  Tensor out = make(x.type, shape);
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= x.shape[static_cast<std::size_t>(d)];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < x.shape.size(); ++d)
    inner *= x.shape[d];
  const auto idx = as_ints(indices);
  std::size_t at = 0;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t j : idx) {
      if (j < -dim || j >= dim) bad_input("Gather's index is out of range");
      if (j < 0) j += dim;
      for (std::int64_t k = 0; k < inner; ++k, ++at) {
        const auto src = static_cast<std::size_t>((o * dim + j) * inner + k);
        if (x.type == DType::f32) {
          out.f[at] = x.f[src];
        } else {
          out.i[at] = x.i[src];
        }
      }
    }
  }
  return out;
}

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops{"Add",
                                         "Sub",
                                         "Mul",
                                         "Div",
                                         "Pow",
                                         "Erf",
                                         "Tanh",
                                         "Sigmoid",
                                         "Relu",
                                         "Sqrt",
                                         "MatMul",
                                         "Gemm",
                                         "Conv",
                                         "LayerNormalization",
                                         "Softmax",
                                         "ReduceSum",
                                         "ReduceMean",
                                         "Transpose",
                                         "Reshape",
                                         "Shape",
                                         "Gather",
                                         "Slice",
                                         "Concat",
                                         "Unsqueeze",
                                         "Squeeze",
                                         "Cast",
                                         "Constant",
                                         "QuantizeLinear",
                                         "DequantizeLinear"};
  return ops;
}

// Runs one node on its inputs (nullptr for an omitted optional one).
std::vector<Tensor> run_node(const Node& node, const std::vector<const Tensor*>& in) {
  auto arg = [&](std::size_t k) -> const Tensor& {
    if (k >= in.size() || !in[k]) bad_input(node.op + " lacks input " + std::to_string(k));
    return *in[k];
  };
  auto optional = [&](std::size_t k) -> const Tensor* { return k < in.size() ? in[k] : nullptr; };
  const std::string& op = node.op;
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow")
    return {binary(arg(0), arg(1), op)};
  if (op == "Erf" || op == "Tanh" || op == "Sigmoid" || op == "Relu" || op == "Sqrt")
    return {unary(arg(0), op)};
  if (op == "MatMul") return {matmul(arg(0), arg(1))};
  if (op == "Gemm") return {gemm(arg(0), arg(1), optional(2), node)};
  if (op == "Conv") return {conv1d(arg(0), arg(1), optional(2), node)};
  if (op == "LayerNormalization") return {layer_norm(arg(0), arg(1), optional(2), node)};
  if (op == "Softmax") return {softmax(arg(0), int_attr(node, "axis", -1))};
  if (op == "ReduceSum" || op == "ReduceMean") {
    std::vector<std::int64_t> axes = optional(1) ? as_ints(*optional(1)) : ints_attr(node, "axes");
    return {reduce(arg(0), axes, int_attr(node, "keepdims", 1) != 0, op == "ReduceMean")};
  }
  if (op == "Transpose") return {transpose(arg(0), ints_attr(node, "perm"))};
  if (op == "Reshape")
    return {reshape(arg(0), as_ints(arg(1)), int_attr(node, "allowzero", 0) != 0)};
  if (op == "Shape") {
    const auto rank = static_cast<std::int64_t>(arg(0).shape.size());
    std::int64_t start = int_attr(node, "start", 0), end = int_attr(node, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<std::int64_t>(start, 0, rank);
    end = std::clamp<std::int64_t>(end, start, rank);
    Tensor t = make(DType::i64, {end - start});
    for (std::int64_t d = start; d < end; ++d)
      t.i[static_cast<std::size_t>(d - start)] = arg(0).shape[static_cast<std::size_t>(d)];
    return {t};
  }
  if (op == "Gather") return {gather(arg(0), arg(1), int_attr(node, "axis", 0))};
  if (op == "Slice") {
    return {slice(arg(0), as_ints(arg(1)), as_ints(arg(2)),
                  optional(3) ? as_ints(*optional(3)) : std::vector<std::int64_t>{},
                  optional(4) ? as_ints(*optional(4)) : std::vector<std::int64_t>{})};
  }
  if (op == "Concat") {
    std::vector<const Tensor*> parts;
    for (std::size_t k = 0; k < in.size(); ++k) parts.push_back(&arg(k));
    return {concat(parts, int_attr(node, "axis", 0))};
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    Tensor t = arg(0);
    std::vector<std::int64_t> axes = optional(1) ? as_ints(*optional(1)) : ints_attr(node, "axes");
    if (op == "Unsqueeze") {
      const std::size_t rank = t.shape.size() + axes.size();
      std::vector<bool> added(rank, false);
      for (auto a : axes) {
        auto slot = added[static_cast<std::size_t>(normalized_axis(a, rank))];
        if (slot) bad_input("Unsqueeze names an axis twice");
        slot = true;
      }
      std::vector<std::int64_t> shape;
      std::size_t k = 0;
      for (std::size_t d = 0; d < rank; ++d) shape.push_back(added[d] ? 1 : t.shape[k++]);
      t.shape = shape;
    } else {
      std::vector<bool> drop(t.shape.size(), axes.empty());
      for (auto a : axes) drop[static_cast<std::size_t>(normalized_axis(a, t.shape.size()))] = true;
      std::vector<std::int64_t> shape;
      for (std::size_t d = 0; d < t.shape.size(); ++d)
        if (!(drop[d] && t.shape[d] == 1)) shape.push_back(t.shape[d]);
      t.shape = shape;
    }
    return {t};
  }
  if (op == "Cast") {
    const Tensor& x = arg(0);
    const std::int64_t to = int_attr(node, "to", 1);
    Tensor t = make(to == 1 ? DType::f32 : DType::i64, x.shape);
    if (to != 1 && to != 7) bad_input("Cast to a type other than float or int64");
    for (std::size_t e = 0; e < t.count(); ++e) {
      if (to == 1)
        t.f[e] = x.type == DType::f32 ? x.f[e] : static_cast<float>(x.i[e]);
      else if (x.type != DType::f32)
        t.i[e] = x.i[e];
      else if (!(std::fabs(x.f[e]) < 9.2e18f))
        bad_input("Cast of a float that no int64 holds");
      else
        t.i[e] = static_cast<std::int64_t>(x.f[e]);
    }
    return {t};
  }
  if (op == "QuantizeLinear")
    return {quantize(arg(0), arg(1), optional(2), int_attr(node, "axis", 1))};
  if (op == "QuantizeDequantize") return {fake_quantize(arg(0), arg(1), optional(2))};
  if (op == "DequantizeLinear")
    return {dequantize(arg(0), arg(1), optional(2), int_attr(node, "axis", 1))};
  bad_input("operator " + op + " is not supported");
}

}  // namespace

OnnxGraph::OnnxGraph(const std::filesystem::path& path) : path_(path) {
  try {
    load();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // a check missed: still this file's error, named
    throw config_error("ONNX model " + path.string() + ": " + e.what());
  }
}

void OnnxGraph::load() {
  const std::filesystem::path& path = path_;
  std::function<void(const std::string&)> fail = [&path](const std::string& why) {
    throw config_error("ONNX model " + path.string() + ": " + why);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot be read");
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string file = bytes.str();
  Wire model(file, fail);
  std::uint32_t field, wire;
  std::uint64_t value;
  std::string_view payload, graph;
  while (model.next(field, wire, value, payload))
    if (field == 7 && wire == 2) graph = payload;
  if (graph.empty()) fail("no graph (not an ONNX model)");
  Wire g(graph, fail);
  std::set<std::string> initializer_names;
  while (g.next(field, wire, value, payload)) {
    if (wire != 2) continue;
    if (field == 1) {
      Node node;
      Wire n(payload, fail);
      std::uint32_t f, w;
      std::uint64_t v;
      std::string_view p;
      while (n.next(f, w, v, p)) {
        if (w != 2) continue;
        if (f == 1) node.inputs.emplace_back(p);
        if (f == 2) node.outputs.emplace_back(p);
        if (f == 4) node.op = std::string(p);
        if (f == 7 && !p.empty() && p != "ai.onnx")
          fail("operator domain " + std::string(p) + " is not supported");
        if (f == 5) {
          std::string name;
          Attribute a = read_attribute(p, name, fail);
          node.attributes[name] = std::move(a);
        }
      }
      if (!supported_ops().count(node.op)) fail("operator " + node.op + " is not supported");
      if (node.outputs.empty()) fail("a node has no output");
      nodes_.push_back(std::move(node));
    } else if (field == 5) {
      std::string name;
      Tensor t = read_tensor(payload, &name, fail);
      initializer_names.insert(name);
      initializers_[name] = std::move(t);
    } else if (field == 11) {
      inputs_.push_back(value_info_name(payload, fail));
    } else if (field == 12) {
      outputs_.push_back(value_info_name(payload, fail));
    }
  }
  // Graph inputs that are initializers are not the caller's to give.
  inputs_.erase(
      std::remove_if(inputs_.begin(), inputs_.end(),
                     [&](const std::string& n) { return initializer_names.count(n) > 0; }),
      inputs_.end());
  if (outputs_.empty()) fail("the graph has no output");
  // Constants and everything computed from weights alone (dequantized weights) are computed once.
  std::vector<Node> remaining;
  for (const Node& node : nodes_) {
    bool constant = true;
    for (const auto& name : node.inputs)
      if (!name.empty() && !initializers_.count(name)) constant = false;
    if (!constant || (node.op != "Constant" && node.op != "DequantizeLinear")) {
      remaining.push_back(node);
      continue;
    }
    try {
      if (node.op == "Constant") {
        auto it = node.attributes.find("value");
        if (it == node.attributes.end() || !it->second.has_tensor)
          fail("a Constant without a tensor value");
        initializers_[node.outputs[0]] = it->second.tensor;
      } else {
        std::vector<const Tensor*> args;
        for (const auto& name : node.inputs)
          args.push_back(name.empty() ? nullptr : &initializers_.at(name));
        initializers_[node.outputs[0]] = run_node(node, args).at(0);
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::config) throw;
      fail(e.what());
    }
  }
  nodes_ = std::move(remaining);
  fuse_quantize_pairs();
  // Quantized weights are not needed once dequantized.
  std::set<std::string> used;
  for (const Node& node : nodes_)
    for (const auto& name : node.inputs) used.insert(name);
  for (auto it = initializers_.begin(); it != initializers_.end();)
    it = used.count(it->first) || std::count(outputs_.begin(), outputs_.end(), it->first)
             ? std::next(it)
             : initializers_.erase(it);
}

void OnnxGraph::fuse_quantize_pairs() {
  std::map<std::string, int> readers;
  for (const Node& node : nodes_)
    for (const auto& name : node.inputs) ++readers[name];
  std::map<std::string, std::size_t> producer;
  for (std::size_t k = 0; k < nodes_.size(); ++k) producer[nodes_[k].outputs[0]] = k;
  std::vector<bool> dropped(nodes_.size(), false);
  auto per_tensor = [&](const std::string& name) {
    auto it = initializers_.find(name);
    return name.empty() || (it != initializers_.end() && it->second.count() == 1);
  };
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    Node& dq = nodes_[k];
    if (dq.op != "DequantizeLinear" || dq.inputs.empty()) continue;
    auto p = producer.find(dq.inputs[0]);
    if (p == producer.end()) continue;
    Node& q = nodes_[p->second];
    auto param = [](const Node& n, std::size_t i) {
      return i < n.inputs.size() ? n.inputs[i] : std::string();
    };
    if (q.op != "QuantizeLinear" || readers[q.outputs[0]] != 1 || param(q, 1) != param(dq, 1) ||
        param(q, 2) != param(dq, 2) || !per_tensor(param(q, 1)) || !per_tensor(param(q, 2)) ||
        param(q, 1).empty())
      continue;
    // The pair becomes one node where the DequantizeLinear was (its input is ready there).
    dq.op = "QuantizeDequantize";
    dq.inputs = {q.inputs[0], param(q, 1), param(q, 2)};
    dropped[p->second] = true;
  }
  std::vector<Node> kept;
  for (std::size_t k = 0; k < nodes_.size(); ++k)
    if (!dropped[k]) kept.push_back(std::move(nodes_[k]));
  nodes_ = std::move(kept);
}

std::map<std::string, Tensor> OnnxGraph::run(const std::map<std::string, Tensor>& inputs) const {
  std::map<std::string, Tensor> values;
  for (const auto& name : inputs_) {
    auto it = inputs.find(name);
    if (it == inputs.end()) bad_input("input " + name + " is missing");
    const Tensor& t = it->second;
    if (static_cast<std::int64_t>(t.type == DType::f32 ? t.f.size() : t.i.size()) !=
        element_count(t.shape, bad_input))
      bad_input("input " + name + " does not match its shape");
    values[name] = t;
  }
  // The last node that reads each value: after it, the value is dropped.
  std::map<std::string, std::size_t> last_use;
  for (std::size_t k = 0; k < nodes_.size(); ++k)
    for (const auto& name : nodes_[k].inputs) last_use[name] = k;
  auto find = [&](const std::string& name) -> const Tensor* {
    if (name.empty()) return nullptr;
    if (auto it = values.find(name); it != values.end()) return &it->second;
    if (auto it = initializers_.find(name); it != initializers_.end()) return &it->second;
    bad_input("value " + name + " is computed by no earlier node");
  };
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    const Node& node = nodes_[k];
    std::vector<const Tensor*> args;
    for (const auto& name : node.inputs) args.push_back(find(name));
    std::vector<Tensor> results;
    try {
      results = run_node(node, args);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // a check missed: still an error of this graph, named
      bad_input(node.op + ": " + e.what());
    }
    for (std::size_t o = 0; o < node.outputs.size() && o < results.size(); ++o)
      values[node.outputs[o]] = std::move(results[o]);
    for (const auto& name : node.inputs) {
      auto it = last_use.find(name);
      if (it != last_use.end() && it->second == k &&
          std::find(outputs_.begin(), outputs_.end(), name) == outputs_.end())
        values.erase(name);
    }
  }
  std::map<std::string, Tensor> out;
  for (const auto& name : outputs_) {
    const Tensor* t = find(name);
    if (!t) bad_input("an output of the graph has no name");
    out[name] = *t;
  }
  return out;
}

}  // namespace sra::onnx
