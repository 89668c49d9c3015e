// The bfloat16 products (engine/whisper/bf16_gemm.h): rounding to bfloat16 (ties, NaN,
// infinities, subnormals) the same on every path; each kernel this CPU runs (portable, AVX-512
// BF16, AMX) within the stated bound of the double-precision product of the unrounded operands,
// the bound reached when every rounding goes one way; the packed layout; a model's encoder with
// bf16 products against its exact one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "engine/whisper/bf16_gemm.h"
#include "engine/whisper/engine.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/model_file.h"
#include "test_paths.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

std::vector<float> bf16_random_values(std::size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

float bits_to_float(std::uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

struct Shape {
  int n, rows, cols;
};
// Rows and columns that are and are not multiples of the packing (16 rows, 32 columns), one row
// of activations and many (and not a multiple of the AMX tiles' 16 or 32), the encoders' widths.
const Shape kShapes[] = {{1, 1, 1},     {3, 16, 2},     {5, 17, 7},    {17, 33, 130},
                         {50, 64, 512}, {97, 200, 384}, {6, 48, 2048}, {130, 512, 512}};

Bf16Matrix pack(const std::vector<float>& w, int rows, int cols) {
  Bf16Matrix m = empty_bf16_matrix(rows, cols);
  round_weight_rows_bf16(w.data(), 0, rows, m);
  return m;
}

std::vector<float> run(Bf16Kernel kernel, const std::vector<float>& x, const Bf16Matrix& w, int n,
                       const float* bias) {
  Bf16Activations a;
  a.n = n;
  a.depth = w.depth;
  a.values.assign(static_cast<std::size_t>((n + 15) / 16 * 16) * w.depth, 0x7FC0);  // NaN padding
  bf16_rounder()(x.data(), w.cols, 0, n, a);
  std::vector<float> y(static_cast<std::size_t>(n) * w.rows, NAN);
  kernel({&a, &w, bias, y.data(), w.rows}, 0, n);
  return y;
}

// The kernels this CPU can run.
std::vector<std::pair<const char*, Bf16Kernel>> kernels() {
  std::vector<std::pair<const char*, Bf16Kernel>> k{{"portable", bf16_kernel_portable}};
  if (bf16_avx512_supported()) k.emplace_back("AVX-512 BF16", bf16_kernel_avx512);
  if (bf16_amx_supported()) k.emplace_back("AMX-BF16", bf16_kernel_amx);
  return k;
}

TEST(WhisperBf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(to_bf16(bits_to_float(0x3F808000)), 0x3F80);          // a tie: to the even 0x3F80
  EXPECT_EQ(to_bf16(bits_to_float(0x3F818000)), 0x3F82);          // a tie: to the even 0x3F82
  EXPECT_EQ(to_bf16(bits_to_float(0x3F808001)), 0x3F81);          // above the tie
  EXPECT_EQ(to_bf16(bits_to_float(0x3F807FFF)), 0x3F80);          // below it
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to infinity
  EXPECT_EQ(to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(to_bf16(-INFINITY), 0xFF80);
  EXPECT_EQ(to_bf16(bits_to_float(0x00000001)), 0x0000);  // subnormals: zeros of their sign
  EXPECT_EQ(to_bf16(bits_to_float(0x807FFFFF)), 0x8000);
  EXPECT_EQ(to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(to_bf16(bits_to_float(0x7F800001)), 0x7FC0);  // a signalling NaN becomes quiet
  EXPECT_EQ(to_bf16(bits_to_float(0xFFFFFFFF)), 0xFFFF);
  EXPECT_EQ(from_bf16(0x3F80), 1.0f);
  EXPECT_EQ(from_bf16(0xC040), -3.0f);
  for (float v : {0.1f, -123.456f, 3e-30f, 7e30f}) {
    EXPECT_LE(std::fabs(from_bf16(to_bf16(v)) - v), std::fabs(v) / 256) << v;
  }
}

TEST(WhisperBf16, AvxRoundingWritesThePortableValues) {
  if (!bf16_avx512_supported()) GTEST_SKIP() << "this CPU has no AVX-512 BF16";
  const std::uint32_t special[] = {0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x7F800000, 0xFF800000,
                                   0x00000001, 0x807FFFFF, 0x80000000, 0x7F800001, 0xFFFFFFFF,
                                   0x00800000, 0x3F807FFF, 0x7FC00000, 0x00FFFFFF};
  for (int cols : {1, 15, 16, 33, 512}) {
    const int n = 3;
    auto x = bf16_random_values(static_cast<std::size_t>(n) * cols, cols, 5.0f);
    for (std::size_t i = 0; i < std::size(special) && i < x.size(); ++i)
      x[i] = bits_to_float(special[i]);
    Bf16Activations a, b;
    for (Bf16Activations* t : {&a, &b}) {
      t->n = n;
      t->depth = (cols + 31) / 32 * 32;
      t->values.assign(static_cast<std::size_t>(n) * t->depth, 0x1234);
    }
    round_activation_rows_bf16(x.data(), cols, 0, n, a);
    round_activation_rows_bf16_avx512(x.data(), cols, 0, n, b);
    EXPECT_EQ(a.values, b.values) << cols;
  }
}

TEST(WhisperBf16, EveryKernelIsWithinTheStatedBoundOfTheExactProduct) {
  for (const auto& [name, kernel] : kernels()) {
    unsigned seed = 100;
    double worst_share = 0;  // the largest error seen, as a share of its bound
    for (const Shape& s : kShapes) {
      auto w = bf16_random_values(static_cast<std::size_t>(s.rows) * s.cols, seed++, 0.05f);
      auto x = bf16_random_values(static_cast<std::size_t>(s.n) * s.cols, seed++, 2.0f);
      auto bias = bf16_random_values(s.rows, seed++, 1.0f);
      const Bf16Matrix m = pack(w, s.rows, s.cols);
      for (const float* b :
           {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
        auto y = run(kernel, x, m, s.n, b);
        for (int r = 0; r < s.n; ++r) {
          const float* xr = x.data() + static_cast<std::size_t>(r) * s.cols;
          for (int o = 0; o < s.rows; ++o) {
            const float* wr = w.data() + static_cast<std::size_t>(o) * s.cols;
            double exact = b ? b[o] : 0.0, magnitude = 0;
            for (int c = 0; c < s.cols; ++c) {
              exact += static_cast<double>(xr[c]) * wr[c];
              magnitude += std::fabs(static_cast<double>(xr[c]) * wr[c]);
            }
            // The bias adds its own rounding in the last sum.
            const double bound = bf16_error_bound(xr, wr, s.cols) +
                                 (b ? std::fabs(b[o]) * (s.cols + 1) / 16777216.0 : 0.0);
            const double error = std::fabs(y[static_cast<std::size_t>(r) * s.rows + o] - exact);
            ASSERT_LE(error, bound)
                << name << " " << s.n << "x" << s.rows << "x" << s.cols << " at " << r << "," << o;
            worst_share = std::max(worst_share, error / bound);
            if (s.cols >= 128) EXPECT_LT(bound, 0.02 * magnitude);  // the bound says something
          }
        }
      }
    }
    std::cout << name << ": largest error " << worst_share << " of its bound\n";
    EXPECT_GT(worst_share, 0.01) << name;  // the errors are real
  }
}

TEST(WhisperBf16, TheBoundIsReachedWhenEveryRoundingGoesOneWay) {
  // 1 + 0.99 * 2^-8 rounds down to 1 in bfloat16: each product loses almost 2^-7 of itself.
  const int cols = 512, rows = 16, n = 16;
  const float v = 1.0f + 0.99f / 256;
  std::vector<float> x(static_cast<std::size_t>(n) * cols, v),
      w(static_cast<std::size_t>(rows) * cols, v);
  const Bf16Matrix m = pack(w, rows, cols);
  for (const auto& [name, kernel] : kernels()) {
    auto y = run(kernel, x, m, n, nullptr);
    const double exact = static_cast<double>(v) * v * cols;
    const double bound = bf16_error_bound(x.data(), w.data(), cols);
    EXPECT_EQ(y[0], static_cast<float>(cols)) << name;  // every product became 1 * 1
    EXPECT_GT(std::fabs(y[0] - exact), 0.95 * bound) << name;
    EXPECT_LE(std::fabs(y[0] - exact), bound) << name;
  }
}

TEST(WhisperBf16, NonFiniteValuesReachOnlyTheirOwnOutputs) {
  const int cols = 64, rows = 32, n = 20;
  auto x = bf16_random_values(static_cast<std::size_t>(n) * cols, 5, 1.0f);
  auto w = bf16_random_values(static_cast<std::size_t>(rows) * cols, 6, 1.0f);
  x[3 * cols + 5] = NAN;        // activation row 3
  w[7 * cols + 60] = INFINITY;  // weight row 7
  const Bf16Matrix m = pack(w, rows, cols);
  for (const auto& [name, kernel] : kernels()) {
    auto y = run(kernel, x, m, n, nullptr);
    for (int r = 0; r < n; ++r) {
      for (int o = 0; o < rows; ++o) {
        const bool touched = r == 3 || o == 7;
        EXPECT_EQ(std::isfinite(y[r * rows + o]), !touched) << name << " " << r << "," << o;
      }
    }
  }
}

TEST(WhisperBf16, PackingKeepsEachRowsRoundedValues) {
  const int rows = 21, cols = 40;
  auto w = bf16_random_values(rows * cols, 7, 1.0f);
  const Bf16Matrix m = pack(w, rows, cols);
  EXPECT_EQ(m.depth, 64);
  EXPECT_EQ(m.packed.size(), 32u * 64u);
  for (int r = 0; r < 32; ++r) {
    const std::uint16_t* group = m.packed.data() + (r / 16) * m.group_values();
    for (int c = 0; c < m.depth; ++c) {
      const std::uint16_t v = group[(c / 2) * 32 + (r % 16) * 2 + c % 2];
      EXPECT_EQ(v, r < rows && c < cols ? to_bf16(w[r * cols + c]) : 0) << r << "," << c;
    }
  }
}

// A model's encoder with bf16 products stays close to its exact products, and the decoded tokens'
// log-probability with it (whichever kernel this CPU runs; the portable one elsewhere).
TEST(WhisperBf16, EncoderWithBf16ProductsStaysCloseToTheExactOne) {
  auto file = ModelFile::load(test::whisper_model("random-tiny-ml-f32"));
  WhisperEngine exact(file), bf16(file);
  bf16.set_math(LinearMath::bf16);
  exact.set_threads(2);
  bf16.set_threads(2);
  auto clip = pad_or_trim(test::clip_samples("dev/dev_00004.wav"));
  auto fa = exact.encode(exact.mel(clip, 0));
  auto fb = bf16.encode(bf16.mel(clip, 0));
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < fa.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(fa[i]) - fb[i]));
    max_abs = std::max(max_abs, std::fabs(double(fa[i])));
  }
  std::cout << bf16_kernel_name() << ": encoder output max |bf16 - f32| = " << max_diff
            << " (max |f32| " << max_abs << ")\n";
  EXPECT_GT(max_diff, 0.0);  // the bf16 path ran
  EXPECT_LT(max_diff, 0.05 * max_abs);
  DecodingOptions o;
  o.language = "en";
  o.without_timestamps = true;
  o.sample_len = 30;
  auto ra = exact.decode(fa, o);
  auto rb = bf16.decode(fb, o);
  EXPECT_NEAR(ra.avg_logprob, rb.avg_logprob, 0.1);
}

}  // namespace
}  // namespace sra::whisper
