// One source, three objects: CMake compiles this file with SRA_SIMD_ISA set to portable, avx2
// (-mavx2 -mfma -mf16c) and avx512 (-mavx512f -mavx512bw -mavx512vl ...). Everything here has
// internal linkage and uses no library templates or inline functions, so code built for one set
// can never be linked into another's callers; only the entry point at the bottom is exported.
#include <cstdint>
#include <cstring>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "engine/whisper/simd_kernels.h"

#if !defined(SRA_SIMD_ISA)
#error "SRA_SIMD_ISA must name the instruction set (portable, avx2, avx512)"
#endif
#define SRA_CONCAT2(a, b) a##b
#define SRA_CONCAT(a, b) SRA_CONCAT2(a, b)
#define SRA_STRINGIFY2(a) #a
#define SRA_STRINGIFY(a) SRA_STRINGIFY2(a)

namespace sra::whisper {

std::uint16_t float_to_half(float f);  // model_writer.h (portable code, linked once)

namespace {

// 16 floats: one AVX-512 register, two AVX2 registers, four SSE registers.
constexpr int L = 16;
typedef std::uint8_t vb16 __attribute__((vector_size(16)));

#if defined(__AVX2__) && !defined(__AVX512F__)
// With AVX2, GCC keeps a 64-byte vector type in memory (no machine mode holds it) and every
// operation on it goes through the stack; a pair of 32-byte vectors stays in two registers. The
// pair has the operations the kernels use, lane by lane as the 64-byte type's.
typedef float vf8 __attribute__((vector_size(32)));
typedef std::int32_t vi8 __attribute__((vector_size(32)));
struct vf {
  vf8 lo, hi;
  float operator[](int i) const { return i < 8 ? lo[i] : hi[i - 8]; }
};
struct vi {
  vi8 lo, hi;
};
inline vf operator+(vf a, vf b) {
  return {a.lo + b.lo, a.hi + b.hi};
}
inline vf operator-(vf a, vf b) {
  return {a.lo - b.lo, a.hi - b.hi};
}
inline vf operator*(vf a, vf b) {
  return {a.lo * b.lo, a.hi * b.hi};
}
inline vf operator/(vf a, vf b) {
  return {a.lo / b.lo, a.hi / b.hi};
}
inline vf operator+(vf a, float b) {
  return {a.lo + b, a.hi + b};
}
inline vf operator-(vf a, float b) {
  return {a.lo - b, a.hi - b};
}
inline vf operator*(vf a, float b) {
  return {a.lo * b, a.hi * b};
}
inline vf operator/(vf a, float b) {
  return {a.lo / b, a.hi / b};
}
inline vf operator+(float a, vf b) {
  return {a + b.lo, a + b.hi};
}
inline vf operator-(float a, vf b) {
  return {a - b.lo, a - b.hi};
}
inline vf operator*(float a, vf b) {
  return {a * b.lo, a * b.hi};
}
inline vf operator/(float a, vf b) {
  return {a / b.lo, a / b.hi};
}
inline vf operator-(vf a) {
  return {-a.lo, -a.hi};
}
inline vf& operator+=(vf& a, vf b) {
  return a = a + b;
}
inline vf& operator-=(vf& a, vf b) {
  return a = a - b;
}
inline vf& operator*=(vf& a, vf b) {
  return a = a * b;
}
inline vi operator<(vf a, vf b) {
  return {a.lo < b.lo, a.hi < b.hi};
}
inline vi operator>(vf a, vf b) {
  return {a.lo > b.lo, a.hi > b.hi};
}
inline vi operator<(vf a, float b) {
  return {a.lo < b, a.hi < b};
}
inline vi operator>(vf a, float b) {
  return {a.lo > b, a.hi > b};
}
inline vi operator+(vi a, int b) {
  return {a.lo + b, a.hi + b};
}
inline vi operator<<(vi a, int b) {
  return {a.lo << b, a.hi << b};
}
inline vf select(vi mask, vf a, vf b) {
  return {mask.lo ? a.lo : b.lo, mask.hi ? a.hi : b.hi};
}
inline vi to_vi(vf a) {  // truncating, as a C cast
  return {__builtin_convertvector(a.lo, vi8), __builtin_convertvector(a.hi, vi8)};
}
inline vf to_vf(vi a) {
  return {__builtin_convertvector(a.lo, vf8), __builtin_convertvector(a.hi, vf8)};
}
inline vf bits_as_vf(vi a) {
  return {(vf8)a.lo, (vf8)a.hi};
}
inline vf join(vf8 lo, vf8 hi) {
  return {lo, hi};
}
inline vf splat(float x) {
  const vf8 h = (vf8)_mm256_set1_ps(x);
  return {h, h};
}
inline vf load(const float* p) {
  return {(vf8)_mm256_loadu_ps(p), (vf8)_mm256_loadu_ps(p + 8)};
}
inline void store(float* p, vf v) {
  _mm256_storeu_ps(p, (__m256)v.lo);
  _mm256_storeu_ps(p + 8, (__m256)v.hi);
}
#else
typedef float vf __attribute__((vector_size(64)));
typedef std::int32_t vi __attribute__((vector_size(64)));
inline vf select(vi mask, vf a, vf b) {
  return mask ? a : b;
}
inline vi to_vi(vf a) {  // truncating, as a C cast
  return __builtin_convertvector(a, vi);
}
inline vf to_vf(vi a) {
  return __builtin_convertvector(a, vf);
}
inline vf bits_as_vf(vi a) {
  return (vf)a;
}
inline vf splat(float x) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(x);
#else
  return vf{} + x;
#endif
}
inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) {
  std::memcpy(p, &v, sizeof v);
}
#endif
static_assert(sizeof(vf) == 64 && sizeof(vi) == 64);

inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < L; ++i) s += v[i];
  return s;
}
inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < L; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

inline float scalar_half(std::uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return half_to_float(h);
#endif
}

// 16 halves at p.
inline vf load_half(const void* p) {
#if defined(__AVX512F__)
  return (vf)_mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
#elif defined(__F16C__)
  const auto* b = static_cast<const unsigned char*>(p);
  return join((vf8)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))),
              (vf8)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16))));
#else
  std::uint16_t h[L];
  std::memcpy(h, p, sizeof h);
  vf v;
  for (int i = 0; i < L; ++i) v[i] = scalar_half(h[i]);
  return v;
#endif
}

inline float load_scale(const unsigned char* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return scalar_half(h);
}

// 16 signed / unsigned bytes as floats (GCC scalarises __builtin_convertvector for these).
inline vf bytes_to_vf(__attribute__((unused)) const void* p, bool is_signed) {
#if defined(__AVX512F__)
  const __m128i b = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return (vf)_mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
#elif defined(__AVX2__)
  const auto* c = static_cast<const unsigned char*>(p);
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
  const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8));
  return join(
      (vf8)_mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(lo) : _mm256_cvtepu8_epi32(lo)),
      (vf8)_mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(hi) : _mm256_cvtepu8_epi32(hi)));
#else
  const auto* c = static_cast<const unsigned char*>(p);
  vf v;
  for (int i = 0; i < L; ++i)
    v[i] =
        is_signed ? static_cast<float>(static_cast<std::int8_t>(c[i])) : static_cast<float>(c[i]);
  return v;
#endif
}

// The 32 values of one q8_0 block as two vectors.
__attribute__((always_inline)) inline void widen_q8_0(const unsigned char* block, vf& lo, vf& hi) {
  const vf d = splat(load_scale(block));
  lo = bytes_to_vf(block + 2, true) * d;
  hi = bytes_to_vf(block + 18, true) * d;
}

// The 32 values of one q4_0 block: low nibbles are values 0..15, high nibbles 16..31.
__attribute__((always_inline)) inline void widen_q4_0(const unsigned char* block, vf& lo, vf& hi) {
  const vf d = splat(load_scale(block));
  vb16 q;
  std::memcpy(&q, block + 2, 16);
  const vb16 low = q & 0x0f, high = q >> 4;
  lo = (bytes_to_vf(&low, false) - 8.0f) * d;
  hi = (bytes_to_vf(&high, false) - 8.0f) * d;
}

