#include "engine/whisper/bf16_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/errors.h"
#include "engine/whisper/cpu_features.h"

namespace sra::whisper {

std::uint16_t to_bf16(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const std::uint32_t sign = bits & 0x80000000u;
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);  // NaN
  if (magnitude < 0x00800000u) return static_cast<std::uint16_t>(sign >> 16);  // zero, subnormal
  // Nearest, ties to even: add half an ulp of the kept bits, less one unless the kept bit is odd.
  const std::uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

float from_bf16(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

Bf16Matrix empty_bf16_matrix(int rows, int cols) {
  Bf16Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.depth = (cols + kBf16Depth - 1) / kBf16Depth * kBf16Depth;
  const int padded_rows = (rows + kBf16Group - 1) / kBf16Group * kBf16Group;
  m.packed.assign(static_cast<std::size_t>(padded_rows) * m.depth, 0);
  return m;
}

void round_weight_rows_bf16(const float* w, int r_begin, int r_end, Bf16Matrix& m) {
  const int cols = m.cols;
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = w + static_cast<std::size_t>(r - r_begin) * cols;
    std::uint16_t* group =
        m.packed.data() + static_cast<std::size_t>(r / kBf16Group) * m.group_values();
    const int lane = r % kBf16Group;
    for (int c = 0; c < cols; ++c)
      group[static_cast<std::size_t>(c / 2) * 32 + lane * 2 + c % 2] = to_bf16(row[c]);
  }
}

void round_activation_rows_bf16(const float* x, int cols, int r_begin, int r_end,
                                Bf16Activations& out) {
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = x + static_cast<std::size_t>(r) * cols;
    std::uint16_t* v = out.values.data() + static_cast<std::size_t>(r) * out.depth;
    for (int c = 0; c < cols; ++c) v[c] = to_bf16(row[c]);
    std::fill(v + cols, v + out.depth, std::uint16_t{0});
  }
}

void bf16_kernel_portable(const Bf16Product& p, int r_begin, int r_end) {
  const Bf16Matrix& w = *p.w;
  const int steps = w.depth / 2;
  float acc[kBf16Group];
  for (int r = r_begin; r < r_end; ++r) {
    const std::uint16_t* x = p.x->values.data() + static_cast<std::size_t>(r) * p.x->depth;
    for (int g0 = 0; g0 < w.rows; g0 += kBf16Group) {
      const std::uint16_t* group =
          w.packed.data() + static_cast<std::size_t>(g0 / kBf16Group) * w.group_values();
      std::fill(acc, acc + kBf16Group, 0.0f);
      for (int s = 0; s < steps; ++s) {
        const std::uint16_t* b = group + static_cast<std::size_t>(s) * 32;
        const float a0 = from_bf16(x[2 * s]), a1 = from_bf16(x[2 * s + 1]);
        // As Intel defines vdpbf16ps: the odd column's product added first (both are exact).
        for (int lane = 0; lane < kBf16Group; ++lane) {
          acc[lane] += a1 * from_bf16(b[lane * 2 + 1]);
          acc[lane] += a0 * from_bf16(b[lane * 2]);
        }
      }
      for (int lane = 0; lane < kBf16Group && g0 + lane < w.rows; ++lane) {
        const int o = g0 + lane;
        p.y[static_cast<std::size_t>(r) * p.ldy + o] = acc[lane] + (p.bias ? p.bias[o] : 0.0f);
      }
    }
  }
}

bool bf16_avx512_supported() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return active_isa() == Isa::avx512 && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool bf16_amx_supported() {
  return bf16_avx512_supported() && amx_supported(true);
}

Bf16Kernel bf16_kernel() {
#if defined(__x86_64__)
  static const Bf16Kernel chosen = [] {
    const std::optional<std::string> asked = Config::from_environment().get("SRA_BF16_KERNEL");
    if (asked && *asked != "amx" && *asked != "avx512") {
      throw config_error("SRA_BF16_KERNEL: '" + asked->substr(0, 40) +
                         "' is not a bf16 kernel (amx or avx512)");
    }
    if (asked != "avx512" && bf16_amx_supported()) return bf16_kernel_amx;
    if (bf16_avx512_supported()) return bf16_kernel_avx512;
    return bf16_kernel_portable;
  }();
  return chosen;
#else
  return bf16_kernel_portable;
#endif
}

Bf16Rounder bf16_rounder() {
#if defined(__x86_64__)
  static const bool avx512 = bf16_avx512_supported();
  if (avx512) return round_activation_rows_bf16_avx512;
#endif
  return round_activation_rows_bf16;
}

const char* bf16_kernel_name() {
#if defined(__x86_64__)
  if (bf16_kernel() == bf16_kernel_amx) return "AMX-BF16";
  if (bf16_kernel() == bf16_kernel_avx512) return "AVX-512 BF16";
#endif
  return "portable";
}

double bf16_error_bound(const float* x, const float* w, int cols) {
  // Rounding each operand: |x' - x| <= 2^-8 |x| (8 significant bits), or |x| < 2^-126 flushed.
  // |x'w' - xw| <= (2 u + u^2) |xw| + (flushes); the float sums of the exact products x'w' add at
  // most `cols` roundings of 2^-24 of the running magnitude, bounded by sum |x'w'|.
  constexpr double u = 1.0 / 256, f = 1.0 / 16777216, tiny = 1.1754943508222875e-38;
  double exact = 0, rounded = 0, flushed = 0;
  for (int c = 0; c < cols; ++c) {
    const double a = std::fabs(static_cast<double>(x[c])), b = std::fabs(static_cast<double>(w[c]));
    exact += a * b;
    rounded += a * b * (1 + u) * (1 + u);
    flushed += tiny * (a + b + tiny);
  }
  return (2 * u + u * u) * exact + flushed + (cols + 1) * f * rounded + 1e-30;
}

}  // namespace sra::whisper
