#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>

#include "core/errors.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/model_writer.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

namespace fs = std::filesystem;

TEST(WhisperModelFile, SharedModelsLoadWithTheirShapes) {
  struct Want {
    const char* name;
    int vocab, width, heads, layers, mels, ftype;
  };
  for (Want w : {Want{"tiny-test-f32", 51864, 64, 2, 2, 80, 0},
                 Want{"tiny-test-f16", 51864, 64, 2, 2, 80, 1},
                 Want{"random-tiny-ml-f32", 51865, 384, 6, 4, 80, 0},
                 Want{"random-v3-small-f32", 51866, 64, 2, 2, 128, 0}}) {
    auto f = ModelFile::load(test::whisper_model(w.name));
    const HParams& h = f->hparams();
    EXPECT_EQ(h.n_vocab, w.vocab) << w.name;
    EXPECT_EQ(h.n_audio_state, w.width);
    EXPECT_EQ(h.n_text_head, w.heads);
    EXPECT_EQ(h.n_audio_layer, w.layers);
    EXPECT_EQ(h.n_text_layer, w.layers);
    EXPECT_EQ(h.n_mels, w.mels);
    EXPECT_EQ(h.ftype, w.ftype);
    EXPECT_EQ(h.n_text_ctx, 448);
    if (w.ftype == 0) {
      EXPECT_GT(f->mapped_bytes(), 0u) << "f32 weights are used from the mapping";
    }
  }
}

// Whether the page holding `p` is mapped in this process now (/proc/self/pagemap's bit 63):
// for a file mapping, whether the process has it in memory, not whether the file is cached.
bool page_present(const void* p) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  std::uint64_t entry = 0;
  const auto offset = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(p) / page * 8);
  EXPECT_EQ(fd >= 0 ? pread(fd, &entry, 8, offset) : -1, 8) << "cannot read /proc/self/pagemap";
  if (fd >= 0) close(fd);
  return (entry >> 63) & 1;
}

TEST(WhisperModelFile, PagesCopiedAtLoadLeaveMemory) {
  // The header, mel filters and vocabulary (half a MiB of the file) and the tensors widened
  // into memory of our own are read once; the mapping keeps only the tensors used in place.
  auto f = ModelFile::load(test::whisper_model("tiny-test-f16"));
  const unsigned char* begin = f->mapping();
  const unsigned char* end = begin + f->mapping_size();
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<std::pair<const unsigned char*, const unsigned char*>> in_place;
  for (const auto& name : f->tensor_names()) {
    const Tensor& t = f->tensor_any_shape(name);
    const auto* raw = static_cast<const unsigned char*>(t.raw);
    if (raw < begin || raw >= end) continue;  // converted into memory of our own
    const std::size_t bytes = t.derived ? t.row_bytes() * t.rows() : t.size() * 4;
    in_place.emplace_back(raw, raw + bytes);
  }
  ASSERT_FALSE(in_place.empty());
  int copied_pages = 0;
  for (const unsigned char* p = begin; p + page <= end; p += page) {
    bool holds_in_place = false;
    for (const auto& [b, e] : in_place) holds_in_place |= b < p + page && e > p;
    if (holds_in_place) continue;
    ++copied_pages;
    EXPECT_FALSE(page_present(p)) << "page at byte " << (p - begin) << " is still in memory";
  }
  EXPECT_GT(copied_pages * page, 256 * 1024) << "the vocabulary alone spans more";
  // The check sees pages that are in memory: reading a tensor brings its page back.
  const auto* first = in_place.front().first;
  volatile unsigned char touched = *first;
  (void)touched;
  EXPECT_TRUE(page_present(first));
}

// A complete, valid model with tiny shapes: 1 mel, width 2, one layer each.
struct SmallModel {
  HParams h;
  std::vector<float> filters;
  std::vector<std::string> vocab;
  std::vector<TensorToWrite> tensors;

