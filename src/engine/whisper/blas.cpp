#include "engine/whisper/blas.h"

#include <cblas.h>
#include <dlfcn.h>

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
    // OpenBLAS's threaded build starts its own workers when it loads, and each spins on a core
    // (sched_yield) for about 2^28 cycles before it sleeps: a core taken from the model load,
    // the audio decoding and the mel spectrogram of a fresh process. They are never given work
    // (one thread per call), so they stop here; a build without them has no such function.
    using Shutdown = int (*)();
    if (auto stop = reinterpret_cast<Shutdown>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_")))
      stop();
    return true;
  }();
  (void)once;
}

// At the process's start, before anything else runs long.
const bool stopped_at_start = (one_thread_per_call(), true);

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
