// The SIMD kernels of every instruction set this CPU runs (portable always) against plain
// double-precision references, over every weight type and the shapes the engine uses (widths
// that are and are not multiples of 16, 1 to 8 rows); the quantizer against its layout; the
// thread budget's sharing; linear()'s many-row products, the same whatever threads they have.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/whisper/cpu_features.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/model_writer.h"
#include "engine/whisper/simd_kernels.h"
#include "engine/whisper/thread_budget.h"
#include "engine/whisper/weight_type.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

// Sets the process's thread budget for one test and restores it however the test ends (an ASSERT
// returns early).
class BudgetTotal {
 public:
  explicit BudgetTotal(int threads) { ThreadBudget::set_total(threads); }
  ~BudgetTotal() { ThreadBudget::set_total(saved_); }
  BudgetTotal(const BudgetTotal&) = delete;
  BudgetTotal& operator=(const BudgetTotal&) = delete;

 private:
  const int saved_ = ThreadBudget::total();
};

std::vector<const SimdKernels*> kernel_sets() {
  std::vector<const SimdKernels*> sets{&simd_kernels_portable()};
  if (best_isa() >= Isa::avx2) sets.push_back(&simd_kernels_avx2());
  if (best_isa() >= Isa::avx512) sets.push_back(&simd_kernels_avx512());
  return sets;
}

