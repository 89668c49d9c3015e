#include "engine/whisper/kernels.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "core/errors.h"
#include "engine/whisper/blas.h"
#include "engine/whisper/cpu_features.h"
#include "engine/whisper/memory.h"
#include "engine/whisper/thread_budget.h"

namespace sra::whisper {
namespace {

const SimdKernels& choose_kernels() {
  switch (active_isa()) {
    case Isa::avx512:
      return simd_kernels_avx512();
    case Isa::avx2:
      return simd_kernels_avx2();
    case Isa::portable:
      break;
  }
  return simd_kernels_portable();
}

// Runs body(task) for task in [0, tasks) on up to `threads` threads (the caller is one of them).
template <typename Body>
void parallel_for(int tasks, int threads, Body body) {
  threads = std::max(1, std::min(threads, tasks));
  if (threads == 1) {
    for (int t = 0; t < tasks; ++t) body(t);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int t = 0; t < tasks; ++t) body(t);
#else
  for (int t = 0; t < tasks; ++t) body(t);
#endif
}

// Splits [0, n) into `parts` ranges of whole multiples of `align` (the last takes the rest).
struct Ranges {
  int n, parts, align;
  int begin(int p) const { return std::min(n, (n / parts / align) * align * p); }
  int end(int p) const { return p == parts - 1 ? n : begin(p + 1); }
};

// Queries of one head whose scores against shared (transposed) keys are computed together.
constexpr int kRowGroup = 8;

// Queries whose attention scores are computed together (a block of 256 x 1500 scores is 1.5 MiB;
// fewer blocks pack each head's keys and values for sgemm fewer times: 128 was 3.5 % slower).
constexpr int kQueryBlock = 256;

// Scratch that lives as long as its thread (OpenMP's threads are reused).
std::vector<float>& thread_scratch(std::size_t size) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < size) scratch.resize(size);
  return scratch;
}

// out rows r < rows: sum_j p[r * ldp + j] * v[j * ldv + c], c < dh.
void weighted_sum_rows(const SimdKernels& s, const float* p, int ldp, int rows, int n,
                       const float* v, int ldv, int dh, float* out, int ldo) {
  if (dh % 16 == 0 && dh <= 256) {
    s.weighted_sum_rows(p, ldp, rows, n, v, ldv, dh, out, ldo);
    return;
  }
  for (int r = 0; r < rows; ++r) {
    float* o = out + static_cast<std::size_t>(r) * ldo;
    std::fill(o, o + dh, 0.0f);
    for (int j = 0; j < n; ++j)
      s.axpy(p[static_cast<std::size_t>(r) * ldp + j], v + static_cast<std::size_t>(j) * ldv, o,
             dh);
  }
}

// attention / attention_kt for many queries (the encoder, a prompt): per head and block of
// queries, scores by sgemm, softmax, sgemm. Blocks keep the scores small (and the split even);
// each score and output is computed exactly as over all rows at once.
void blocked_attention(const float* q, int ldq, const float* k, const float* v, int ldkv, int rows,
                       int t, int heads, int dh, float scale, int causal_past, float* out, int ldo,
                       bool keys_transposed) {
  const SimdKernels& s = simd();
  const std::size_t head_size = static_cast<std::size_t>(dh) * t;
  const int blocks = (rows + kQueryBlock - 1) / kQueryBlock;
  parallel_for(heads * blocks, ThreadBudget::current(), [&](int task) {
    const int h = task / blocks, r0 = (task % blocks) * kQueryBlock;
    const int n = std::min(kQueryBlock, rows - r0);
    const std::size_t off = static_cast<std::size_t>(h) * dh;
    std::vector<float>& scores = thread_scratch(static_cast<std::size_t>(n) * t);
    const float* qb = q + static_cast<std::size_t>(r0) * ldq + off;
    if (keys_transposed) {
      matmul(qb, ldq, k + h * head_size, t, scores.data(), t, n, t, dh);
    } else {
      matmul_bt(qb, ldq, k + off, ldkv, scores.data(), t, n, t, dh, 1.0f);
    }
    for (int i = 0; i < n; ++i) {
      float* row = scores.data() + static_cast<std::size_t>(i) * t;
      const int visible = causal_past >= 0 ? std::min(t, causal_past + r0 + i + 1) : t;
      for (int j = visible; j < t; ++j) row[j] = -INFINITY;
      s.softmax(row, t, scale);
    }
    matmul(scores.data(), t, v + off, ldkv, out + static_cast<std::size_t>(r0) * ldo + off, ldo, n,
           dh, t);
  });
}

}  // namespace

