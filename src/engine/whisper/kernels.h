// The numeric kernels the Whisper layers are built from: BLAS matrix products, layer norm, GELU,
// softmax, 1-D convolution. Row-major float32 throughout; a "matrix [n, d]" is n rows of d values.
// Stateless functions; safe to call from any thread (OpenBLAS serialises or parallelises its own
// calls; its thread count is set once with set_blas_threads).
#pragma once

#include <cstddef>

#include "engine/whisper/model_file.h"

namespace sra::whisper {

// Threads OpenBLAS may use for one product (process-wide).
void set_blas_threads(int threads);

// y[n, out] = x[n, in] * w[out, in]^T (+ b[out]). PyTorch's nn.Linear.
void linear(const float* x, int n, int in, const Tensor& w, const Tensor* b, float* y);
// c[m, n] = alpha * a[m, k] * b[n, k]^T, with leading dimensions (row strides) given.
void matmul_bt(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
               int k, float alpha);
// c[m, n] = a[m, k] * b[k, n], with leading dimensions given.
void matmul(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
            int k);
// out[n, d] = layer_norm(x[n, d]) * gamma + beta, eps 1e-5 (may be in place).
void layer_norm(const float* x, int n, int d, const Tensor& gamma, const Tensor& beta, float* out);
// Exact (erf) GELU, in place.
void gelu(float* x, std::size_t size);
// Softmax of each of `rows` rows of `cols` values (row stride `ld`), in place. A row of -inf
// only becomes zeros.
void softmax_rows(float* x, int rows, int cols, int ld);
// 1-D convolution with kernel 3 and padding 1 over a time-major input [t_in, c_in]:
// out[t_out, c_out] with t_out = t_in / stride. Weight [c_out, c_in, 3], bias [c_out].
void conv1d_k3(const float* x, int t_in, int c_in, int stride, const Tensor& w, const Tensor& b,
               float* out);

}  // namespace sra::whisper