std::vector<float> random_values(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A `rows` x `cols` matrix stored as `type` (f16 via float_to_half, quantized via quantize_row
// for q8_0/q4_0, hand-packed for the others) and its exact values as stored.
struct StoredMatrix {
  std::string bytes;
  std::vector<float> values;
  std::size_t row_bytes;
};

StoredMatrix store(WeightType type, int rows, int cols, unsigned seed) {
  StoredMatrix m;
  std::vector<float> v = random_values(static_cast<std::size_t>(rows) * cols, seed);
  m.row_bytes = row_bytes(type, static_cast<std::size_t>(cols));
  std::mt19937 rng(seed + 1);
  for (int r = 0; r < rows; ++r) {
    const float* row = v.data() + static_cast<std::size_t>(r) * cols;
    switch (type) {
      case WeightType::f32:
        m.bytes.append(reinterpret_cast<const char*>(row), static_cast<std::size_t>(cols) * 4);
        break;
      case WeightType::f16:
        for (int c = 0; c < cols; ++c) {
          std::uint16_t h = float_to_half(row[c]);
          m.bytes.append(reinterpret_cast<const char*>(&h), 2);
        }
        break;
      case WeightType::q8_0:
      case WeightType::q4_0:
        quantize_row(type, row, static_cast<std::size_t>(cols), m.bytes);
        break;
      default:  // random blocks of the other layouts: any bytes are valid values
        for (std::size_t b = 0; b < m.row_bytes; b += quant_block_bytes(type)) {
          std::string block(quant_block_bytes(type), '\0');
          for (auto& c : block) c = static_cast<char>(rng());
          std::uint16_t d = float_to_half(0.01f), mn = float_to_half(-0.05f);
          std::memcpy(block.data(), &d, 2);
          if (type == WeightType::q4_1 || type == WeightType::q5_1)
            std::memcpy(block.data() + 2, &mn, 2);
          m.bytes += block;
        }
    }
  }
  m.values.resize(v.size());
  for (int r = 0; r < rows; ++r) {
    dequantize_row(type, m.bytes.data() + static_cast<std::size_t>(r) * m.row_bytes,
                   m.values.data() + static_cast<std::size_t>(r) * cols,
                   static_cast<std::size_t>(cols));
  }
  return m;
}

TEST(WhisperKernels, GemvOfEveryTypeMatchesDoublePrecision) {
  const WeightType types[] = {WeightType::f32,  WeightType::f16,  WeightType::q8_0,
                              WeightType::q4_0, WeightType::q4_1, WeightType::q5_0,
                              WeightType::q5_1};
  for (const SimdKernels* k : kernel_sets()) {
    for (WeightType type : types) {
      for (int cols : {64, 96, 40}) {
        if (is_quantized(type) && cols % kQuantBlock != 0) continue;
        const int rows = 37;
        StoredMatrix w = store(type, rows, cols, 7);
        std::vector<float> bias = random_values(rows, 9);
        for (int n : {1, 2, 3, 5, 8, 13, kGemvMaxRows}) {
          std::vector<float> x = random_values(static_cast<std::size_t>(n) * cols, 11 + n);
          const int ldy = rows + 3;
          std::vector<float> y(static_cast<std::size_t>(n) * ldy, -7.0f);
          // two ranges, as the threads split them
          k->gemv(type, w.bytes.data(), w.row_bytes, cols, x.data(), n, bias.data(), y.data(), ldy,
                  0, 16);
          k->gemv(type, w.bytes.data(), w.row_bytes, cols, x.data(), n, bias.data(), y.data(), ldy,
                  16, rows);
          for (int r = 0; r < n; ++r) {
            for (int o = 0; o < rows; ++o) {
              double want = bias[o], mag = std::fabs(bias[o]);
              for (int c = 0; c < cols; ++c) {
                const double p = double(x[r * cols + c]) * w.values[o * cols + c];
                want += p;
                mag += std::fabs(p);
              }
              ASSERT_NEAR(y[r * ldy + o], want, 1e-5 * mag + 1e-6)
                  << k->name << " " << weight_type_name(type) << " cols " << cols << " n " << n;
            }
            EXPECT_EQ(y[r * ldy + rows], -7.0f) << "wrote past the range";
          }
        }
        // A row's result is the same, bit for bit, alone or batched with others.
        {
          const int n = 5;
          std::vector<float> x = random_values(static_cast<std::size_t>(n) * cols, 21);
          std::vector<float> together(static_cast<std::size_t>(n) * rows), alone(rows);
          k->gemv(type, w.bytes.data(), w.row_bytes, cols, x.data(), n, nullptr, together.data(),
                  rows, 0, rows);
          for (int r = 0; r < n; ++r) {
            k->gemv(type, w.bytes.data(), w.row_bytes, cols, x.data() + r * cols, 1, nullptr,
                    alone.data(), rows, 0, rows);
            for (int o = 0; o < rows; ++o) ASSERT_EQ(alone[o], together[r * rows + o]) << k->name;
          }
        }
        // widen_rows gives the stored values exactly
        std::vector<float> wide(static_cast<std::size_t>(5) * cols);
        k->widen_rows(type, w.bytes.data(), w.row_bytes, cols, 3, 8, wide.data());
        for (int i = 0; i < 5 * cols; ++i)
          ASSERT_EQ(wide[i], w.values[3 * cols + i]) << k->name << " " << weight_type_name(type);
      }
    }
  }
}

TEST(WhisperKernels, SoftmaxGeluLayerNormAndAttentionPieces) {
  for (const SimdKernels* k : kernel_sets()) {
    for (int n : {1, 15, 16, 33, 1500}) {
      std::vector<float> x = random_values(n, 3, 4.0f);
      if (n > 3) x[2] = -INFINITY;  // a masked position
      std::vector<float> got = x;
      k->softmax(got.data(), n, 0.125f);
      double max = -INFINITY, sum = 0;
      for (float v : x) max = std::max(max, 0.125 * v);
      for (float v : x) sum += std::exp(0.125 * v - max);
      for (int i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], std::exp(0.125 * x[i] - max) / sum, 2e-7) << k->name << " n " << n;
      }
      if (n > 3) {
        EXPECT_EQ(got[2], 0.0f);
      }

      std::vector<float> g = random_values(n, 4, 3.0f);
      std::vector<float> in = g;
      k->gelu(g.data(), g.size());
      for (int i = 0; i < n; ++i) {
        const double want = 0.5 * in[i] * (1.0 + std::erf(in[i] / std::sqrt(2.0)));
        ASSERT_NEAR(g[i], want, 5e-7 * (1 + std::fabs(in[i])))
            << k->name << " gelu(" << in[i] << ")";
      }
      // The recurrent gates' sigmoid and tanh, over a range that saturates both.
      const std::vector<float> raw = random_values(n, 5, 20.0f);
      std::vector<float> sg = raw, th = raw;
      k->sigmoid(sg.data(), sg.size());
      k->tanh(th.data(), th.size());
      for (int i = 0; i < n; ++i) {
        ASSERT_NEAR(sg[i], 1.0 / (1.0 + std::exp(-static_cast<double>(raw[i]))), 2e-7)
            << k->name << " sigmoid(" << raw[i] << ")";
        ASSERT_NEAR(th[i], std::tanh(static_cast<double>(raw[i])), 4e-7)
            << k->name << " tanh(" << raw[i] << ")";
      }
    }
    std::vector<float> all_masked(20, -INFINITY);
    k->softmax(all_masked.data(), 20, 1.0f);
    for (float v : all_masked) EXPECT_EQ(v, 0.0f);
    // exp's range: large and tiny scores
    std::vector<float> extremes{80.0f, -80.0f, 0.0f, -200.0f};
    k->softmax(extremes.data(), 4, 1.0f);
    EXPECT_NEAR(extremes[0], 1.0, 1e-6);
    EXPECT_EQ(extremes[3], 0.0f);

    for (int d : {64, 512, 50}) {
      std::vector<float> x = random_values(d, 5, 2.0f), gamma = random_values(d, 6),
                         beta = random_values(d, 7), out(d);
      for (auto& v : x) v += 3.0f;  // an offset the mean must remove
      k->layer_norm(x.data(), d, gamma.data(), beta.data(), out.data());
      double mean = 0, var = 0;
      for (float v : x) mean += v;
      mean /= d;
      for (float v : x) var += (v - mean) * (v - mean);
      var /= d;
      for (int i = 0; i < d; ++i)
        ASSERT_NEAR(out[i], (x[i] - mean) / std::sqrt(var + 1e-5) * gamma[i] + beta[i], 2e-5)
            << k->name << " d " << d;
    }

    // scores against transposed keys; weighted sums of value rows (1 row and several)
    const int dh = 64, t = 75, ldv = 3 * dh;
    std::vector<float> kt = random_values(dh * t, 9);
    for (int rows : {1, 3, 8}) {
      const int ldq = dh + 5;
      std::vector<float> q = random_values(rows * ldq, 8), s(rows * t);
      k->scores_kt_rows(q.data(), ldq, rows, kt.data(), dh, t, s.data());
      for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < t; ++j) {
          double want = 0;
          for (int c = 0; c < dh; ++c) want += double(q[r * ldq + c]) * kt[c * t + j];
          ASSERT_NEAR(s[r * t + j], want, 1e-4) << k->name;
        }
      }
    }
    for (int rows : {1, 3, 5}) {
      const int ldp = t + 2, ldo = dh + 16;
      std::vector<float> p = random_values(rows * ldp, 10), v = random_values(t * ldv, 11),
                         o(rows * ldo);
      k->weighted_sum_rows(p.data(), ldp, rows, t, v.data() + dh, ldv, dh, o.data(), ldo);
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < dh; ++c) {
          double want = 0;
          for (int j = 0; j < t; ++j) want += double(p[r * ldp + j]) * v[j * ldv + dh + c];
          ASSERT_NEAR(o[r * ldo + c], want, 1e-4) << k->name;
        }
      }
    }
    std::vector<float> q = random_values(dh, 8);
    EXPECT_NEAR(
        k->dot(q.data(), kt.data(), 37),
        [&] {
          double d = 0;
          for (int i = 0; i < 37; ++i) d += double(q[i]) * kt[i];
          return d;
        }(),
        1e-5);
  }
}