// dot products of n rows of x with one f32/f16 weight row, N known at compile time; load_w
// reads 16 weights, load_w1 one (for widths that are not a multiple of 16).
template <int N, typename Load, typename Load1>
inline void dots(Load load_w, Load1 load_w1, int in, const float* x, float* out) {
  // 4 independent accumulators per row keep FMAs in flight; their order is the same whatever N
  // is, so a row's result does not depend on the rows computed with it.
  constexpr int U = 4;
  vf acc[N][U];
  for (int r = 0; r < N; ++r)
    for (int u = 0; u < U; ++u) acc[r][u] = vf{};
  int k = 0;
  for (; k + U * L <= in; k += U * L) {
    for (int u = 0; u < U; ++u) {
      const vf w = load_w(k + u * L);
      for (int r = 0; r < N; ++r) acc[r][u] += w * load(x + r * in + k + u * L);
    }
  }
  for (; k + L <= in; k += L) {
    const vf w = load_w(k);
    for (int r = 0; r < N; ++r) acc[r][0] += w * load(x + r * in + k);
  }
  for (int r = 0; r < N; ++r) {
    for (int u = 1; u < U; ++u) acc[r][0] += acc[r][u];
    out[r] = hsum(acc[r][0]);
  }
  for (; k < in; ++k) {
    const float w = load_w1(k);
    for (int r = 0; r < N; ++r) out[r] += w * x[r * in + k];
  }
}

// dot products of n rows of x with one quantized row (32-value blocks).
template <int N, typename Widen>
inline void dots_blocks(Widen widen, const unsigned char* row, std::size_t block_bytes, int in,
                        const float* x, float* out) {
  constexpr int U = 2;  // two blocks, each two chains: 4 accumulators per row, whatever N is
  vf acc[N][2 * U];
  for (int r = 0; r < N; ++r)
    for (int u = 0; u < 2 * U; ++u) acc[r][u] = vf{};
  int k = 0;
  for (; k + U * 2 * L <= in; k += U * 2 * L) {
    for (int u = 0; u < U; ++u, row += block_bytes) {
      vf lo, hi;
      widen(row, lo, hi);
      for (int r = 0; r < N; ++r) {
        acc[r][2 * u] += lo * load(x + r * in + k + 2 * u * L);
        acc[r][2 * u + 1] += hi * load(x + r * in + k + 2 * u * L + L);
      }
    }
  }
  for (; k < in; k += 2 * L, row += block_bytes) {
    vf lo, hi;
    widen(row, lo, hi);
    for (int r = 0; r < N; ++r) {
      acc[r][0] += lo * load(x + r * in + k);
      acc[r][1] += hi * load(x + r * in + k + L);
    }
  }
  for (int r = 0; r < N; ++r) {
    for (int u = 1; u < 2 * U; ++u) acc[r][0] += acc[r][u];
    out[r] = hsum(acc[r][0]);
  }
}

void widen_rows(WeightType type, const void* w, std::size_t w_row_bytes, int cols, int r_begin,
                int r_end, float* out) {
  for (int r = r_begin; r < r_end; ++r, out += cols) {
    const auto* row =
        static_cast<const unsigned char*>(w) + static_cast<std::size_t>(r) * w_row_bytes;
    switch (type) {
      case WeightType::f32:
        std::memcpy(out, row, static_cast<std::size_t>(cols) * 4);
        break;
      case WeightType::f16: {
        int k = 0;
        for (; k + L <= cols; k += L) store(out + k, load_half(row + 2 * k));
        for (; k < cols; ++k) {
          std::uint16_t h;
          std::memcpy(&h, row + 2 * k, 2);
          out[k] = scalar_half(h);
        }
        break;
      }
      case WeightType::q8_0:
      case WeightType::q4_0: {
        const std::size_t bb = quant_block_bytes(type);
        for (int k = 0; k < cols; k += 2 * L, row += bb) {
          vf lo, hi;
          if (type == WeightType::q8_0) {
            widen_q8_0(row, lo, hi);
          } else {
            widen_q4_0(row, lo, hi);
          }
          store(out + k, lo);
          store(out + k + L, hi);
        }
        break;
      }
      default:
        dequantize_row(type, row, out, static_cast<std::size_t>(cols));
    }
  }
}

