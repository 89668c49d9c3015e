// The one BLAS routine the engine uses, sgemm (OpenBLAS, one thread per call: the kernels in
// kernels.h split the work themselves), and a line saying which OpenBLAS runs. The worker threads
// OpenBLAS's threaded build starts when it loads are stopped when the process starts (they would
// spin on a core for a while and are never given work).
//
// OpenBLAS picks its kernels for the CPU when it loads (AVX-512 "Cooperlake"/"SkylakeX" kernels on
// this project's AMD EPYC), unless OPENBLAS_CORETYPE names others: forcing "Haswell" (AVX2) there
// makes the encoder about 1.7x slower (bench/whisper-vs-whispercpp.md). Thread-safe.
#pragma once

#include <string>

namespace sra::whisper {

// c[m, n] = alpha * a[m, k] * op(b) + beta * c, row-major; op(b) = b[k, n], or b[n, k]^T when
// `b_transposed`.
void sgemm(bool b_transposed, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);
// "OpenBLAS 0.3.21 ... (SkylakeX kernels)", for reports.
std::string blas_description();

}  // namespace sra::whisper
