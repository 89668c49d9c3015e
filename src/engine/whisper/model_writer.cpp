#include "engine/whisper/model_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sra::whisper {

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  std::uint32_t sign = (x >> 16) & 0x8000;
  std::int32_t exp = static_cast<std::int32_t>((x >> 23) & 0xff) - 127 + 15;
  std::uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) {  // inf or nan
    return static_cast<std::uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  }
  if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return static_cast<std::uint16_t>(sign);
    mant |= 0x800000;
    std::uint32_t shift = static_cast<std::uint32_t>(14 - exp);
    std::uint32_t half = mant >> shift;
    std::uint32_t rest = mant & ((1u << shift) - 1);
    std::uint32_t midpoint = 1u << (shift - 1);
    if (rest > midpoint || (rest == midpoint && (half & 1))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = sign | static_cast<std::uint32_t>(exp) << 10 | mant >> 13;
  std::uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // round to nearest even
  return static_cast<std::uint16_t>(half);
}

void quantize_row(WeightType type, const float* x, std::size_t count, std::string& out) {
  if (type != WeightType::q8_0 && type != WeightType::q4_0)
    throw std::runtime_error("only q8_0 and q4_0 are written");
  if (count % kQuantBlock != 0) throw std::runtime_error("row not a multiple of 32 values");
  auto put_half = [&](float v) {
    std::uint16_t h = float_to_half(v);
    out.append(reinterpret_cast<const char*>(&h), 2);
  };
  for (std::size_t b = 0; b < count; b += kQuantBlock) {
    const float* v = x + b;
    if (type == WeightType::q8_0) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
      const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
      put_half(d);
      for (int j = 0; j < 32; ++j)
        out.push_back(static_cast<char>(static_cast<std::int8_t>(std::lround(v[j] * id))));
    } else {
      float amax = 0, max = 0;  // the value of largest magnitude, with its sign
      for (int j = 0; j < 32; ++j) {
        if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
      }
      const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
      put_half(d);
      for (int j = 0; j < 16; ++j) {
        auto q = [&](float value) {
          return static_cast<unsigned>(std::min(15, static_cast<int>(value * id + 8.5f)));
        };
        out.push_back(static_cast<char>(q(v[j]) | q(v[j + 16]) << 4));
      }
    }
  }
}

namespace {

void put_i32(std::ofstream& out, std::int32_t v) {
  out.write(reinterpret_cast<const char*>(&v), 4);
}

}  // namespace

void write_model_file(const std::filesystem::path& path, const HParams& h,
                      const std::vector<float>& mel_filters,
                      const std::vector<std::string>& vocabulary,
                      const std::vector<TensorToWrite>& tensors) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  put_i32(out, 0x67676d6c);
  for (int v : {h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer,
                h.n_text_ctx, h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels, h.ftype}) {
    put_i32(out, v);
  }
  put_i32(out, h.n_mels);
  put_i32(out, static_cast<std::int32_t>(mel_filters.size() / static_cast<std::size_t>(h.n_mels)));
  out.write(reinterpret_cast<const char*>(mel_filters.data()),
            static_cast<std::streamsize>(mel_filters.size() * 4));
  put_i32(out, static_cast<std::int32_t>(vocabulary.size()));
  for (const auto& token : vocabulary) {
    put_i32(out, static_cast<std::int32_t>(token.size()));
    out.write(token.data(), static_cast<std::streamsize>(token.size()));
  }
  for (const auto& t : tensors) {
    put_i32(out, static_cast<std::int32_t>(t.shape.size()));
    put_i32(out, static_cast<std::int32_t>(t.name.size()));
    const bool quantized = t.quantize != WeightType::f32;
    put_i32(out, quantized ? static_cast<int>(t.quantize) : t.as_f16 ? 1 : 0);
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      put_i32(out, static_cast<std::int32_t>(*it));
    out.write(t.name.data(), static_cast<std::streamsize>(t.name.size()));
    if (quantized) {
      std::string bytes;
      quantize_row(t.quantize, t.values.data(), t.values.size(), bytes);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    } else if (t.as_f16) {
      for (float v : t.values) {
        std::uint16_t half = float_to_half(v);
        out.write(reinterpret_cast<const char*>(&half), 2);
      }
    } else {
      out.write(reinterpret_cast<const char*>(t.values.data()),
                static_cast<std::streamsize>(t.values.size() * 4));
    }
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

namespace {

// A tensor of a loaded file with its values as f32, stored as f32 unless the caller says.
TensorToWrite widened(const std::string& name, const Tensor& t) {
  TensorToWrite w;
  w.name = name;
  w.shape = t.shape;
  w.values.resize(t.size());
  for (std::size_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.type, t.row(r), w.values.data() + r * t.cols(), t.cols());
  return w;
}

}  // namespace

void convert_to_f16(const std::filesystem::path& in, const std::filesystem::path& out) {
  auto file = ModelFile::load(in);
  HParams h = file->hparams();
  if (h.ftype != 0) throw std::runtime_error(in.string() + " is not an f32 model file");
  h.ftype = 1;
  std::vector<TensorToWrite> tensors;
  for (const auto& name : file->tensor_names()) {
    const Tensor& t = file->tensor_any_shape(name);
    TensorToWrite w = widened(name, t);
    bool keep_f32 = t.shape.size() == 1 || name.find("positional_embedding") != std::string::npos ||
                    (name.find(".conv") != std::string::npos && name.ends_with(".bias"));
    w.as_f16 = !keep_f32;
    tensors.push_back(std::move(w));
  }
  write_model_file(out, h, file->mel_filters(), file->vocabulary(), tensors);
}

void convert_quantized(const std::filesystem::path& in, const std::filesystem::path& out,
                       WeightType type) {
  if (type != WeightType::q8_0 && type != WeightType::q4_0)
    throw std::runtime_error("convert writes q8_0 or q4_0");
  auto file = ModelFile::load(in);
  HParams h = file->hparams();
  if (h.ftype != 0 && h.ftype != 1) throw std::runtime_error(in.string() + " is already quantized");
  h.ftype = 2000 + (type == WeightType::q8_0 ? 7 : 2);  // GGML_QNT_VERSION 2, GGML_FTYPE
  std::vector<TensorToWrite> tensors;
  for (const auto& name : file->tensor_names()) {
    const Tensor& t = file->tensor_any_shape(name);
    TensorToWrite w = widened(name, t);
    // whisper-quantize's choice: 2-D tensors but the conv biases and positional embeddings.
    const bool matrix = t.shape.size() == 2 &&
                        name.find("positional_embedding") == std::string::npos &&
                        name.find(".conv") == std::string::npos && t.cols() % kQuantBlock == 0;
    if (matrix) {
      w.quantize = type;
    } else {
      w.as_f16 = t.shape.size() == 3 && h.ftype % 1000 != 0;  // conv kernels stay f16 in f16 files
    }
    tensors.push_back(std::move(w));
  }
  write_model_file(out, h, file->mel_filters(), file->vocabulary(), tensors);
}

}  // namespace sra::whisper
