#include "engine/whisper/ctranslate2_import.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/errors.h"
#include "engine/whisper/model_writer.h"

namespace sra::whisper {
namespace {

struct Ct2Variable {
  std::vector<std::int64_t> shape;
  int dtype = 0;  // 0 float32, 4 float16, others unsupported here
  std::string bytes;

  std::vector<float> floats(const std::string& name) const {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    std::vector<float> out(n);
    if (dtype == 0 && bytes.size() == n * 4) {
      std::memcpy(out.data(), bytes.data(), n * 4);
    } else if (dtype == 4 && bytes.size() == n * 2) {
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = half_to_float(h);
      }
    } else {
      throw config_error("CTranslate2 variable " + name + " has an unsupported type " +
                         std::to_string(dtype) + " (only float16 and float32 files are read)");
    }
    return out;
  }
  std::int64_t scalar_int() const {
    std::int64_t v = 0;
    std::memcpy(&v, bytes.data(), std::min<std::size_t>(bytes.size(), 8));
    if (bytes.size() == 2) v = static_cast<std::int16_t>(v & 0xffff);
    return v;
  }
};

class Ct2Reader {
 public:
  explicit Ct2Reader(const std::filesystem::path& path) : path_(path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error("cannot read " + path.string());
    std::stringstream s;
    s << in.rdbuf();
    data_ = s.str();
  }

  std::map<std::string, Ct2Variable> read() {
    std::uint32_t version = u32();
    if (version < 4 || version > 6)
      fail("binary version " + std::to_string(version) + " is not supported");
    std::string spec = str();
    if (spec != "WhisperSpec") fail("the model is a " + spec + ", not Whisper");
    u32();  // spec revision
    std::uint32_t count = u32();
    std::map<std::string, Ct2Variable> vars;
    for (std::uint32_t i = 0; i < count; ++i) {
      std::string name = str();
      Ct2Variable v;
      std::uint8_t rank = u8();
      for (int r = 0; r < rank; ++r) v.shape.push_back(u32());
      v.dtype = u8();
      std::uint32_t bytes = u32();
      v.bytes = take(bytes);
      vars[name] = std::move(v);
    }
    std::uint32_t aliases = u32();
    for (std::uint32_t i = 0; i < aliases; ++i) {
      std::string alias = str(), target = str();
      if (vars.count(target)) vars[alias] = vars[target];
    }
    return vars;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw config_error("CTranslate2 model " + path_.string() + ": " + what);
  }
  std::string take(std::size_t n) {
    if (n > data_.size() - pos_) fail("file is truncated");
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() {
    std::string b = take(4);
    std::uint32_t v;
    std::memcpy(&v, b.data(), 4);
    return v;
  }
  std::string str() {
    std::string b = take(2);
    std::uint16_t n;
    std::memcpy(&n, b.data(), 2);
    std::string s = take(n);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  }

  std::filesystem::path path_;
  std::string data_;
  std::size_t pos_ = 0;
};

// GPT-2's bytes_to_unicode, inverted: the code point each byte is written as -> the byte.
std::map<char32_t, unsigned char> unicode_to_byte() {
  std::map<char32_t, unsigned char> out;
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n);
      ++n;
    }
  }
  for (std::size_t i = 0; i < bs.size(); ++i)
    out[static_cast<char32_t>(cs[i])] = static_cast<unsigned char>(bs[i]);
  return out;
}

std::string token_bytes(const std::string& text, const std::map<char32_t, unsigned char>& table) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    char32_t cp;
    std::size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c >> 5) == 6 && i + 1 < text.size()) {
      cp = (c & 0x1F) << 6 | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      len = 2;
    } else {
      throw config_error("vocabulary token '" + text + "' is not GPT-2 byte-level text");
    }
    auto it = table.find(cp);
    if (it == table.end())
      throw config_error("vocabulary token '" + text + "' is not GPT-2 byte-level text");
    out += static_cast<char>(it->second);
    i += len;
  }
  return out;
}

}  // namespace

