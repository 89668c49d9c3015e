#include "engine/whisper/int8_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/whisper/int8_gemm.h"

namespace sra::whisper {
namespace {

// The fixed summation tree of the 16 lanes (what the vector kernels' halving reductions do).
float block_lane_sum(const float* a) {
  float h8[8], h4[4];
  for (int i = 0; i < 8; ++i) h8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) h4[i] = h8[i] + h8[i + 4];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

}  // namespace

bool int8_gemv_supports(WeightType type) {
  return is_quantized(type) && quant_block_bytes(type) != 0;
}

void quantize_blocks(const float* x, int n, int cols, BlockActivations& out) {
  const int blocks = cols / kQuantBlock;
  out.n = n;
  out.cols = cols;
  out.q.resize(static_cast<std::size_t>(n) * cols);
  out.d.resize(static_cast<std::size_t>(n) * blocks);
  out.ds.resize(static_cast<std::size_t>(n) * blocks);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and taking it away rounds
  for (int r = 0; r < n; ++r) {
    for (int b = 0; b < blocks; ++b) {
      const std::size_t at = static_cast<std::size_t>(r) * cols + b * kQuantBlock;
      const float* v = x + at;
      std::int8_t* q = out.q.data() + at;
      float max = 0.0f;
      bool finite = true;
      for (int j = 0; j < kQuantBlock; ++j) {
        max = std::max(max, std::fabs(v[j]));
        finite = finite && std::isfinite(v[j]);
      }
      const std::size_t i = static_cast<std::size_t>(r) * blocks + b;
      if (max == 0.0f || !finite) {
        std::memset(q, 0, kQuantBlock);
        out.d[i] = out.ds[i] = 0.0f;
        continue;
      }
      const float inverse = 127.0f / max;
      int sum = 0;
      for (int j = 0; j < kQuantBlock; ++j) {
        const float s = std::clamp(v[j] * inverse, -127.0f, 127.0f);
        const int value = static_cast<int>((s + kRound) - kRound);
        q[j] = static_cast<std::int8_t>(value);
        sum += value;
      }
      out.d[i] = max / 127.0f;
      out.ds[i] = out.d[i] * static_cast<float>(sum);
    }
  }
}

void int8_gemv_portable(const BlockProduct& p, int o_begin, int o_end) {
  const BlockActivations& x = *p.x;
  const int blocks = x.cols / kQuantBlock;
  const std::size_t block_bytes = quant_block_bytes(p.type);
  thread_local std::vector<std::int8_t> wq;
  thread_local std::vector<float> wd, wm;
  wq.resize(static_cast<std::size_t>(x.cols));
  wd.resize(blocks);
  wm.resize(blocks);
  for (int o = o_begin; o < o_end; ++o) {
    const unsigned char* row = p.w + static_cast<std::size_t>(o) * p.row_bytes;
    for (int b = 0; b < blocks; ++b)
      unpack_block(p.type, row + b * block_bytes, wq.data() + b * kQuantBlock, wd[b], wm[b]);
    for (int r = 0; r < x.n; ++r) {
      const std::int8_t* xq = x.q.data() + static_cast<std::size_t>(r) * x.cols;
      const float* xd = x.d.data() + static_cast<std::size_t>(r) * blocks;
      float acc[16] = {};
      for (int b = 0; b < blocks; ++b) {
        const float scale = wd[b] * xd[b];
        for (int lane = 0; lane < 8; ++lane) {
          const int at = b * kQuantBlock + lane * 4;
          int sum = 0;
          for (int k = 0; k < 4; ++k) sum += wq[at + k] * xq[at + k];
          float& a = acc[(b % 2) * 8 + lane];
          a = std::fma(static_cast<float>(sum), scale, a);
        }
      }
      float y = block_lane_sum(acc);
      if (has_block_minimum(p.type)) {
        const float* xds = x.ds.data() + static_cast<std::size_t>(r) * blocks;
        float minimums = 0.0f;
        for (int b = 0; b < blocks; ++b) minimums = std::fma(wm[b], xds[b], minimums);
        y += minimums;
      }
      p.y[static_cast<std::size_t>(r) * p.ldy + o] = y + (p.bias ? p.bias[o] : 0.0f);
    }
  }
}

BlockGemvKernel int8_gemv_kernel() {
  bool fast = false;
  const Int8Kernel kernel = int8_kernel(&fast);
#if defined(__x86_64__)
  if (kernel == int8_kernel_amx || kernel == int8_kernel_avx512_vnni) return int8_gemv_avx512_vnni;
  if (kernel == int8_kernel_avx2) return int8_gemv_avx2;
#endif
  (void)kernel;
  return int8_gemv_portable;
}

const char* int8_gemv_kernel_name() {
  const BlockGemvKernel kernel = int8_gemv_kernel();
#if defined(__x86_64__)
  if (kernel == int8_gemv_avx512_vnni) return "AVX-512 VNNI";
  if (kernel == int8_gemv_avx2) return "AVX2";
#endif
  (void)kernel;
  return "portable";
}

double int8_gemv_error_bound(const float* x, const float* w, int cols) {
  // Each quantized activation is off by at most half its block's step (plus the float rounding
  // of x / scale); the weights are exact. The float epilogue adds one rounded product per lane
  // and block, the lanes' tree and the minimums: a relative error of a few ulp per block.
  double quantization = 0, magnitude = 0;
  for (int b = 0; b + kQuantBlock <= cols; b += kQuantBlock) {
    double max_x = 0;
    for (int j = 0; j < kQuantBlock; ++j)
      max_x = std::max(max_x, std::fabs(static_cast<double>(x[b + j])));
    const double half_step = max_x / 127.0 * 0.5 * (1 + 1e-6);
    for (int j = 0; j < kQuantBlock; ++j) {
      quantization += std::fabs(static_cast<double>(w[b + j])) * half_step;
      magnitude += std::fabs(static_cast<double>(w[b + j])) * (std::fabs(x[b + j]) + half_step);
    }
  }
  const double relative = (cols / kQuantBlock + 24) * 1.2e-7;
  return quantization * (1 + 1e-6) + magnitude * relative + 1e-30;
}

}  // namespace sra::whisper
