// The int8 products (engine/whisper/int8_gemm.h): the AMX, VNNI and AVX2 kernels against the
// portable one, bit for bit; every output against the double-precision product of the unquantized
// operands within the stated bound (and the bound itself small); linear() with int8 math on a
// quantized model's encoder against the exact path; the packed layout and the weight sums.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/whisper/engine.h"
#include "engine/whisper/int8_gemm.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/model_writer.h"
#include "engine/whisper/thread_budget.h"
#include "test_paths.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

std::vector<float> int8_random_values(std::size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Shape {
  int n, rows, cols;
};
// Rows and columns that are and are not multiples of the packing (16 rows, 64 columns), one row
// of activations and many (and not a multiple of the AMX tiles' 16 or 32), the widths the encoders
// use.
const Shape kShapes[] = {{1, 1, 1},     {3, 16, 4},     {5, 17, 7},    {9, 33, 130},   {17, 31, 64},
                         {50, 64, 512}, {97, 200, 384}, {6, 48, 2048}, {130, 512, 512}};

std::vector<float> run(Int8Kernel kernel, const std::vector<float>& x, const Int8Matrix& w, int n,
                       const float* bias) {
  Int8Activations a;
  a.n = n;
  a.depth = w.depth;
  a.bytes.assign(static_cast<std::size_t>((n + 15) / 16 * 16) * w.depth, 255);  // room: AMX tiles
  a.scales.resize(n);
  int8_quantizer()(x.data(), w.cols, 0, n, a);
  std::vector<float> y(static_cast<std::size_t>(n) * w.rows, NAN);
  kernel({&a, &w, bias, y.data(), w.rows}, 0, n);
  return y;
}

// The kernels this CPU can run besides the portable one.
std::vector<std::pair<const char*, Int8Kernel>> fast_kernels() {
  std::vector<std::pair<const char*, Int8Kernel>> kernels;
  if (int8_amx_supported()) kernels.emplace_back("AMX-INT8", int8_kernel_amx);
  if (int8_vnni_supported()) kernels.emplace_back("AVX-512 VNNI", int8_kernel_avx512_vnni);
  if (int8_avx2_supported()) kernels.emplace_back("AVX2", int8_kernel_avx2);
  return kernels;
}

TEST(WhisperInt8, FastKernelsEqualThePortableOneBitForBit) {
  if (fast_kernels().empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  unsigned seed = 1;
  for (const Shape& s : kShapes) {
    auto w = int8_random_values(static_cast<std::size_t>(s.rows) * s.cols, seed++, 0.05f);
    auto x = int8_random_values(static_cast<std::size_t>(s.n) * s.cols, seed++, 2.0f);
    // A zero row on each side, and an outlier: the scales' edge cases.
    std::fill(w.begin(), w.begin() + s.cols, 0.0f);
    if (s.n > 1) std::fill(x.begin() + s.cols, x.begin() + 2 * s.cols, 0.0f);
    x.back() = 40.0f;
    // The largest products of one sign (127 * 127 in every pair): where 16-bit pairs would
    // saturate if the AVX2 kernel multiplied q + 128.
    if (s.rows > 1) std::fill(w.begin() + s.cols, w.begin() + 2 * s.cols, -0.05f);
    std::fill(x.begin(), x.begin() + s.cols, 2.0f);
    auto bias = int8_random_values(s.rows, seed++, 1.0f);
    const Int8Matrix m = quantize_weight_rows(w.data(), s.rows, s.cols);
    for (const float* b :
         {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
      auto a = run(int8_kernel_portable, x, m, s.n, b);
      for (const auto& [name, kernel] : fast_kernels()) {
        auto v = run(kernel, x, m, s.n, b);
        ASSERT_EQ(std::memcmp(a.data(), v.data(), a.size() * sizeof(float)), 0)
            << name << " " << s.n << "x" << s.rows << "x" << s.cols;
      }
    }
  }
}

TEST(WhisperInt8, AvxQuantizerWritesThePortableOnesBytes) {
  if (!int8_vnni_supported()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  for (int cols : {1, 7, 16, 33, 512, 2048}) {
    const int n = 6;
    auto x = int8_random_values(static_cast<std::size_t>(n) * cols, cols, 3.0f);
    x[cols] = NAN;  // row 1: not finite, taken as zeros
    std::fill(x.begin() + 2 * cols, x.begin() + 3 * cols, 0.0f);  // row 2: zeros
    x[3 * cols] = -0.0f;                                          // ties and signed zeros in row 3
    if (cols > 2) x[3 * cols + 1] = 0.5f, x[3 * cols + 2] = -64.0f;
    Int8Activations a, b;
    for (Int8Activations* t : {&a, &b}) {
      t->n = n;
      t->depth = (cols + 63) / 64 * 64;
      t->bytes.assign(static_cast<std::size_t>(n) * t->depth, 7);
      t->scales.assign(n, -1.0f);
    }
    quantize_activation_rows(x.data(), cols, 0, n, a);
    quantize_activation_rows_avx512(x.data(), cols, 0, n, b);
    EXPECT_EQ(a.bytes, b.bytes) << cols;
    EXPECT_EQ(a.scales, b.scales) << cols;
    EXPECT_EQ(a.scales[1], 0.0f);
  }
}

TEST(WhisperInt8, AvxWeightQuantizerWritesThePortableOnesMatrix) {
  if (!int8_vnni_supported()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  for (const Shape& s : kShapes) {
    auto w = int8_random_values(static_cast<std::size_t>(s.rows) * s.cols, s.cols + s.rows, 0.1f);
    if (s.rows > 2) w[s.cols] = INFINITY, w[2 * s.cols] = 0.5f;  // a row taken as zeros, a tie
    Int8Matrix a = empty_int8_matrix(s.rows, s.cols), b = empty_int8_matrix(s.rows, s.cols);
    quantize_weight_rows(w.data(), 0, s.rows, a);
    quantize_weight_rows_avx512(w.data(), 0, s.rows, b);
    EXPECT_EQ(a.packed, b.packed) << s.rows << "x" << s.cols;
    EXPECT_EQ(a.scales, b.scales);
    EXPECT_EQ(a.sums, b.sums);
  }
}

TEST(WhisperInt8, EveryOutputIsWithinTheStatedBoundOfTheExactProduct) {
  unsigned seed = 100;
  double worst_share = 0;  // the largest error seen, as a share of its bound
  for (const Shape& s : kShapes) {
    auto w = int8_random_values(static_cast<std::size_t>(s.rows) * s.cols, seed++, 0.05f);
    auto x = int8_random_values(static_cast<std::size_t>(s.n) * s.cols, seed++, 2.0f);
    const Int8Matrix m = quantize_weight_rows(w.data(), s.rows, s.cols);
    auto y = run(int8_kernel(), x, m, s.n, nullptr);
    for (int r = 0; r < s.n; ++r) {
      const float* xr = x.data() + static_cast<std::size_t>(r) * s.cols;
      for (int o = 0; o < s.rows; ++o) {
        const float* wr = w.data() + static_cast<std::size_t>(o) * s.cols;
        double exact = 0, magnitude = 0;
        for (int c = 0; c < s.cols; ++c) {
          exact += static_cast<double>(xr[c]) * wr[c];
          magnitude += std::fabs(static_cast<double>(xr[c]) * wr[c]);
        }
        const double bound = int8_error_bound(xr, wr, s.cols);
        const double error = std::fabs(y[static_cast<std::size_t>(r) * s.rows + o] - exact);
        ASSERT_LE(error, bound) << s.n << "x" << s.rows << "x" << s.cols << " at " << r << "," << o;
        worst_share = std::max(worst_share, error / bound);
        // The bound says something: a few percent of the terms' magnitude at most.
        if (s.cols >= 128) EXPECT_LT(bound, 0.05 * magnitude);
      }
    }
  }
  std::cout << "largest error: " << worst_share << " of its bound\n";
  EXPECT_GT(worst_share, 0.01);  // the errors are real, and the bound not absurdly loose
}

TEST(WhisperInt8, PackingKeepsEachRowsValuesAndSums) {
  const int rows = 21, cols = 10;
  auto w = int8_random_values(rows * cols, 7, 1.0f);
  const Int8Matrix m = quantize_weight_rows(w.data(), rows, cols);
  EXPECT_EQ(m.depth, 64);
  EXPECT_EQ(m.packed.size(), 32u * 64u);
  for (int r = 0; r < rows; ++r) {
    float max = 0;
    for (int c = 0; c < cols; ++c) max = std::max(max, std::fabs(w[r * cols + c]));
    EXPECT_FLOAT_EQ(m.scales[r], max / 127.0f);
    int sum = 0;
    const std::int8_t* group = m.packed.data() + (r / 16) * m.group_bytes();
    for (int c = 0; c < m.depth; ++c) {
      const int q = group[(c / 4) * 64 + (r % 16) * 4 + c % 4];
      if (c >= cols) {
        EXPECT_EQ(q, 0);
        continue;
      }
      EXPECT_LE(std::fabs(q * m.scales[r] - w[r * cols + c]), m.scales[r] * 0.5f * 1.0001f);
      sum += q;
    }
    EXPECT_EQ(m.sums[r], sum);
  }
  for (int r = rows; r < 32; ++r) EXPECT_EQ(m.scales[r], 0.0f);
}

// A quantized model's encoder with int8 products stays close to its exact products, and the
// decoded tokens' log-probability with it.
TEST(WhisperInt8, EncoderWithInt8ProductsStaysCloseToTheExactOne) {
  test::TempDir dir;
  const auto q8 = dir.path() / "q8_0.bin";
  convert_quantized(test::whisper_model("random-tiny-ml-f32"), q8, WeightType::q8_0);
  auto file = ModelFile::load(q8);
  WhisperEngine exact(file), int8(file);
  int8.set_math(LinearMath::int8);
  exact.set_threads(2);
  int8.set_threads(2);
  auto clip = pad_or_trim(test::clip_samples("dev/dev_00004.wav"));
  auto fa = exact.encode(exact.mel(clip, 0));
  auto fb = int8.encode(int8.mel(clip, 0));
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < fa.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(fa[i]) - fb[i]));
    max_abs = std::max(max_abs, std::fabs(double(fa[i])));
  }
  std::cout << "encoder output max |int8 - f32| = " << max_diff << " (max |f32| " << max_abs
            << ")\n";
  EXPECT_GT(max_diff, 0.0);  // the int8 path ran
  EXPECT_LT(max_diff, 0.05 * max_abs);
  DecodingOptions o;
  o.language = "en";
  o.without_timestamps = true;
  o.sample_len = 30;
  auto ra = exact.decode(fa, o);
  auto rb = int8.decode(fb, o);
  EXPECT_NEAR(ra.avg_logprob, rb.avg_logprob, 0.1);
}

}  // namespace
}  // namespace sra::whisper
