#include "engine/whisper/model_writer.h"

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
    put_i32(out, t.as_f16 ? 1 : 0);
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      put_i32(out, static_cast<std::int32_t>(*it));
    out.write(t.name.data(), static_cast<std::streamsize>(t.name.size()));
    if (t.as_f16) {
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

void convert_to_f16(const std::filesystem::path& in, const std::filesystem::path& out) {
  auto file = ModelFile::load(in);
  HParams h = file->hparams();
  if (h.ftype != 0) throw std::runtime_error(in.string() + " is not an f32 model file");
  h.ftype = 1;
  std::vector<TensorToWrite> tensors;
  for (const auto& name : file->tensor_names()) {
    const Tensor& t = file->tensor_any_shape(name);
    TensorToWrite w;
    w.name = name;
    w.shape = t.shape;
    w.values.assign(t.data, t.data + t.size());
    bool keep_f32 = t.shape.size() == 1 || name.find("positional_embedding") != std::string::npos ||
                    (name.find(".conv") != std::string::npos && name.ends_with(".bias"));
    w.as_f16 = !keep_f32;
    tensors.push_back(std::move(w));
  }
  write_model_file(out, h, file->mel_filters(), file->vocabulary(), tensors);
}

}  // namespace sra::whisper