// Weight rows ahead of the one being summed whose bytes gemv asks for from memory.
constexpr int kPrefetchRows = 4;

template <int N>
void gemv_rows(WeightType type, const void* w, std::size_t w_row_bytes, int in, const float* x,
               const float* bias, float* y, int ldy, int o_begin, int o_end, float* scratch) {
  float out[N];
  for (int o = o_begin; o < o_end; ++o) {
    const auto* row =
        static_cast<const unsigned char*>(w) + static_cast<std::size_t>(o) * w_row_bytes;
    // The weights are read once per step: ask for a later row's bytes while this one is summed.
    if (o + kPrefetchRows < o_end) {
      for (std::size_t at = 0; at < w_row_bytes; at += 64)
        __builtin_prefetch(row + kPrefetchRows * w_row_bytes + at);
    }
    switch (type) {
      case WeightType::f32: {
        const auto* f = reinterpret_cast<const float*>(row);
        dots<N>([f](int k) { return load(f + k); }, [f](int k) { return f[k]; }, in, x, out);
        break;
      }
      case WeightType::f16:
        dots<N>([row](int k) { return load_half(row + 2 * k); },
                [row](int k) {
                  std::uint16_t h;
                  std::memcpy(&h, row + 2 * k, 2);
                  return scalar_half(h);
                },
                in, x, out);
        break;
      // Lambdas, not function pointers: each instantiation inlines its widening, so the widened
      // values never leave registers.
      case WeightType::q8_0:
        dots_blocks<N>([](const unsigned char* b, vf& lo, vf& hi) { widen_q8_0(b, lo, hi); }, row,
                       quant_block_bytes(type), in, x, out);
        break;
      case WeightType::q4_0:
        dots_blocks<N>([](const unsigned char* b, vf& lo, vf& hi) { widen_q4_0(b, lo, hi); }, row,
                       quant_block_bytes(type), in, x, out);
        break;
      default:  // the rarer quantized types: widen the row, then as f32
        dequantize_row(type, row, scratch, static_cast<std::size_t>(in));
        dots<N>([scratch](int k) { return load(scratch + k); },
                [scratch](int k) { return scratch[k]; }, in, x, out);
    }
    const float b = bias ? bias[o] : 0.0f;
    for (int r = 0; r < N; ++r) y[static_cast<std::size_t>(r) * ldy + o] = out[r] + b;
  }
}

void gemv(WeightType type, const void* w, std::size_t w_row_bytes, int in, const float* x, int n,
          const float* bias, float* y, int ldy, int o_begin, int o_end) {
  // Rows of the rarer types are widened here first (ModelFile refuses wider rows of them).
  float scratch[kMaxWidenedRow];
  // Output rows in blocks of 16, x rows in fours (then a pair, then one): a block of weight
  // rows stays in L1 while every group passes over it.
  constexpr int kBlock = 16;
  for (int o0 = o_begin; o0 < o_end; o0 += kBlock) {
    const int o1 = o0 + kBlock < o_end ? o0 + kBlock : o_end;
    int r = 0;
    for (; r + 4 <= n; r += 4) {
      gemv_rows<4>(type, w, w_row_bytes, in, x + static_cast<std::size_t>(r) * in, bias,
                   y + static_cast<std::size_t>(r) * ldy, ldy, o0, o1, scratch);
    }
    for (; r + 2 <= n; r += 2) {
      gemv_rows<2>(type, w, w_row_bytes, in, x + static_cast<std::size_t>(r) * in, bias,
                   y + static_cast<std::size_t>(r) * ldy, ldy, o0, o1, scratch);
    }
    if (r < n) {
      gemv_rows<1>(type, w, w_row_bytes, in, x + static_cast<std::size_t>(r) * in, bias,
                   y + static_cast<std::size_t>(r) * ldy, ldy, o0, o1, scratch);
    }
  }
}

