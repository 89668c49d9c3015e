#include "engine/whisper/blas.h"

#include <cblas.h>

extern "C" {
void openblas_set_num_threads(int);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace sra::whisper {
namespace {

void one_thread_per_call() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

}  // namespace

void sgemm(bool b_transposed, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  one_thread_per_call();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

std::string blas_description() {
  return std::string(openblas_get_config()) + " (" + openblas_get_corename() + " kernels)";
}

}  // namespace sra::whisper