const SimdKernels& simd() {
  static const SimdKernels& kernels = choose_kernels();
  return kernels;
}

namespace {

// Once `w`'s derived form is made, the mapped pages that hold nothing but this matrix leave the
// process's memory (clean file pages; read again, they come back from the file).
void drop_mapped_pages(const Tensor& w) {
  if (!w.derived->mapped) return;
  const auto* begin = static_cast<const unsigned char*>(w.raw);
  drop_file_pages(begin, begin + w.row_bytes() * w.rows());
}

// Rows [r0, r1) of `w` as floats: the file's own when stored as f32, else widened into `scratch`.
const float* float_rows(const Tensor& w, int r0, int r1, std::vector<float>& scratch) {
  const int cols = static_cast<int>(w.cols());
  if (w.type == WeightType::f32) return w.data + static_cast<std::size_t>(r0) * cols;
  scratch.resize(static_cast<std::size_t>(r1 - r0) * cols);
  simd().widen_rows(w.type, w.raw, w.row_bytes(), cols, r0, r1, scratch.data());
  return scratch.data();
}

}  // namespace

const Bf16Matrix& bf16_form(const Tensor& w) {
  if (!w.derived) throw internal_error("bf16_form: not a weight matrix of a loaded file");
  std::call_once(w.derived->bf16_once, [&] {
    const int rows = static_cast<int>(w.rows()), cols = static_cast<int>(w.cols());
    auto m = std::make_shared<Bf16Matrix>(empty_bf16_matrix(rows, cols));
    const int parts = std::max(1, std::min(64, rows / kBf16Group));
    const Ranges ranges{rows, parts, kBf16Group};
    parallel_for(parts, ThreadBudget::current(), [&](int p) {
      const int r0 = ranges.begin(p), r1 = ranges.end(p);
      round_weight_rows_bf16(float_rows(w, r0, r1, thread_scratch(0)), r0, r1, *m);
    });
    w.derived->bf16 = std::move(m);
    drop_mapped_pages(w);
  });
  return *w.derived->bf16;
}

const Int8Matrix& int8_form(const Tensor& w) {
  if (!w.derived) throw internal_error("int8_form: not a weight matrix of a loaded file");
  std::call_once(w.derived->int8_once, [&] {
    const int rows = static_cast<int>(w.rows()), cols = static_cast<int>(w.cols());
    auto m = std::make_shared<Int8Matrix>(empty_int8_matrix(rows, cols));
    const int parts = std::max(1, std::min(64, rows / kInt8Group));
    const Ranges ranges{rows, parts, kInt8Group};
    using Quantize = void (*)(const float*, int, int, Int8Matrix&);
    const Quantize quantize = int8_vnni_supported() ? quantize_weight_rows_avx512
                                                    : static_cast<Quantize>(quantize_weight_rows);
    parallel_for(parts, ThreadBudget::current(), [&](int p) {
      const int r0 = ranges.begin(p), r1 = ranges.end(p);
      quantize(float_rows(w, r0, r1, thread_scratch(0)), r0, r1, *m);
    });
    w.derived->int8 = std::move(m);
    drop_mapped_pages(w);  // only the int8 form is read from now on
  });
  return *w.derived->int8;
}