TEST(WhisperKernels, QuantizedRowsRoundTripWithinHalfAStep) {
  std::vector<float> x = random_values(256, 12, 0.2f);
  x[5] = 0.0f;
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;  // an all-zero block: scale 0
  for (WeightType type : {WeightType::q8_0, WeightType::q4_0}) {
    std::string bytes;
    quantize_row(type, x.data(), x.size(), bytes);
    ASSERT_EQ(bytes.size(), row_bytes(type, x.size()));
    std::vector<float> back(x.size());
    dequantize_row(type, bytes.data(), back.data(), x.size());
    for (std::size_t b = 0; b < x.size(); b += 32) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
      // q8_0 steps are amax / 127; q4_0's amax / 8, and the far end may clip by one step.
      const float step = type == WeightType::q8_0 ? amax / 127 : amax / 8;
      const float tolerance = type == WeightType::q8_0 ? step * 0.5f + amax * 1e-3f : step * 1.01f;
      for (int j = 0; j < 32; ++j)
        ASSERT_NEAR(back[b + j], x[b + j], tolerance + 1e-7)
            << weight_type_name(type) << " at " << b + j;
    }
  }
}

TEST(WhisperKernels, ThreadBudgetSharesTheCoresBetweenCalls) {
  BudgetTotal total(8);
  EXPECT_EQ(ThreadBudget::current(), 1) << "outside any call: one thread";
  {
    ThreadBudget::Scope a(8);
    EXPECT_EQ(ThreadBudget::current(), 8);
    {
      ThreadBudget::Scope nested(8);  // the same call: not counted twice
      EXPECT_EQ(ThreadBudget::active(), 1);
    }
    std::thread other([] {
      ThreadBudget::Scope b(8);
      EXPECT_EQ(ThreadBudget::active(), 2);
      EXPECT_EQ(ThreadBudget::current(), 4);
    });
    other.join();
    EXPECT_EQ(ThreadBudget::current(), 8);
  }
  {
    ThreadBudget::Scope capped(3);
    EXPECT_EQ(ThreadBudget::current(), 3) << "the engine's own cap";
  }
  EXPECT_EQ(ThreadBudget::active(), 0);
}

