#include "engine/whisper/int8_gemm.h"

#include <algorithm>
#include <cmath>

#include "engine/whisper/cpu_features.h"

namespace sra::whisper {
namespace {

int round_up(int n, int m) {
  return (n + m - 1) / m * m;
}

// q = x / scale rounded to the nearest integer (ties to even), within [-127, 127]. Adding and
// taking away 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer in the default
// rounding mode, exactly as nearbyint does, in a form the compiler vectorises (no library call).
inline int quantize(float x, float inverse_scale) {
  constexpr float kRound = 12582912.0f;
  const float v = std::clamp(x * inverse_scale, -127.0f, 127.0f);
  return static_cast<int>((v + kRound) - kRound);
}

// The largest |x[i]|; infinity when a value is not finite (its row is then taken as zeros).
float absolute_max(const float* x, int n) {
  float m = 0.0f;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    m = std::max(m, std::fabs(x[i]));
    finite = finite && std::isfinite(x[i]);
  }
  return finite ? m : INFINITY;
}

}  // namespace

Int8Matrix empty_int8_matrix(int rows, int cols) {
  Int8Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.depth = round_up(cols, kInt8Depth);
  const int padded_rows = round_up(rows, kInt8Group);
  m.packed.assign(static_cast<std::size_t>(padded_rows) * m.depth, 0);
  m.scales.assign(padded_rows, 0.0f);
  m.sums.assign(padded_rows, 0);
  return m;
}

void quantize_weight_rows(const float* w, int r_begin, int r_end, Int8Matrix& m) {
  const int cols = m.cols;
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = w + static_cast<std::size_t>(r - r_begin) * cols;
    const float max = absolute_max(row, cols);
    if (max == 0.0f || !std::isfinite(max)) continue;  // a zero row (a non-finite one: zeros too)
    m.scales[r] = max / 127.0f;
    const float inverse = 127.0f / max;
    std::int8_t* group =
        m.packed.data() + static_cast<std::size_t>(r / kInt8Group) * m.group_bytes();
    const int lane = r % kInt8Group;
    std::int32_t sum = 0;
    for (int c = 0; c < cols; ++c) {
      const int q = quantize(row[c], inverse);
      sum += q;
      group[static_cast<std::size_t>(c / 4) * 64 + lane * 4 + c % 4] = static_cast<std::int8_t>(q);
    }
    m.sums[r] = sum;
  }
}

Int8Matrix quantize_weight_rows(const float* w, int rows, int cols) {
  Int8Matrix m = empty_int8_matrix(rows, cols);
  quantize_weight_rows(w, 0, rows, m);
  return m;
}

void quantize_activation_rows(const float* x, int cols, int r_begin, int r_end,
                              Int8Activations& out) {
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = x + static_cast<std::size_t>(r) * cols;
    std::uint8_t* q = out.bytes.data() + static_cast<std::size_t>(r) * out.depth;
    const float max = absolute_max(row, cols);
    if (max == 0.0f || !std::isfinite(max)) {
      out.scales[r] = 0.0f;
      std::fill(q, q + out.depth, std::uint8_t{128});
      continue;
    }
    out.scales[r] = max / 127.0f;
    const float inverse = 127.0f / max;
    for (int c = 0; c < cols; ++c)
      q[c] = static_cast<std::uint8_t>(quantize(row[c], inverse) + 128);
    std::fill(q + cols, q + out.depth, std::uint8_t{128});
  }
}

void int8_kernel_portable(const Int8Product& p, int r_begin, int r_end) {
  const Int8Matrix& w = *p.w;
  const int steps = w.depth / 4;
  std::int32_t acc[kInt8Group];
  for (int r = r_begin; r < r_end; ++r) {
    const std::uint8_t* x = p.x->bytes.data() + static_cast<std::size_t>(r) * p.x->depth;
    const float sx = p.x->scales[r];
    for (int g0 = 0; g0 < w.rows; g0 += kInt8Group) {
      const std::int8_t* group =
          w.packed.data() + static_cast<std::size_t>(g0 / kInt8Group) * w.group_bytes();
      std::fill(acc, acc + kInt8Group, 0);
      for (int s = 0; s < steps; ++s) {
        const std::int8_t* b = group + static_cast<std::size_t>(s) * 64;
        const std::uint8_t* a = x + s * 4;
        for (int lane = 0; lane < kInt8Group; ++lane) {
          acc[lane] += a[0] * b[lane * 4] + a[1] * b[lane * 4 + 1] + a[2] * b[lane * 4 + 2] +
                       a[3] * b[lane * 4 + 3];
        }
      }
      for (int lane = 0; lane < kInt8Group && g0 + lane < w.rows; ++lane) {
        const int o = g0 + lane;
        const float v = static_cast<float>(acc[lane] - 128 * w.sums[o]);
        p.y[static_cast<std::size_t>(r) * p.ldy + o] =
            std::fma(sx * w.scales[o], v, p.bias ? p.bias[o] : 0.0f);
      }
    }
  }
}

bool int8_vnni_supported() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return active_isa() == Isa::avx512 && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool int8_avx2_supported() {
#if defined(__x86_64__)
  return active_isa() == Isa::avx2 || active_isa() == Isa::avx512;  // both imply AVX2 and FMA
#else
  return false;
#endif
}

Int8Kernel int8_kernel(bool* fast) {
  static const bool vnni = int8_vnni_supported();
  static const bool avx2 = int8_avx2_supported();
  static const bool amx = int8_amx_supported();
  if (fast) *fast = vnni || avx2;
#if defined(__x86_64__)
  if (amx) return int8_kernel_amx;
  if (vnni) return int8_kernel_avx512_vnni;
  if (avx2) return int8_kernel_avx2;
#endif
  return int8_kernel_portable;
}

const char* int8_kernel_name() {
  const Int8Kernel kernel = int8_kernel();
#if defined(__x86_64__)
  if (kernel == int8_kernel_amx) return "AMX-INT8";
  if (kernel == int8_kernel_avx512_vnni) return "AVX-512 VNNI";
  if (kernel == int8_kernel_avx2) return "AVX2";
#endif
  return "portable";
}

Int8Quantizer int8_quantizer() {
#if defined(__x86_64__)
  static const bool vnni = int8_vnni_supported();
  if (vnni) return quantize_activation_rows_avx512;
#endif
  return quantize_activation_rows;
}

double int8_error_bound(const float* x, const float* w, int cols) {
  double max_x = 0, max_w = 0, sum_x = 0, sum_w = 0, exact = 0;
  for (int c = 0; c < cols; ++c) {
    max_x = std::max(max_x, std::fabs(static_cast<double>(x[c])));
    max_w = std::max(max_w, std::fabs(static_cast<double>(w[c])));
    sum_x += std::fabs(static_cast<double>(x[c]));
    sum_w += std::fabs(static_cast<double>(w[c]));
    exact += std::fabs(static_cast<double>(x[c]) * w[c]);
  }
  // Each quantized value is off by at most half a step (plus the float rounding of x / scale);
  // |x'w' - xw| <= |x||dw| + |w||dx| + |dx||dw|, summed; the epilogue rounds once more in float.
  const double hx = max_x / 127.0 * 0.5 * (1 + 1e-6), hw = max_w / 127.0 * 0.5 * (1 + 1e-6);
  const double quantization = hw * sum_x + hx * sum_w + cols * hx * hw;
  return quantization + (exact + quantization) * 1e-6 + 1e-30;
}

}  // namespace sra::whisper