namespace {

// Activation rows one task of an int8 product quantizes and multiplies.
constexpr int kInt8Rows = 48;

void linear_int8(const float* x, int n, int in, const Tensor& w, const float* bias, float* y,
                 int threads) {
  const Int8Matrix& m = int8_form(w);
  // The calling thread's scratch, named by reference: the team's threads must see this one, and
  // a lambda does not capture a thread_local (each thread would see its own).
  thread_local Int8Activations scratch;
  Int8Activations& a = scratch;
  a.n = n;
  a.depth = m.depth;
  a.bytes.resize(static_cast<std::size_t>((n + 15) / 16 * 16) * m.depth);
  a.scales.resize(n);
  const Int8Kernel kernel = int8_kernel();
  const Int8Quantizer quantize = int8_quantizer();
  const Int8Product product{&a, &m, bias, y, m.rows};
  const int tasks = (n + kInt8Rows - 1) / kInt8Rows;
  parallel_for(tasks, threads, [&](int task) {
    const int r0 = task * kInt8Rows, r1 = std::min(n, r0 + kInt8Rows);
    quantize(x, in, r0, r1, a);
    kernel(product, r0, r1);
  });
}

// Few rows over quantized weights: the rows quantized per block, the stored blocks read once.
void linear_int8_blocks(const float* x, int n, int in, const Tensor& w, const float* bias, float* y,
                        int threads) {
  thread_local BlockActivations scratch;  // named by reference for the team (see linear_int8)
  BlockActivations& a = scratch;
  quantize_blocks(x, n, in, a);
  const int out = static_cast<int>(w.rows());
  const BlockProduct product{
      w.type, static_cast<const unsigned char*>(w.raw), w.row_bytes(), &a, bias, y, out};
  const BlockGemvKernel kernel = int8_gemv_kernel();
  const int parts = std::max(1, std::min(threads * 4, out / 64));
  const Ranges r{out, parts, 16};
  parallel_for(parts, threads, [&](int p) { kernel(product, r.begin(p), r.end(p)); });
}

// Activation rows one task of a bf16 product rounds and multiplies.
constexpr int kBf16Rows = 64;  // a multiple of 16 (the AMX kernel's tiles)

void linear_bf16(const float* x, int n, int in, const Tensor& w, const float* bias, float* y,
                 int threads) {
  const Bf16Matrix& m = bf16_form(w);
  thread_local Bf16Activations scratch;  // named by reference for the team (see linear_int8)
  Bf16Activations& a = scratch;
  a.n = n;
  a.depth = m.depth;
  a.values.resize(static_cast<std::size_t>((n + 15) / 16 * 16) * m.depth);
  const Bf16Kernel kernel = bf16_kernel();
  const Bf16Rounder round = bf16_rounder();
  const Bf16Product product{&a, &m, bias, y, m.rows};
  const int tasks = (n + kBf16Rows - 1) / kBf16Rows;
  parallel_for(tasks, threads, [&](int task) {
    const int r0 = task * kBf16Rows, r1 = std::min(n, r0 + kBf16Rows);
    round(x, in, r0, r1, a);
    kernel(product, r0, r1);
  });
}

}  // namespace

void linear(const float* x, int n, int in, const Tensor& w, const Tensor* b, float* y,
            LinearMath math) {
  const SimdKernels& k = simd();
  const int out = static_cast<int>(w.rows());
  if (static_cast<int>(w.cols()) != in) throw internal_error("linear: weight width mismatch");
  const int threads = ThreadBudget::current();
  const float* bias = b ? b->data : nullptr;
  if (n > kGemvMaxRows && math == LinearMath::int8) {
    linear_int8(x, n, in, w, bias, y, threads);
    return;
  }
  if (n > kGemvMaxRows && math == LinearMath::bf16) {
    linear_bf16(x, n, in, w, bias, y, threads);
    return;
  }
  if (n <= kGemvMaxRows && (math == LinearMath::int8 || math == LinearMath::int8_blocks) &&
      int8_gemv_supports(w.type)) {
    linear_int8_blocks(x, n, in, w, bias, y, threads);
    return;
  }
  if (n <= kGemvMaxRows) {
    const int parts = std::max(1, std::min(threads * 4, out / 64));
    const Ranges r{out, parts, 16};
    parallel_for(parts, threads, [&](int p) {
      k.gemv(w.type, w.raw, w.row_bytes(), in, x, n, bias, y, out, r.begin(p), r.end(p));
    });
    return;
  }
  // Many rows: sgemm over column blocks, at least one per thread of the process's budget; other
  // types are widened one block (at most 1 MiB of floats) at a time. The blocks follow the budget's
  // total, not the threads this call has now: OpenBLAS's result for a column can depend on where
  // it falls in its block (its edge kernels sum in another order on some CPUs), and a result must
  // not depend on how many requests run beside it (a batch's chunks equal each one alone).
  const int budget = ThreadBudget::total();
  const int per_thread = (out + budget - 1) / budget;
  const int block = w.type == WeightType::f32
                        ? std::max(16, per_thread)
                        : std::max(16, std::min(per_thread, (1 << 18) / std::max(1, in)) / 16 * 16);
  const int blocks = (out + block - 1) / block;
  parallel_for(blocks, threads, [&](int p) {
    const int o0 = p * block, cols = std::min(out, o0 + block) - o0;
    if (bias) {
      for (int i = 0; i < n; ++i)
        std::copy(bias + o0, bias + o0 + cols, y + static_cast<std::size_t>(i) * out + o0);
    }
    const float* wb;
    if (w.type == WeightType::f32) {
      wb = w.data + static_cast<std::size_t>(o0) * in;
    } else {
      std::vector<float>& s = thread_scratch(static_cast<std::size_t>(cols) * in);
      k.widen_rows(w.type, w.raw, w.row_bytes(), in, o0, o0 + cols, s.data());
      wb = s.data();
    }
    sgemm(true, n, cols, in, 1.0f, x, in, wb, in, bias ? 1.0f : 0.0f, y + o0, out);
  });
}