std::vector<float> slaney_mel_filters(int n_mels) {
  const double sr = 16000, f_sp = 200.0 / 3, min_log_hz = 1000, min_log_mel = min_log_hz / f_sp,
               logstep = std::log(6.4) / 27.0;
  auto hz_to_mel = [&](double f) {
    return f >= min_log_hz ? min_log_mel + std::log(f / min_log_hz) / logstep : f / f_sp;
  };
  auto mel_to_hz = [&](double m) {
    return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m;
  };
  const int n_bins = 201;
  std::vector<double> fft_freqs(n_bins);
  for (int i = 0; i < n_bins; ++i) fft_freqs[i] = sr / 2 * i / (n_bins - 1);
  std::vector<double> mel_f(static_cast<std::size_t>(n_mels) + 2);
  const double lo = hz_to_mel(0), hi = hz_to_mel(sr / 2);
  for (int i = 0; i < n_mels + 2; ++i)
    mel_f[static_cast<std::size_t>(i)] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
  std::vector<float> weights(static_cast<std::size_t>(n_mels) * n_bins);
  for (int m = 0; m < n_mels; ++m) {
    const double f0 = mel_f[static_cast<std::size_t>(m)],
                 f1 = mel_f[static_cast<std::size_t>(m) + 1],
                 f2 = mel_f[static_cast<std::size_t>(m) + 2];
    const double enorm = 2.0 / (f2 - f0);
    for (int b = 0; b < n_bins; ++b) {
      double lower = (fft_freqs[b] - f0) / (f1 - f0);
      double upper = (f2 - fft_freqs[b]) / (f2 - f1);
      weights[static_cast<std::size_t>(m) * n_bins + b] =
          static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return weights;
}

void import_ctranslate2(const std::filesystem::path& model_bin,
                        const std::filesystem::path& vocabulary_txt,
                        const std::filesystem::path& output) {
  auto vars = Ct2Reader(model_bin).read();
  auto get = [&](const std::string& name) -> const Ct2Variable& {
    auto it = vars.find(name);
    if (it == vars.end())
      throw config_error("CTranslate2 model " + model_bin.string() + " lacks " + name);
    return it->second;
  };
  const auto& embedding = get("decoder/embeddings/weight");
  const auto& enc_pos = get("encoder/position_encodings/encodings");
  const auto& dec_pos = get("decoder/position_encodings/encodings");
  const auto& conv1 = get("encoder/conv1/weight");
  if (embedding.shape.size() != 2 || enc_pos.shape.size() != 2 || dec_pos.shape.size() != 2 ||
      conv1.shape.size() != 3) {
    throw config_error("CTranslate2 model " + model_bin.string() + " has unexpected shapes");
  }
  auto count_layers = [&](const std::string& prefix) {
    int n = 0;
    while (vars.count(prefix + std::to_string(n) + "/ffn/linear_0/weight")) ++n;
    return n;
  };
  HParams h;
  h.n_vocab = static_cast<int>(embedding.shape[0]);
  h.n_audio_ctx = static_cast<int>(enc_pos.shape[0]);
  h.n_audio_state = static_cast<int>(enc_pos.shape[1]);
  h.n_audio_head = static_cast<int>(get("encoder/num_heads").scalar_int());
  h.n_audio_layer = count_layers("encoder/layer_");
  h.n_text_ctx = static_cast<int>(dec_pos.shape[0]);
  h.n_text_state = static_cast<int>(dec_pos.shape[1]);
  h.n_text_head = static_cast<int>(get("decoder/num_heads").scalar_int());
  h.n_text_layer = count_layers("decoder/layer_");
  h.n_mels = static_cast<int>(conv1.shape[1]);
  h.ftype = 1;
  const std::int64_t d = h.n_audio_state;

  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape,
                 std::vector<float> values, bool f16) {
    tensors.push_back({name, std::move(shape), std::move(values), f16});
  };
  auto copy = [&](const std::string& from, const std::string& to, bool f16) {
    const auto& v = get(from);
    add(to, v.shape, v.floats(from), f16 && v.shape.size() > 1);
  };
  // Rows [first, first + rows) of a fused [n, d] matrix or [n] bias.
  auto rows_of = [&](const std::string& from, std::int64_t first, std::int64_t rows) {
    const auto& v = get(from);
    std::vector<float> all = v.floats(from);
    std::int64_t width = v.shape.size() == 2 ? v.shape[1] : 1;
    return std::vector<float>(all.begin() + first * width, all.begin() + (first + rows) * width);
  };
  auto split_attention = [&](const std::string& fused, const std::string& out_prefix,
                             bool with_query) {
    std::int64_t at = 0;
    if (with_query) {
      add(out_prefix + ".query.weight", {d, d}, rows_of(fused + "/weight", 0, d), true);
      add(out_prefix + ".query.bias", {d}, rows_of(fused + "/bias", 0, d), false);
      at = d;
    }
    add(out_prefix + ".key.weight", {d, d}, rows_of(fused + "/weight", at, d), true);
    add(out_prefix + ".value.weight", {d, d}, rows_of(fused + "/weight", at + d, d), true);
    add(out_prefix + ".value.bias", {d}, rows_of(fused + "/bias", at + d, d), false);
  };

  // The blocks shared by encoder and decoder layers: CTranslate2 prefix c, OpenAI prefix o.
  auto self_attention = [&](const std::string& c, const std::string& o) {
    copy(c + "/self_attention/layer_norm/gamma", o + ".attn_ln.weight", false);
    copy(c + "/self_attention/layer_norm/beta", o + ".attn_ln.bias", false);
    split_attention(c + "/self_attention/linear_0", o + ".attn", true);
    copy(c + "/self_attention/linear_1/weight", o + ".attn.out.weight", true);
    copy(c + "/self_attention/linear_1/bias", o + ".attn.out.bias", false);
  };
  auto mlp = [&](const std::string& c, const std::string& o) {
    copy(c + "/ffn/layer_norm/gamma", o + ".mlp_ln.weight", false);
    copy(c + "/ffn/layer_norm/beta", o + ".mlp_ln.bias", false);
    copy(c + "/ffn/linear_0/weight", o + ".mlp.0.weight", true);
    copy(c + "/ffn/linear_0/bias", o + ".mlp.0.bias", false);
    copy(c + "/ffn/linear_1/weight", o + ".mlp.2.weight", true);
    copy(c + "/ffn/linear_1/bias", o + ".mlp.2.bias", false);
  };

  copy("encoder/conv1/weight", "encoder.conv1.weight", true);
  {
    auto b = get("encoder/conv1/bias");
    add("encoder.conv1.bias", {d, 1}, b.floats("conv1 bias"), false);
  }
  copy("encoder/conv2/weight", "encoder.conv2.weight", true);
  {
    auto b = get("encoder/conv2/bias");
    add("encoder.conv2.bias", {d, 1}, b.floats("conv2 bias"), false);
  }
  copy("encoder/position_encodings/encodings", "encoder.positional_embedding", false);
  for (int i = 0; i < h.n_audio_layer; ++i) {
    std::string c = "encoder/layer_" + std::to_string(i), o = "encoder.blocks." + std::to_string(i);
    self_attention(c, o);
    mlp(c, o);
  }
  copy("encoder/layer_norm/gamma", "encoder.ln_post.weight", false);
  copy("encoder/layer_norm/beta", "encoder.ln_post.bias", false);
  copy("decoder/position_encodings/encodings", "decoder.positional_embedding", false);
  copy("decoder/embeddings/weight", "decoder.token_embedding.weight", true);
  for (int i = 0; i < h.n_text_layer; ++i) {
    std::string c = "decoder/layer_" + std::to_string(i), o = "decoder.blocks." + std::to_string(i);
    self_attention(c, o);
    copy(c + "/attention/layer_norm/gamma", o + ".cross_attn_ln.weight", false);
    copy(c + "/attention/layer_norm/beta", o + ".cross_attn_ln.bias", false);
    copy(c + "/attention/linear_0/weight", o + ".cross_attn.query.weight", true);
    copy(c + "/attention/linear_0/bias", o + ".cross_attn.query.bias", false);
    split_attention(c + "/attention/linear_1", o + ".cross_attn", false);
    copy(c + "/attention/linear_2/weight", o + ".cross_attn.out.weight", true);
    copy(c + "/attention/linear_2/bias", o + ".cross_attn.out.bias", false);
    mlp(c, o);
  }
  copy("decoder/layer_norm/gamma", "decoder.ln.weight", false);
  copy("decoder/layer_norm/beta", "decoder.ln.bias", false);

  // Vocabulary: ordinary tokens up to the first special one.
  std::ifstream in(vocabulary_txt);
  if (!in) throw config_error("cannot read " + vocabulary_txt.string());
  auto table = unicode_to_byte();
  std::vector<std::string> vocabulary;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("<|", 0) == 0 && line.size() > 4 && line.compare(line.size() - 2, 2, "|>") == 0)
      break;
    vocabulary.push_back(token_bytes(line, table));
  }
  write_model_file(output, h, slaney_mel_filters(h.n_mels), vocabulary, tensors);
}

}  // namespace sra::whisper
