// SimdKernels: the innermost loops of the Whisper engine, compiled once per instruction set
// (portable C++, AVX2 with FMA and F16C, AVX-512) from one source, simd_kernels.cpp. Which set
// runs is chosen once at run time from the CPU (cpu_features.h); kernels.h calls through it and
// is the only user. Every function is pure over its arguments and safe on any thread; none
// allocates or starts threads (kernels.h splits work across the thread budget).
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/whisper/weight_type.h"

namespace sra::whisper {

// Most rows of x the kernels take through gemv (the decoder's live sequences in one step, of one
// request or of several batched together); more go to sgemm.
inline constexpr int kGemvMaxRows = 32;
// Widest row of q4_1, q5_0 or q5_1 weights gemv takes (ModelFile refuses wider ones).
inline constexpr int kMaxWidenedRow = 16384;

struct SimdKernels {
  const char* name;  // "avx512", "avx2" or "portable"
  // For r < n and o in [o_begin, o_end): y[r * ldy + o] = bias[o] (0 when null) + the dot
  // product of x's row r (`in` values, stride `in`) and row o of the matrix stored as `type` at
  // `w`, `w_row_bytes` apart. Reads the weights from memory once for all n rows, and computes
  // each row's sums in the same order whatever n is (batching never changes a result).
  void (*gemv)(WeightType type, const void* w, std::size_t w_row_bytes, int in, const float* x,
               int n, const float* bias, float* y, int ldy, int o_begin, int o_end);
  // Rows [r_begin, r_end) of a `cols`-wide matrix stored as `type`, widened into `out`
  // (row r_begin first, `cols` apart).
  void (*widen_rows)(WeightType type, const void* w, std::size_t w_row_bytes, int cols, int r_begin,
                     int r_end, float* out);
  // sum a[i] * b[i].
  float (*dot)(const float* a, const float* b, int n);
  // y[i] += a * x[i].
  void (*axpy)(float a, const float* x, float* y, int n);
  // scores[r * t + j] = sum_c q[r * ldq + c] * kt[c * t + j] for r < rows (at most 8) queries
  // and j < t keys stored transposed (dh rows of t values): the keys are read once for all the
  // queries (sequences attending to the same audio), and each score is summed over c in order.
  void (*scores_kt_rows)(const float* q, int ldq, int rows, const float* kt, int dh, int t,
                         float* scores);
  // out[r * ldo + c] = sum_j p[r * ldp + j] * v[j * ldv + c] for r < rows (any number) and
  // c < dh (a multiple of 16, at most 256), summed over j in order; the values are read once
  // per 4 rows.
  void (*weighted_sum_rows)(const float* p, int ldp, int rows, int t, const float* v, int ldv,
                            int dh, float* out, int ldo);
  // The same two with keys and values stored as IEEE halves (an f16 cross-attention cache).
  void (*scores_kt_rows_half)(const float* q, int ldq, int rows, const std::uint16_t* kt, int dh,
                              int t, float* scores);
  void (*weighted_sum_rows_half)(const float* p, int ldp, int rows, int t, const std::uint16_t* v,
                                 int ldv, int dh, float* out, int ldo);
  // out[i] = x[i] rounded to the nearest IEEE half (ties to even).
  void (*to_half)(const float* x, std::uint16_t* out, std::size_t n);
  // y[i] += x[i].
  void (*add)(const float* x, float* y, std::size_t n);
  // The largest of x[0, n) (-inf for n = 0).
  float (*max)(const float* x, int n);
  // sum_i e^(x[i] - shift), exp in float (-inf gives 0), summed in double per 1024 values.
  double (*sum_exp)(const float* x, int n, float shift);
  // Softmax of x[0, n) in place, after multiplying by `scale`; -inf becomes 0, and a row of
  // -inf only becomes zeros.
  void (*softmax)(float* x, int n, float scale);
  // Exact-form (erf) GELU in place; erf to within 5e-7.
  void (*gelu)(float* x, std::size_t n);
  // The logistic sigmoid 1 / (1 + e^-x) in place, to within 2e-7 (absolute).
  void (*sigmoid)(float* x, std::size_t n);
  // tanh in place, as 2 sigmoid(2x) - 1: to within 4e-7 (absolute).
  void (*tanh)(float* x, std::size_t n);
  // out = (x - mean) / sqrt(var + 1e-5) * gamma + beta over one row of d values.
  void (*layer_norm)(const float* x, int d, const float* gamma, const float* beta, float* out);
};

const SimdKernels& simd_kernels_portable();
const SimdKernels& simd_kernels_avx2();
const SimdKernels& simd_kernels_avx512();

}  // namespace sra::whisper
