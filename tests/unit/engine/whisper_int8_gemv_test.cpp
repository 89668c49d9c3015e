// The decoder's block products (engine/whisper/int8_gemv.h) over every quantized type: the VNNI
// and AVX2 kernels against the portable one, bit for bit (odd block counts, the extreme stored
// values, zero and non-finite activation blocks, partial output ranges, 1 to 32 rows); every
// output against the double-precision product of the widened stored row and the unquantized
// activations, within the stated bound; the activation quantizer's blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/whisper/int8_gemm.h"
#include "engine/whisper/int8_gemv.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/model_writer.h"
#include "engine/whisper/weight_type.h"
#include "test_paths.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

const WeightType kBlockTypes[] = {WeightType::q8_0, WeightType::q4_0, WeightType::q4_1,
                                  WeightType::q5_0, WeightType::q5_1};

// `rows` stored rows of `cols` values: random bytes under random scales and minimums; row 0 has
// every stored byte at its extreme (q8_0: -128, the value whose magnitude needs 8 bits).
std::vector<unsigned char> random_block_rows(WeightType type, int rows, int cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f), minimum(-0.5f, 0.5f);
  const std::size_t block_bytes = quant_block_bytes(type);
  std::vector<unsigned char> w(row_bytes(type, cols) * rows);
  for (std::size_t at = 0; at < w.size(); at += block_bytes) {
    unsigned char* b = w.data() + at;
    for (std::size_t i = 0; i < block_bytes; ++i) b[i] = static_cast<unsigned char>(byte(rng));
    const std::uint16_t d = float_to_half(scale(rng)), m = float_to_half(minimum(rng));
    std::memcpy(b, &d, 2);
    if (type == WeightType::q4_1 || type == WeightType::q5_1) std::memcpy(b + 2, &m, 2);
    if (at < row_bytes(type, cols)) {  // row 0
      const std::size_t values = type == WeightType::q8_0 ? 2 : block_bytes - 16;
      std::memset(b + values, type == WeightType::q8_0 ? 0x80 : 0xff, block_bytes - values);
    }
  }
  return w;
}

std::vector<float> random_block_activations(int n, int cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> x(static_cast<std::size_t>(n) * cols);
  for (auto& v : x) v = normal(rng);
  x[0] = 30.0f;  // an outlier: its block's scale is large
  if (n > 1) {   // row 1: a zero block and a non-finite one (both taken as zeros)
    std::fill(x.begin() + cols, x.begin() + cols + 32, 0.0f);
    if (cols >= 64) x[cols + 40] = INFINITY;
  }
  return x;
}

std::vector<float> run_gemv(BlockGemvKernel kernel, WeightType type,
                            const std::vector<unsigned char>& w, int rows,
                            const BlockActivations& a, const float* bias, int o_begin, int o_end) {
  std::vector<float> y(static_cast<std::size_t>(a.n) * rows, -7.0f);
  kernel({type, w.data(), row_bytes(type, a.cols), &a, bias, y.data(), rows}, o_begin, o_end);
  return y;
}

std::vector<std::pair<const char*, BlockGemvKernel>> fast_gemv_kernels() {
  std::vector<std::pair<const char*, BlockGemvKernel>> kernels;
  if (int8_vnni_supported()) kernels.emplace_back("AVX-512 VNNI", int8_gemv_avx512_vnni);
  if (int8_avx2_supported()) kernels.emplace_back("AVX2", int8_gemv_avx2);
  return kernels;
}

struct GemvShape {
  int n, rows, cols;
};
// One block, an odd number of blocks (a pair's second half empty), the decoder's widths; one
// sequence, beams, a batch of requests, the most rows gemv takes.
const GemvShape kGemvShapes[] = {{1, 3, 32},    {2, 5, 96},     {3, 17, 512}, {5, 40, 384},
                                 {8, 33, 2048}, {32, 20, 1280}, {1, 64, 160}};