// A product's result must not depend on the threads its call has (fewer when requests run side by
// side): a chunk transcribed in a batch equals the chunk alone. OpenBLAS's sgemm sums a column
// in another order by where it falls in its block on some CPUs (its Haswell/Zen edge kernels), so
// the column blocks must not follow the threads of the moment.
TEST(WhisperKernels, LinearOfManyRowsIsTheSameWhateverThreadsItHas) {
  BudgetTotal total(4);
  for (const char* model : {"tiny-test-f32", "tiny-test-f16"}) {
    auto file = ModelFile::load(test::whisper_model(model));
    for (const char* name : {"encoder.blocks.0.mlp.0", "encoder.blocks.0.attn.query"}) {
      const Tensor& w = file->tensor_any_shape(std::string(name) + ".weight");
      const Tensor& b = file->tensor_any_shape(std::string(name) + ".bias");
      const int out = static_cast<int>(w.rows()), in = static_cast<int>(w.cols());
      for (int n : {kGemvMaxRows + 1, 100, 1500}) {
        const std::vector<float> x = random_values(static_cast<std::size_t>(n) * in, 5 + n);
        std::vector<float> first;
        for (int threads : {1, 2, 3, 4}) {
          ThreadBudget::Scope scope(threads);
          ASSERT_EQ(ThreadBudget::current(), threads);
          std::vector<float> y(static_cast<std::size_t>(n) * out);
          linear(x.data(), n, in, w, &b, y.data(), LinearMath::exact);
          if (first.empty()) {
            first = y;
          } else {
            ASSERT_EQ(y, first) << model << " " << name << ", " << n << " rows, " << threads
                                << " threads";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sra::whisper