float dot(const float* a, const float* b, int n) {
  vf acc = vf{};
  int i = 0;
  for (; i + L <= n; i += L) acc += load(a + i) * load(b + i);
  float s = hsum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int n) {
  const vf av = splat(a);
  int i = 0;
  for (; i + L <= n; i += L) store(y + i, load(y + i) + av * load(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

// Loads of 16 values and of one, from floats or from halves.
struct FloatValues {
  const float* p;
  vf vec(std::size_t i) const { return load(p + i); }
  float one(std::size_t i) const { return p[i]; }
};
struct HalfValues {
  const std::uint16_t* p;
  vf vec(std::size_t i) const { return load_half(p + i); }
  float one(std::size_t i) const { return scalar_half(p[i]); }
};

template <int R, typename Keys>
void scores_kt_rows_n(const float* q, int ldq, Keys kt, int dh, int t, float* scores) {
  int j = 0;
  for (; j + L <= t; j += L) {
    vf acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vf{};
    for (int c = 0; c < dh; ++c) {
      const vf k = kt.vec(static_cast<std::size_t>(c) * t + j);
      for (int r = 0; r < R; ++r) acc[r] += q[r * ldq + c] * k;
    }
    for (int r = 0; r < R; ++r) store(scores + static_cast<std::size_t>(r) * t + j, acc[r]);
  }
  for (; j < t; ++j) {
    for (int r = 0; r < R; ++r) {
      float a = 0;
      for (int c = 0; c < dh; ++c)
        a += q[r * ldq + c] * kt.one(static_cast<std::size_t>(c) * t + j);
      scores[static_cast<std::size_t>(r) * t + j] = a;
    }
  }
}

template <typename Keys>
void scores_kt_rows_any(const float* q, int ldq, int rows, Keys kt, int dh, int t, float* scores) {
  switch (rows) {
    case 1:
      return scores_kt_rows_n<1>(q, ldq, kt, dh, t, scores);
    case 2:
      return scores_kt_rows_n<2>(q, ldq, kt, dh, t, scores);
    case 3:
      return scores_kt_rows_n<3>(q, ldq, kt, dh, t, scores);
    case 4:
      return scores_kt_rows_n<4>(q, ldq, kt, dh, t, scores);
    case 5:
      return scores_kt_rows_n<5>(q, ldq, kt, dh, t, scores);
    case 6:
      return scores_kt_rows_n<6>(q, ldq, kt, dh, t, scores);
    case 7:
      return scores_kt_rows_n<7>(q, ldq, kt, dh, t, scores);
    default:
      return scores_kt_rows_n<8>(q, ldq, kt, dh, t, scores);
  }
}

void scores_kt_rows(const float* q, int ldq, int rows, const float* kt, int dh, int t,
                    float* scores) {
  scores_kt_rows_any(q, ldq, rows, FloatValues{kt}, dh, t, scores);
}

void scores_kt_rows_half(const float* q, int ldq, int rows, const std::uint16_t* kt, int dh, int t,
                         float* scores) {
  scores_kt_rows_any(q, ldq, rows, HalfValues{kt}, dh, t, scores);
}

template <int R, typename Values>
void weighted_sum_rows_n(const float* p, int ldp, int t, Values v, int ldv, int dh, float* out,
                         int ldo) {
  const int nv = dh / L;
  for (int c0 = 0; c0 < nv; c0 += 4) {  // 4 vectors of columns x R rows of accumulators
    const int cn = nv - c0 < 4 ? nv - c0 : 4;
    vf acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < 4; ++c) acc[r][c] = vf{};
    for (int j = 0; j < t; ++j) {
      const std::size_t row = static_cast<std::size_t>(j) * ldv + c0 * L;
      for (int c = 0; c < cn; ++c) {
        const vf vv = v.vec(row + c * L);
        for (int r = 0; r < R; ++r) acc[r][c] += p[static_cast<std::size_t>(r) * ldp + j] * vv;
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < cn; ++c)
        store(out + static_cast<std::size_t>(r) * ldo + (c0 + c) * L, acc[r][c]);
  }
}

template <typename Values>
void weighted_sum_rows_any(const float* p, int ldp, int rows, int t, Values v, int ldv, int dh,
                           float* out, int ldo) {
  int r = 0;
  for (; r + 4 <= rows; r += 4)
    weighted_sum_rows_n<4>(p + static_cast<std::size_t>(r) * ldp, ldp, t, v, ldv, dh,
                           out + static_cast<std::size_t>(r) * ldo, ldo);
  for (; r < rows; ++r)
    weighted_sum_rows_n<1>(p + static_cast<std::size_t>(r) * ldp, ldp, t, v, ldv, dh,
                           out + static_cast<std::size_t>(r) * ldo, ldo);
}

void weighted_sum_rows(const float* p, int ldp, int rows, int t, const float* v, int ldv, int dh,
                       float* out, int ldo) {
  weighted_sum_rows_any(p, ldp, rows, t, FloatValues{v}, ldv, dh, out, ldo);
}

void weighted_sum_rows_half(const float* p, int ldp, int rows, int t, const std::uint16_t* v,
                            int ldv, int dh, float* out, int ldo) {
  weighted_sum_rows_any(p, ldp, rows, t, HalfValues{v}, ldv, dh, out, ldo);
}

void to_half(const float* x, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
  }
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
#endif
  for (; i < n; ++i) out[i] = float_to_half(x[i]);
}

void add(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + L <= n; i += L) store(y + i, load(y + i) + load(x + i));
  for (; i < n; ++i) y[i] += x[i];
}

// e^x to within 2 ulp over float's range (Cephes' expf: range reduction by ln 2 in two parts,
// a degree-6 polynomial); below -87.3 (and -inf) the result is 0.
inline vf exp_v(vf x) {
  const vi underflow = x < -87.3f;
  x = select(x > 88.3f, splat(88.3f), x);
  x = select(underflow, splat(-87.3f), x);
  // n = floor(x log2(e) + 1/2), taken 127 higher so that the value truncated is positive (a
  // truncation is then the floor) and is already the biased exponent of 2^n.
  const vi biased = to_vi(x * 1.44269504088896341f + 127.5f);
  const vf tf = to_vf(biased) - 127.0f;
  x = x - tf * 0.693359375f + tf * 2.12194440e-4f;
  const vf z = x * x;
  vf y = splat(1.9875691500e-4f);
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x + 1.0f;
  y = y * bits_as_vf(biased << 23);
  return select(underflow, splat(0.0f), y);
}

inline float exp_s(float x) {
  float in[L] = {x};
  float out[L];
  store(out, exp_v(load(in)));
  return out[0];
}

float max_of(const float* x, int n) {
  vf mv = splat(-__builtin_inff());
  int i = 0;
  for (; i + L <= n; i += L) {
    const vf v = load(x + i);
    mv = select(v > mv, v, mv);
  }
  float m = hmax(mv);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

double sum_exp(const float* x, int n, float shift) {
  double total = 0;
  int i = 0;
  while (i + L <= n) {
    vf block = vf{};
    const int end = i + 1024 <= n ? i + 1024 : n;
    for (; i + L <= end; i += L) block += exp_v(load(x + i) - shift);
    total += hsum(block);
  }
  for (; i < n; ++i) total += exp_s(x[i] - shift);
  return total;
}

void softmax(float* x, int n, float scale) {
  vf mv = splat(-__builtin_inff());
  int i = 0;
  for (; i + L <= n; i += L) {
    const vf v = load(x + i) * scale;
    mv = select(v > mv, v, mv);
  }
  float max = hmax(mv);
  for (int j = i; j < n; ++j) max = x[j] * scale > max ? x[j] * scale : max;
  if (max == -__builtin_inff()) {
    for (int j = 0; j < n; ++j) x[j] = 0.0f;
    return;
  }
  vf sv = vf{};
  for (i = 0; i + L <= n; i += L) {
    const vf e = exp_v(load(x + i) * scale - max);
    store(x + i, e);
    sv += e;
  }
  float sum = hsum(sv);
  if (i < n) {  // the last values (fewer than a vector): one vector exp for all of them
    float tail[L] = {};
    std::memcpy(tail, x + i, static_cast<std::size_t>(n - i) * sizeof(float));
    store(tail, exp_v(load(tail) * scale - max));
    for (int j = i; j < n; ++j) {
      x[j] = tail[j - i];
      sum += x[j];
    }
  }
  const vf inv = splat(1.0f / sum);
  for (i = 0; i + L <= n; i += L) store(x + i, load(x + i) * inv);
  for (int j = i; j < n; ++j) x[j] *= 1.0f / sum;
}

// erf(x): a rational approximation on [-4, 4] (odd polynomial of degree 13 over an even one of
// degree 8, the coefficients Eigen's and XLA's float erf use), max error 4.2e-7; erf(4) rounds
// to 1 in float.
inline vf erf_v(vf x) {
  x = select(x > 4.0f, splat(4.0f), x);
  x = select(x < -4.0f, splat(-4.0f), x);
  const vf x2 = x * x;
  vf p = splat(-2.72614225801306e-10f);
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  vf q = splat(-1.45660718464996e-05f);
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

// f over x[0, n) in place, a vector at a time (the tail through a padded vector).
template <typename F>
inline void map_in_place(float* x, std::size_t n, F f) {
  std::size_t i = 0;
  for (; i + L <= n; i += L) store(x + i, f(load(x + i)));
  if (i < n) {
    float tail[L] = {};
    std::memcpy(tail, x + i, (n - i) * 4);
    store(tail, f(load(tail)));
    std::memcpy(x + i, tail, (n - i) * 4);
  }
}

void gelu(float* x, std::size_t n) {
  map_in_place(x, n, [](vf v) { return 0.5f * v * (1.0f + erf_v(v * 0.70710678118654752f)); });
}

void sigmoid_in_place(float* x, std::size_t n) {
  map_in_place(x, n, [](vf v) { return 1.0f / (1.0f + exp_v(-v)); });
}

void tanh_in_place(float* x, std::size_t n) {
  map_in_place(x, n, [](vf v) { return 2.0f / (1.0f + exp_v(-2.0f * v)) - 1.0f; });
}

void layer_norm(const float* x, int d, const float* gamma, const float* beta, float* out) {
  vf sv = vf{};
  int i = 0;
  for (; i + L <= d; i += L) sv += load(x + i);
  double sum = hsum(sv);
  for (; i < d; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / d);
  vf vv = vf{};
  for (i = 0; i + L <= d; i += L) {
    const vf c = load(x + i) - mean;
    vv += c * c;
  }
  double var = hsum(vv);
  for (; i < d; ++i) var += static_cast<double>(x[i] - mean) * (x[i] - mean);
  var /= d;
  const float inv = static_cast<float>(1.0 / __builtin_sqrt(var + 1e-5));
  for (i = 0; i + L <= d; i += L)
    store(out + i, (load(x + i) - mean) * inv * load(gamma + i) + load(beta + i));
  for (; i < d; ++i) out[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

}  // namespace

const SimdKernels& SRA_CONCAT(simd_kernels_, SRA_SIMD_ISA)() {
  static const SimdKernels kernels{.name = SRA_STRINGIFY(SRA_SIMD_ISA),
                                   .gemv = gemv,
                                   .widen_rows = widen_rows,
                                   .dot = dot,
                                   .axpy = axpy,
                                   .scores_kt_rows = scores_kt_rows,
                                   .weighted_sum_rows = weighted_sum_rows,
                                   .scores_kt_rows_half = scores_kt_rows_half,
                                   .weighted_sum_rows_half = weighted_sum_rows_half,
                                   .to_half = to_half,
                                   .add = add,
                                   .max = max_of,
                                   .sum_exp = sum_exp,
                                   .softmax = softmax,
                                   .gelu = gelu,
                                   .sigmoid = sigmoid_in_place,
                                   .tanh = tanh_in_place,
                                   .layer_norm = layer_norm};
  return kernels;
}

}  // namespace sra::whisper