void matmul_bt(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
               int k, float alpha) {
  sgemm(true, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
}

void matmul(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
            int k) {
  sgemm(false, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

void attention(const float* q, int ldq, const float* k, const float* v, int ldkv, int rows, int t,
               int heads, int dh, float scale, int causal_past, float* out, int ldo) {
  if (rows <= kGemvMaxRows) {  // a few queries (decoding)
    attention_parts({{q, k, v, out, rows, t, causal_past}}, ldq, ldkv, ldo, heads, dh, scale,
                    false);
    return;
  }
  blocked_attention(q, ldq, k, v, ldkv, rows, t, heads, dh, scale, causal_past, out, ldo, false);
}

void attention_bf16(const float* q, int ldq, const float* k, const float* v, int ldkv, int rows,
                    int t, int heads, int dh, float scale, float* out, int ldo) {
  const SimdKernels& s = simd();
  const int threads = ThreadBudget::current();
  const Bf16Kernel kernel = bf16_kernel();
  const Bf16Rounder round = bf16_rounder();
  // Each head's keys [t, dh] and transposed values [dh, t], rounded and packed once.
  std::vector<Bf16Matrix> keys(heads), values(heads);
  parallel_for(heads, threads, [&](int h) {
    std::vector<float>& rows_of = thread_scratch(static_cast<std::size_t>(t) * dh);
    for (int j = 0; j < t; ++j) {
      const float* kj = k + static_cast<std::size_t>(j) * ldkv + static_cast<std::size_t>(h) * dh;
      std::copy(kj, kj + dh, rows_of.data() + static_cast<std::size_t>(j) * dh);
    }
    keys[h] = empty_bf16_matrix(t, dh);
    round_weight_rows_bf16(rows_of.data(), 0, t, keys[h]);
    for (int j = 0; j < t; ++j) {
      const float* vj = v + static_cast<std::size_t>(j) * ldkv + static_cast<std::size_t>(h) * dh;
      for (int c = 0; c < dh; ++c) rows_of[static_cast<std::size_t>(c) * t + j] = vj[c];
    }
    values[h] = empty_bf16_matrix(dh, t);
    round_weight_rows_bf16(rows_of.data(), 0, dh, values[h]);
  });
  const int blocks = (rows + kQueryBlock - 1) / kQueryBlock;
  parallel_for(heads * blocks, threads, [&](int task) {
    const int h = task / blocks, r0 = (task % blocks) * kQueryBlock;
    const int n = std::min(kQueryBlock, rows - r0);
    const std::size_t off = static_cast<std::size_t>(h) * dh;
    const int room = (n + 15) / 16 * 16;  // the AMX kernel's tiles of 16 rows
    // The block's queries of this head, contiguous, then rounded.
    std::vector<float>& scores = thread_scratch(static_cast<std::size_t>(n) * std::max(t, dh));
    for (int i = 0; i < n; ++i) {
      const float* qi = q + static_cast<std::size_t>(r0 + i) * ldq + off;
      std::copy(qi, qi + dh, scores.data() + static_cast<std::size_t>(i) * dh);
    }
    thread_local Bf16Activations queries, probabilities;
    queries.n = n;
    queries.depth = keys[h].depth;
    queries.values.resize(static_cast<std::size_t>(room) * queries.depth);
    round(scores.data(), dh, 0, n, queries);
    kernel({&queries, &keys[h], nullptr, scores.data(), t}, 0, n);
    for (int i = 0; i < n; ++i)
      s.softmax(scores.data() + static_cast<std::size_t>(i) * t, t, scale);
    probabilities.n = n;
    probabilities.depth = values[h].depth;
    probabilities.values.resize(static_cast<std::size_t>(room) * probabilities.depth);
    round(scores.data(), t, 0, n, probabilities);
    kernel(
        {&probabilities, &values[h], nullptr, out + static_cast<std::size_t>(r0) * ldo + off, ldo},
        0, n);
  });
}

void attention_kt(const float* q, int ldq, const float* kt, const float* v, int ldv, int rows,
                  int t, int heads, int dh, float scale, float* out, int ldo) {
  if (rows <= kGemvMaxRows) {
    attention_parts({{q, kt, v, out, rows, t}}, ldq, ldv, ldo, heads, dh, scale, true);
    return;
  }
  blocked_attention(q, ldq, kt, v, ldv, rows, t, heads, dh, scale, -1, out, ldo, true);
}

void attention_parts(const std::vector<AttentionPart>& parts, int ldq, int ldkv, int ldo, int heads,
                     int dh, float scale, bool keys_transposed) {
  bool few = true;
  std::vector<int> first_task;  // per part, its first (head, query) task
  int tasks = 0;
  for (const auto& p : parts) {
    few = few && p.rows <= kGemvMaxRows;
    first_task.push_back(tasks);
    tasks += (keys_transposed ? (p.rows + kRowGroup - 1) / kRowGroup : p.rows) * heads;
  }
  if (!few) {
    for (AttentionPart p : parts) {
      std::vector<float> wide_k, wide_v;  // an f16 cache, widened for these many queries
      if (p.k_half) {
        const std::size_t size = static_cast<std::size_t>(heads) * dh * p.t;
        wide_k.resize(size);
        wide_v.resize(static_cast<std::size_t>(p.t) * ldkv);
        simd().widen_rows(WeightType::f16, p.k_half, size * 2, static_cast<int>(size), 0, 1,
                          wide_k.data());
        simd().widen_rows(WeightType::f16, p.v_half, wide_v.size() * 2,
                          static_cast<int>(wide_v.size()), 0, 1, wide_v.data());
        p.k = wide_k.data();
        p.v = wide_v.data();
      }
      if (keys_transposed) {
        attention_kt(p.q, ldq, p.k, p.v, ldkv, p.rows, p.t, heads, dh, scale, p.out, ldo);
      } else {
        attention(p.q, ldq, p.k, p.v, ldkv, p.rows, p.t, heads, dh, scale, p.causal_past, p.out,
                  ldo);
      }
    }
    return;
  }
  const SimdKernels& s = simd();
  parallel_for(tasks, ThreadBudget::current(), [&](int task) {
    const std::size_t part = static_cast<std::size_t>(
        std::upper_bound(first_task.begin(), first_task.end(), task) - first_task.begin() - 1);
    const AttentionPart& p = parts[part];
    const int local = task - first_task[part];
    const std::size_t t = static_cast<std::size_t>(p.t);
    if (keys_transposed) {
      // Up to 8 queries of one head (sequences attending to the same audio): keys and values
      // read once for all of them.
      const int groups = (p.rows + kRowGroup - 1) / kRowGroup;
      const int h = local / groups, r0 = (local % groups) * kRowGroup;
      const int n = std::min(kRowGroup, p.rows - r0);
      const std::size_t off = static_cast<std::size_t>(h) * dh;
      std::vector<float>& scores = thread_scratch(static_cast<std::size_t>(n) * t);
      const float* q0 = p.q + static_cast<std::size_t>(r0) * ldq + off;
      float* o = p.out + static_cast<std::size_t>(r0) * ldo + off;
      if (p.k_half) {  // an f16 cache
        s.scores_kt_rows_half(q0, ldq, n, p.k_half + off * t, dh, p.t, scores.data());
        for (int i = 0; i < n; ++i) s.softmax(scores.data() + i * t, p.t, scale);
        s.weighted_sum_rows_half(scores.data(), static_cast<int>(t), n, p.t, p.v_half + off, ldkv,
                                 dh, o, ldo);
        return;
      }
      s.scores_kt_rows(q0, ldq, n, p.k + off * t, dh, p.t, scores.data());
      for (int i = 0; i < n; ++i) s.softmax(scores.data() + i * t, p.t, scale);
      weighted_sum_rows(s, scores.data(), static_cast<int>(t), n, p.t, p.v + off, ldkv, dh, o, ldo);
      return;
    }
    const int h = local / p.rows, i = local % p.rows;
    const int n = p.causal_past >= 0 ? std::min(p.t, p.causal_past + i + 1) : p.t;
    const std::size_t off = static_cast<std::size_t>(h) * dh;
    std::vector<float>& scores = thread_scratch(t);
    const float* qi = p.q + static_cast<std::size_t>(i) * ldq + off;
    for (int j = 0; j < n; ++j)
      scores[j] = s.dot(qi, p.k + static_cast<std::size_t>(j) * ldkv + off, dh);
    s.softmax(scores.data(), n, scale);
    weighted_sum_rows(s, scores.data(), 0, 1, n, p.v + off, ldkv, dh,
                      p.out + static_cast<std::size_t>(i) * ldo + off, 0);
  });
}

void layer_norm(const float* x, int n, int d, const Tensor& gamma, const Tensor& beta, float* out) {
  const SimdKernels& s = simd();
  const int per = std::max(1, 65536 / std::max(1, d));  // rows per task
  const int tasks = (n + per - 1) / per;
  parallel_for(tasks, ThreadBudget::current(), [&](int task) {
    for (int i = task * per; i < std::min(n, (task + 1) * per); ++i) {
      s.layer_norm(x + static_cast<std::size_t>(i) * d, d, gamma.data, beta.data,
                   out + static_cast<std::size_t>(i) * d);
    }
  });
}

void axpy(float a, const float* x, float* y, int n) {
  simd().axpy(a, x, y, n);
}

void sigmoid_in_place(float* x, std::size_t size) {
  simd().sigmoid(x, size);
}

void tanh_in_place(float* x, std::size_t size) {
  simd().tanh(x, size);
}

void gelu(float* x, std::size_t size) {
  constexpr std::size_t kPer = 1 << 16;
  const int tasks = static_cast<int>((size + kPer - 1) / kPer);
  parallel_for(tasks, ThreadBudget::current(), [&](int task) {
    const std::size_t begin = static_cast<std::size_t>(task) * kPer;
    simd().gelu(x + begin, std::min(kPer, size - begin));
  });
}

void add_in_place(const float* x, float* y, std::size_t size) {
  constexpr std::size_t kPer = 1 << 17;
  const int tasks = static_cast<int>((size + kPer - 1) / kPer);
  parallel_for(tasks, ThreadBudget::current(), [&](int task) {
    const std::size_t begin = static_cast<std::size_t>(task) * kPer;
    simd().add(x + begin, y + begin, std::min(kPer, size - begin));
  });
}

void softmax_rows(float* x, int rows, int cols, int ld) {
  for (int r = 0; r < rows; ++r) simd().softmax(x + static_cast<std::size_t>(r) * ld, cols, 1.0f);
}

void conv1d_k3(const float* x, int t_in, int c_in, int stride, const Tensor& w, const Tensor& b,
               float* out) {
  const int t_out = t_in / stride;
  const int k = c_in * 3;
  // im2col: row t holds, for each input channel c, the 3 samples around t * stride; the weight
  // [c_out, c_in, 3] is then a [c_out, c_in * 3] matrix.
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
  linear(cols.data(), t_out, k, w, &b, out);
}

}  // namespace sra::whisper