TEST(WhisperInt8Gemv, FastKernelsEqualThePortableOneBitForBit) {
  if (fast_gemv_kernels().empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  unsigned seed = 1;
  for (WeightType type : kBlockTypes) {
    for (const GemvShape& s : kGemvShapes) {
      const auto w = random_block_rows(type, s.rows, s.cols, seed++);
      const auto x = random_block_activations(s.n, s.cols, seed++);
      std::vector<float> bias(s.rows);
      for (int o = 0; o < s.rows; ++o) bias[o] = 0.25f * static_cast<float>(o % 7) - 0.5f;
      BlockActivations a;
      quantize_blocks(x.data(), s.n, s.cols, a);
      const int o_begin = s.rows > 4 ? 2 : 0;  // a part of the rows, as one thread's share
      for (const float* b :
           {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
        const auto reference = run_gemv(int8_gemv_portable, type, w, s.rows, a, b, o_begin, s.rows);
        for (const auto& [name, kernel] : fast_gemv_kernels()) {
          const auto y = run_gemv(kernel, type, w, s.rows, a, b, o_begin, s.rows);
          for (std::size_t i = 0; i < y.size(); ++i) {
            ASSERT_EQ(0, std::memcmp(&y[i], &reference[i], sizeof(float)))
                << name << " " << weight_type_name(type) << " n=" << s.n << " rows=" << s.rows
                << " cols=" << s.cols << " output " << i << ": " << y[i] << " vs " << reference[i];
          }
        }
      }
    }
  }
}

TEST(WhisperInt8Gemv, EveryOutputIsWithinTheStatedBoundOfTheExactProduct) {
  unsigned seed = 100;
  for (WeightType type : kBlockTypes) {
    double worst_ratio = 0, largest_error = 0;
    for (const GemvShape& s : kGemvShapes) {
      const auto w = random_block_rows(type, s.rows, s.cols, seed++);
      auto x = random_block_activations(s.n, s.cols, seed++);
      if (s.n > 1) x[s.cols + 40 % s.cols] = 0.0f;  // finite rows only: the exact product exists
      BlockActivations a;
      quantize_blocks(x.data(), s.n, s.cols, a);
      const auto y = run_gemv(int8_gemv_kernel(), type, w, s.rows, a, nullptr, 0, s.rows);
      std::vector<float> row(s.cols);
      for (int o = 0; o < s.rows; ++o) {
        dequantize_row(type, w.data() + o * row_bytes(type, s.cols), row.data(), s.cols);
        for (int r = 0; r < s.n; ++r) {
          const float* xr = x.data() + static_cast<std::size_t>(r) * s.cols;
          double exact = 0;
          for (int c = 0; c < s.cols; ++c) exact += static_cast<double>(row[c]) * xr[c];
          const double error = std::fabs(y[static_cast<std::size_t>(r) * s.rows + o] - exact);
          const double bound = int8_gemv_error_bound(xr, row.data(), s.cols);
          ASSERT_LE(error, bound) << weight_type_name(type) << " n=" << s.n << " cols=" << s.cols
                                  << " row " << o << " x " << r;
          worst_ratio = std::max(worst_ratio, error / bound);
          largest_error = std::max(largest_error, error);
        }
      }
    }
    // The activations' quantization is felt (the test compares against something other than
    // itself), and the bound is not loose by orders of magnitude.
    EXPECT_GT(largest_error, 0.0) << weight_type_name(type);
    EXPECT_GT(worst_ratio, 0.05) << weight_type_name(type);
  }
}

TEST(WhisperInt8Gemv, QuantizerKeepsEachBlocksValuesWithinHalfAStep) {
  const int cols = 96;
  auto x = random_block_activations(2, cols, 7);
  BlockActivations a;
  quantize_blocks(x.data(), 2, cols, a);
  ASSERT_EQ(a.q.size(), x.size());
  for (int r = 0; r < 2; ++r) {
    for (int b = 0; b < cols / 32; ++b) {
      const std::size_t i = static_cast<std::size_t>(r) * 3 + b;
      int sum = 0;
      bool finite = true;
      for (int j = 0; j < 32; ++j) finite = finite && std::isfinite(x[r * cols + b * 32 + j]);
      for (int j = 0; j < 32; ++j) {
        const std::size_t at = static_cast<std::size_t>(r) * cols + b * 32 + j;
        sum += a.q[at];
        ASSERT_LE(std::abs(static_cast<int>(a.q[at])), 127);
        if (finite)
          ASSERT_LE(std::fabs(a.q[at] * a.d[i] - x[at]), a.d[i] * 0.5f * (1 + 1e-5f) + 1e-30f);
      }
      if (!finite) EXPECT_EQ(a.d[i], 0.0f) << "a block with a non-finite value is taken as zeros";
      EXPECT_FLOAT_EQ(a.ds[i], a.d[i] * static_cast<float>(sum));
    }
  }
  EXPECT_EQ(a.d[3], 0.0f);  // row 1's first block is all zeros
}

TEST(WhisperInt8Gemv, TakesEveryBlockQuantizedTypeAndNoOther) {
  for (WeightType type : kBlockTypes)
    EXPECT_TRUE(int8_gemv_supports(type)) << weight_type_name(type);
  EXPECT_FALSE(int8_gemv_supports(WeightType::f32));
  EXPECT_FALSE(int8_gemv_supports(WeightType::f16));
}

// linear()'s choice: a decoding step's few rows over quantized weights go through the block
// kernel (the same bits as calling it), more rows (a long prompt) and f16 weights stay exact.
TEST(WhisperInt8Gemv, LinearTakesFewRowsOfQuantizedWeightsThroughTheBlocks) {
  test::TempDir dir;
  const auto q8 = dir.path() / "q8_0.bin";
  const auto f16 = test::whisper_model("random-tiny-ml-f32");
  convert_quantized(f16, q8, WeightType::q8_0);
  auto quantized = ModelFile::load(q8);
  auto exact_file = ModelFile::load(f16);
  const std::string name = "decoder.blocks.0.mlp.0.weight";
  const Tensor& w = quantized->tensor_any_shape(name);
  ASSERT_EQ(w.type, WeightType::q8_0);
  const int out = static_cast<int>(w.rows()), in = static_cast<int>(w.cols());
  for (int n : {1, 5, kGemvMaxRows + 8}) {
    auto x = random_block_activations(n, in, 40 + n);
    for (float& v : x) v = std::isfinite(v) ? v : 1.0f;  // comparable outputs (no NaN)
    std::vector<float> blocks(static_cast<std::size_t>(n) * out), exact(blocks.size());
    linear(x.data(), n, in, w, nullptr, blocks.data(), LinearMath::int8_blocks);
    linear(x.data(), n, in, w, nullptr, exact.data(), LinearMath::exact);
    if (n > kGemvMaxRows) {
      EXPECT_EQ(blocks, exact) << n << " rows: exact";
      continue;
    }
    BlockActivations a;
    quantize_blocks(x.data(), n, in, a);
    std::vector<float> direct(blocks.size());
    int8_gemv_kernel()({w.type, static_cast<const unsigned char*>(w.raw), w.row_bytes(), &a,
                        nullptr, direct.data(), out},
                       0, out);
    EXPECT_EQ(blocks, direct) << n << " rows: the block kernel";
    EXPECT_NE(blocks, exact) << n << " rows: not the exact product";
  }
  const Tensor& wide = exact_file->tensor_any_shape(name);  // not block-quantized: exact
  auto x = random_block_activations(2, in, 9);
  for (float& v : x) v = std::isfinite(v) ? v : 1.0f;
  std::vector<float> a(2 * out), b(2 * out);
  linear(x.data(), 2, in, wide, nullptr, a.data(), LinearMath::int8_blocks);
  linear(x.data(), 2, in, wide, nullptr, b.data(), LinearMath::exact);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace sra::whisper
