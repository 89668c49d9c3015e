#include "engine/whisper/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace sra::whisper {

void set_blas_threads(int threads) {
  openblas_set_num_threads(std::max(1, threads));
}

void linear(const float* x, int n, int in, const Tensor& w, const Tensor* b, float* y) {
  const int out = static_cast<int>(w.shape[0]);
  if (b) {
    for (int i = 0; i < n; ++i)
      std::copy(b->data, b->data + out, y + static_cast<std::size_t>(i) * out);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w.data, in,
              b ? 1.0f : 0.0f, y, out);
}

void matmul_bt(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
               int k, float alpha) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, 0.0f, c,
              ldc);
}

void matmul(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
            int k) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c,
              ldc);
}

void layer_norm(const float* x, int n, int d, const Tensor& gamma, const Tensor& beta, float* out) {
  for (int i = 0; i < n; ++i) {
    const float* row = x + static_cast<std::size_t>(i) * d;
    float* o = out + static_cast<std::size_t>(i) * d;
    double mean = 0;
    for (int j = 0; j < d; ++j) mean += row[j];
    mean /= d;
    double var = 0;
    for (int j = 0; j < d; ++j) {
      double c = row[j] - mean;
      var += c * c;
    }
    var /= d;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    for (int j = 0; j < d; ++j) {
      o[j] = static_cast<float>((row[j] - mean) * inv) * gamma.data[j] + beta.data[j];
    }
  }
}

void gelu(float* x, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::erf(v * static_cast<float>(M_SQRT1_2)));
  }
}

void softmax_rows(float* x, int rows, int cols, int ld) {
  for (int r = 0; r < rows; ++r) {
    float* row = x + static_cast<std::size_t>(r) * ld;
    float max = -INFINITY;
    for (int c = 0; c < cols; ++c) max = std::max(max, row[c]);
    if (max == -INFINITY) {
      std::fill(row, row + cols, 0.0f);
      continue;
    }
    float sum = 0;
    for (int c = 0; c < cols; ++c) {
      row[c] = std::exp(row[c] - max);
      sum += row[c];
    }
    const float inv = 1.0f / sum;
    for (int c = 0; c < cols; ++c) row[c] *= inv;
  }
}

void conv1d_k3(const float* x, int t_in, int c_in, int stride, const Tensor& w, const Tensor& b,
               float* out) {
  const int c_out = static_cast<int>(w.shape[0]);
  const int t_out = t_in / stride;
  const int k = c_in * 3;
  // im2col: row t holds, for each input channel c, the 3 samples around t * stride.
  std::vector<float> cols(static_cast<std::size_t>(t_out) * k);
  for (int t = 0; t < t_out; ++t) {
    float* row = cols.data() + static_cast<std::size_t>(t) * k;
    for (int tap = 0; tap < 3; ++tap) {
      int src = t * stride + tap - 1;
      if (src < 0 || src >= t_in) {
        for (int c = 0; c < c_in; ++c) row[c * 3 + tap] = 0.0f;
      } else {
        const float* in = x + static_cast<std::size_t>(src) * c_in;
        for (int c = 0; c < c_in; ++c) row[c * 3 + tap] = in[c];
      }
    }
  }
  for (int t = 0; t < t_out; ++t)
    std::copy(b.data, b.data + c_out, out + static_cast<std::size_t>(t) * c_out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t_out, c_out, k, 1.0f, cols.data(), k,
              w.data, k, 1.0f, out, c_out);
}

}  // namespace sra::whisper