  SmallModel() {
    h = {51864, 1500, 2, 1, 1, 8, 2, 1, 1, 1, 1};
    for (int b = 0; b < 256; ++b) vocab.emplace_back(1, static_cast<char>(b));
    filters.assign(201, 0.01f);
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0, 0.5f);
    auto add = [&](const std::string& name, std::vector<std::int64_t> shape, bool f16) {
      std::size_t count = 1;
      for (auto d : shape) count *= static_cast<std::size_t>(d);
      std::vector<float> v(count);
      for (auto& x : v) x = n(rng);
      tensors.push_back({name, shape, v, f16});
    };
    auto attention = [&](const std::string& p, const std::string& ln) {
      add(ln + ".weight", {2}, false);
      add(ln + ".bias", {2}, false);
      add(p + ".query.weight", {2, 2}, true);
      add(p + ".query.bias", {2}, false);
      add(p + ".key.weight", {2, 2}, true);
      add(p + ".value.weight", {2, 2}, true);
      add(p + ".value.bias", {2}, false);
      add(p + ".out.weight", {2, 2}, true);
      add(p + ".out.bias", {2}, false);
    };
    auto mlp = [&](const std::string& p) {
      add(p + ".mlp_ln.weight", {2}, false);
      add(p + ".mlp_ln.bias", {2}, false);
      add(p + ".mlp.0.weight", {8, 2}, true);
      add(p + ".mlp.0.bias", {8}, false);
      add(p + ".mlp.2.weight", {2, 8}, true);
      add(p + ".mlp.2.bias", {2}, false);
    };
    add("encoder.conv1.weight", {2, 1, 3}, true);
    add("encoder.conv1.bias", {2, 1}, false);
    add("encoder.conv2.weight", {2, 2, 3}, true);
    add("encoder.conv2.bias", {2, 1}, false);
    add("encoder.positional_embedding", {1500, 2}, false);
    attention("encoder.blocks.0.attn", "encoder.blocks.0.attn_ln");
    mlp("encoder.blocks.0");
    add("encoder.ln_post.weight", {2}, false);
    add("encoder.ln_post.bias", {2}, false);
    add("decoder.positional_embedding", {8, 2}, false);
    attention("decoder.blocks.0.attn", "decoder.blocks.0.attn_ln");
    attention("decoder.blocks.0.cross_attn", "decoder.blocks.0.cross_attn_ln");
    mlp("decoder.blocks.0");
    add("decoder.ln.weight", {2}, false);
    add("decoder.ln.bias", {2}, false);
    add("decoder.token_embedding.weight", {51864, 2}, true);  // last: the bulk of the file
  }
  void write(const fs::path& p) const { write_model_file(p, h, filters, vocab, tensors); }
};

void expect_config_error(const fs::path& path, const std::string& what) {
  try {
    WhisperEngine engine(ModelFile::load(path));
    FAIL() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config) << what;
    EXPECT_NE(std::string(e.what()).find("whisper model"), std::string::npos) << e.what();
  }
}

TEST(WhisperModelFile, SmallSyntheticModelLoadsAndRuns) {
  test::TempDir dir;
  SmallModel m;
  m.write(dir.path() / "small.bin");
  WhisperEngine engine(ModelFile::load(dir.path() / "small.bin"));
  DecodingOptions o;
  o.sample_len = 3;
  o.without_timestamps = true;
  auto r = engine.decode(
      engine.encode(engine.mel(std::vector<float>(16000, 0.1f), kChunkSamples - 16000)), o);
  EXPECT_LE(r.tokens.size(), 3u);
}

TEST(WhisperModelFile, EveryCutPointIsRefusedWithAMessage) {
  test::TempDir dir;
  SmallModel m;
  fs::path full = dir.path() / "full.bin";
  m.write(full);
  std::string bytes = test::read_file(full);
  const std::size_t bulk = bytes.size() - 51864 * 2 * 2;  // where the last tensor's data starts
  fs::path cut = dir.path() / "cut.bin";
  std::size_t tried = 0;
  for (std::size_t n = 0; n < bytes.size(); n += (n < bulk + 64 ? 1 : 997)) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(n));
    expect_config_error(cut, "cut at " + std::to_string(n));
    ++tried;
    if (HasFailure()) break;
  }
  EXPECT_GT(tried, bulk);
}

