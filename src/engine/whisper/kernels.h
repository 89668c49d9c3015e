// The numeric kernels the Whisper layers are built from: matrix products over weights stored as
// the file stores them (f32, f16, q8_0, q4_0, ...), attention, layer norm, GELU, softmax, 1-D
// convolution. Row-major float32 activations throughout; a "matrix [n, d]" is n rows of d values.
//
// Each call splits its work across ThreadBudget::current() threads of the calling thread (see
// thread_budget.h) and runs the instruction set chosen at start-up (cpu_features.h). Products of
// many rows go to OpenBLAS's sgemm (one thread per call, the kernels split the columns in blocks
// set by the process's thread budget, not by the threads a call has now); products of at most
// kGemvMaxRows rows (decoding) read each weight row once, in its stored type, with no widening or
// packing. No result depends on the threads that computed it; a few-row product's row does not
// depend on the rows beside it (a many-row one's may: sgemm's edge kernels). Stateless; safe to
// call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/whisper/bf16_gemm.h"
#include "engine/whisper/int8_gemm.h"
#include "engine/whisper/int8_gemv.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/simd_kernels.h"

namespace sra::whisper {

// The kernels of the active instruction set.
const SimdKernels& simd();

// How linear() computes a product.
enum class LinearMath {
  exact,  // float32 over the stored weights (widened): OpenAI's arithmetic
  // Many rows (more than kGemvMaxRows): int8_gemm.h, weights and activations quantized per row,
  // summed in int32; fewer rows as int8_blocks.
  int8,
  // Few rows over quantized weights (q8_0, q4_*, q5_*): int8_gemv.h, the activations quantized
  // per 32-value block against the stored blocks; anything else exact.
  int8_blocks,
  // Many rows: bf16_gemm.h, weights and activations rounded to bfloat16, summed in float32;
  // fewer rows exact.
  bf16,
};

// y[n, out] = x[n, in] * w[out, in]^T (+ b[out]). PyTorch's nn.Linear.
void linear(const float* x, int n, int in, const Tensor& w, const Tensor* b, float* y,
            LinearMath math = LinearMath::exact);
// w's int8 form (int8_gemm.h), made on first use and kept with the tensor. w must be a weight
// matrix of a loaded file (Tensor::derived set).
const Int8Matrix& int8_form(const Tensor& w);
// w's bfloat16 form (bf16_gemm.h), likewise.
const Bf16Matrix& bf16_form(const Tensor& w);
// c[m, n] = alpha * a[m, k] * b[n, k]^T, with leading dimensions (row strides) given.
void matmul_bt(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
               int k, float alpha);
// c[m, n] = a[m, k] * b[k, n], with leading dimensions given.
void matmul(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
            int k);
// Multi-head scaled dot-product attention (OpenAI's qkv_attention, exact softmax):
// for each of `rows` queries i and head h (columns h * dh .. of each row),
// out_i,h = softmax(scale * q_i,h . k_j,h over j < limit) v_j,h, where limit is t, or
// causal_past + i + 1 when causal_past >= 0 (query i is position causal_past + i).
void attention(const float* q, int ldq, const float* k, const float* v, int ldkv, int rows, int t,
               int heads, int dh, float scale, int causal_past, float* out, int ldo);
// attention() without a causal mask, its two products in bfloat16 (bf16_gemm.h: queries, keys,
// probabilities and values rounded to bfloat16, summed in float32; the softmax exact): the
// encoder's with WHISPER_COMPUTE=bf16.
void attention_bf16(const float* q, int ldq, const float* k, const float* v, int ldkv, int rows,
                    int t, int heads, int dh, float scale, float* out, int ldo);
// The same with the keys stored transposed per head: kt holds, for each head h, dh rows of t
// values (kt + h * dh * t), which makes a query's scores one pass over contiguous keys.
void attention_kt(const float* q, int ldq, const float* kt, const float* v, int ldv, int rows,
                  int t, int heads, int dh, float scale, float* out, int ldo);
// One sequence's share of a batched attention: its queries, keys and values, and output.
struct AttentionPart {
  const float* q;        // rows x ldq
  const float* k;        // keys: t x ldkv, or transposed per head (as attention_kt) when asked
  const float* v;        // t x ldkv
  float* out;            // rows x ldo
  int rows;              // queries
  int t;                 // keys and values
  int causal_past = -1;  // as attention's; -1: every key is visible
  const std::uint16_t* k_half = nullptr;  // transposed keys as halves (instead of k)
  const std::uint16_t* v_half = nullptr;  // values as halves (instead of v)
};
// attention (or attention_kt, with `keys_transposed`) of every part, in one parallel pass.
void attention_parts(const std::vector<AttentionPart>& parts, int ldq, int ldkv, int ldo, int heads,
                     int dh, float scale, bool keys_transposed);
// out[n, d] = layer_norm(x[n, d]) * gamma + beta, eps 1e-5 (may be in place).
void layer_norm(const float* x, int n, int d, const Tensor& gamma, const Tensor& beta, float* out);
// Exact (erf) GELU, in place.
void gelu(float* x, std::size_t size);
// y[i] += a * x[i] for i < n, on the calling thread.
void axpy(float a, const float* x, float* y, int n);
// The logistic sigmoid (to within 2e-7) and tanh (to within 4e-7), in place, on the calling
// thread (for short rows: a recurrent network's gates).
void sigmoid_in_place(float* x, std::size_t size);
void tanh_in_place(float* x, std::size_t size);
// y += x.
void add_in_place(const float* x, float* y, std::size_t size);
// Softmax of each of `rows` rows of `cols` values (row stride `ld`), in place. A row of -inf
// only becomes zeros.
void softmax_rows(float* x, int rows, int cols, int ld);
// 1-D convolution with kernel 3 and padding 1 over a time-major input [t_in, c_in]:
// out[t_out, c_out] with t_out = t_in / stride. Weight [c_out, c_in, 3] (f32), bias [c_out].
void conv1d_k3(const float* x, int t_in, int c_in, int stride, const Tensor& w, const Tensor& b,
               float* out);

}  // namespace sra::whisper