// Writes `bytes` with the int32 at `offset` replaced.
void write_patched(const fs::path& path, std::string bytes, std::size_t offset,
                   std::int32_t value) {
  std::memcpy(bytes.data() + offset, &value, 4);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(WhisperModelFile, HostileHeadersAreRefused) {
  test::TempDir dir;
  SmallModel m;
  fs::path full = dir.path() / "full.bin", bad = dir.path() / "bad.bin";
  m.write(full);
  std::string bytes = test::read_file(full);
  write_patched(bad, bytes, 0, 0x12345678);
  expect_config_error(bad, "bad magic");
  write_patched(bad, bytes, 4, 1000000);
  expect_config_error(bad, "huge vocabulary");
  write_patched(bad, bytes, 4 + 10 * 4, 1002);  // ftype: q4_0 of the old quantization layout
  expect_config_error(bad, "quantization version 1");
  write_patched(bad, bytes, 4 + 10 * 4, 2010);  // ftype: a k-quant
  expect_config_error(bad, "unknown ftype");
  write_patched(bad, bytes, 4 + 11 * 4, 80);  // mel filter rows disagree with n_mels
  expect_config_error(bad, "mel rows");
  const std::size_t vocab_at = 4 + 11 * 4 + 8 + 201 * 4;
  write_patched(bad, bytes, vocab_at, -5);
  expect_config_error(bad, "negative vocabulary count");
  write_patched(bad, bytes, vocab_at + 4, 2000000000);
  expect_config_error(bad, "huge token");
  const std::size_t first_tensor = vocab_at + 4 + (4 + 1) * 256;
  write_patched(bad, bytes, first_tensor, 9);  // n_dims
  expect_config_error(bad, "nine dimensions");
  write_patched(bad, bytes, first_tensor + 4, 1 << 30);  // name length
  expect_config_error(bad, "huge name");
  write_patched(bad, bytes, first_tensor + 8, 2);  // q4_0 with rows of 2 values
  expect_config_error(bad, "q4_0 rows that are not whole blocks");
  write_patched(bad, bytes, first_tensor + 8, 12);  // q4_K
  expect_config_error(bad, "unknown tensor type");
  write_patched(bad, bytes, first_tensor + 12, 0x7fffffff);  // a dimension
  expect_config_error(bad, "huge dimension");

  // A tensor with the wrong shape names itself and both shapes.
  SmallModel wrong;
  wrong.tensors[0].shape = {3, 1, 2};
  wrong.write(bad);
  try {
    WhisperEngine engine(ModelFile::load(bad));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "'encoder.conv1.weight' has shape [3, 1, 2], expected [2, 1, 3]"),
              std::string::npos)
        << e.what();
  }
  // A missing file, a folder.
  expect_config_error(dir.path() / "none.bin", "missing");
  expect_config_error(dir.path(), "a folder");
}

TEST(WhisperModelFile, HalfConversionRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.33325195f}) {
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  }
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), float_to_half(1.0f));  // tie: to even
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
}

TEST(WhisperModelFile, F16CopiesStayCloseToF32) {
  test::TempDir dir;
  for (std::string name : {"random-tiny-ml-f32", "random-v3-small-f32", "tiny-test-f32"}) {
    fs::path f16 = dir.path() / (name + ".f16.bin");
    convert_to_f16(test::whisper_model(name), f16);
    auto file = ModelFile::load(f16);
    EXPECT_EQ(file->hparams().ftype, 1);
    // whisper.cpp's layout: 1-D tensors, conv biases and positional embeddings stay f32.
    EXPECT_GT(file->mapped_bytes(), 0u);
    WhisperEngine a(ModelFile::load(test::whisper_model(name))), b(file);
    auto clip = pad_or_trim(test::clip_samples("dev/dev_00004.wav"));
    auto fa = a.encode(a.mel(clip, 0)), fb = b.encode(b.mel(clip, 0));
    double max_diff = 0, max_abs = 0;
    for (std::size_t i = 0; i < fa.size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(double(fa[i]) - fb[i]));
      max_abs = std::max(max_abs, std::fabs(double(fa[i])));
    }
    std::cout << name << ": encoder output max |f16 - f32| = " << max_diff << " (max |f32| "
              << max_abs << ")\n";
    EXPECT_LT(max_diff, 0.02 * max_abs) << name;
    DecodingOptions o;
    o.language = "en";
    o.without_timestamps = true;
    o.sample_len = 30;
    auto ra = a.decode(fa, o), rb = b.decode(fb, o);
    EXPECT_NEAR(ra.avg_logprob, rb.avg_logprob, 0.1) << name;
  }
}

TEST(WhisperModelFile, QuantizedCopiesLoadInPlaceAndStayClose) {
  test::TempDir dir;
  for (std::string name : {"random-tiny-ml-f32", "tiny-test-f32"}) {
    WhisperEngine ref(ModelFile::load(test::whisper_model(name)));
    auto clip = pad_or_trim(test::clip_samples("dev/dev_00004.wav"));
    auto fa = ref.encode(ref.mel(clip, 0));
    DecodingOptions o;
    o.language = "en";
    o.without_timestamps = true;
    o.sample_len = 30;
    auto ra = ref.decode(fa, o);
    for (WeightType type : {WeightType::q8_0, WeightType::q4_0}) {
      fs::path out = dir.path() / (name + "." + std::string(weight_type_name(type)) + ".bin");
      convert_quantized(test::whisper_model(name), out, type);
      auto file = ModelFile::load(out);
      EXPECT_EQ(file->hparams().ftype, type == WeightType::q8_0 ? 2007 : 2002);
      EXPECT_EQ(file->weight_type(), weight_type_name(type));
      // The matrices are read from the mapping as stored: only the rest may be widened.
      std::size_t rest = 0;
      for (const auto& t : file->tensor_names()) {
        const Tensor& tensor = file->tensor_any_shape(t);
        if (tensor.shape.size() != 2 || !t.ends_with(".weight")) rest += 4 * tensor.size();
      }
      EXPECT_LE(file->owned_bytes(), rest) << name;
      EXPECT_EQ(file->tensor_any_shape("decoder.token_embedding.weight").type, type);
      WhisperEngine q(file);
      auto fb = q.encode(q.mel(clip, 0));
      double max_diff = 0, max_abs = 0;
      for (std::size_t i = 0; i < fa.size(); ++i) {
        max_diff = std::max(max_diff, std::fabs(double(fa[i]) - fb[i]));
        max_abs = std::max(max_abs, std::fabs(double(fa[i])));
      }
      std::cout << name << " " << weight_type_name(type)
                << ": encoder output max |q - f32| = " << max_diff << " (max |f32| " << max_abs
                << ")\n";
      // tiny-test is 64 wide: 4-bit weights move its few sums far more than a real model's.
      const double bound = type == WeightType::q8_0 ? 0.05 : name == "tiny-test-f32" ? 0.5 : 0.1;
      EXPECT_LT(max_diff, bound * max_abs) << name;
      auto rb = q.decode(fb, o);
      std::cout << "  avg_logprob " << ra.avg_logprob << " -> " << rb.avg_logprob << "\n";
      EXPECT_NEAR(ra.avg_logprob, rb.avg_logprob, type == WeightType::q8_0 ? 0.1 : 0.3) << name;
    }
  }
  // Quantizing twice is refused; so is an unknown target.
  fs::path q8 = dir.path() / "tiny-test-f32.q8_0.bin";
  EXPECT_THROW(convert_quantized(q8, dir.path() / "again.bin", WeightType::q4_0),
               std::runtime_error);
  EXPECT_THROW(convert_quantized(test::whisper_model("tiny-test-f32"), dir.path() / "x.bin",
                                 WeightType::q5_0),
               std::runtime_error);
}

}  // namespace
}  // namespace sra::whisper
