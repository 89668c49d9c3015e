// int8_gemv.h's AVX-512 VNNI kernel (compiled with -mavx512vnni; run only where the CPU has it).
// A pair of blocks fills one 512-bit register (block b in lanes 0-7, b + 1 in lanes 8-15, as the
// portable kernel numbers them). vpdpbusd multiplies unsigned by signed bytes, so the signed
// types (q8_0, q4_0, q5_0) multiply |q_w| by q_x with q_w's sign moved onto q_x (q_x is within
// [-127, 127]: its negation fits); q4_1 and q5_1 are unsigned already.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "engine/whisper/int8_gemv.h"

namespace sra::whisper {
namespace {

constexpr int kGemvTileRows = 4;  // activation rows computed against one weight row at once

inline float half_at(const unsigned char* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The 32 nibbles of a q4/q5 block's 16 bytes in value order (low nibbles first).
inline __m256i nibbles(const unsigned char* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low), _mm_and_si128(q, low));
}

// One block's 32 integer values (int8_gemv.h's q_w) and its scale and minimum.
inline __m256i block_values(WeightType type, const unsigned char* b, float& d, float& m) {
  d = half_at(b);
  switch (type) {
    case WeightType::q8_0:
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
    case WeightType::q4_0:
      return _mm256_sub_epi8(nibbles(b + 2), _mm256_set1_epi8(8));
    case WeightType::q4_1:
      m = half_at(b + 2);
      return nibbles(b + 4);
    case WeightType::q5_0:
    case WeightType::q5_1: {
      const bool with_min = type == WeightType::q5_1;
      if (with_min) m = half_at(b + 2);
      const unsigned char* qh_at = b + (with_min ? 4 : 2);
      std::uint32_t qh;
      std::memcpy(&qh, qh_at, 4);
      const __m256i v =
          _mm256_or_si256(nibbles(qh_at + 4), _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(0x10)));
      return with_min ? v : _mm256_sub_epi8(v, _mm256_set1_epi8(16));
    }
    default:
      return _mm256_setzero_si256();
  }
}

inline __m512i join(__m256i low, __m256i high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

// Lanes 0-7 a, lanes 8-15 b.
inline __m512 halves(float a, float b) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

// int8_gemv.h's lane tree: (8 + 8), (4 + 4), then (0 + 2) + (1 + 3).
inline float lane_sum(__m512 acc) {
  const __m256 h8 =
      _mm256_add_ps(_mm512_castps512_ps256(acc),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
  const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
}

// Output row o against activation rows r0 .. r0 + R.
template <int R>
void row_tile(const BlockProduct& p, int o, int r0) {
  const BlockActivations& x = *p.x;
  const int blocks = x.cols / 32;
  const std::size_t block_bytes = quant_block_bytes(p.type);
  const bool with_min = has_block_minimum(p.type);
  const bool is_signed = !with_min;  // the types with a minimum store unsigned values
  const unsigned char* row = p.w + static_cast<std::size_t>(o) * p.row_bytes;
  __m512 acc[R];
  float minimums[R];
  for (int i = 0; i < R; ++i) {
    acc[i] = _mm512_setzero_ps();
    minimums[i] = 0.0f;
  }
  for (int b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    float d0, d1 = 0.0f, m0 = 0.0f, m1 = 0.0f;
    const __m256i low = block_values(p.type, row + b * block_bytes, d0, m0);
    const __m256i high =
        pair ? block_values(p.type, row + (b + 1) * block_bytes, d1, m1) : _mm256_setzero_si256();
    const __m512i w = join(low, high);
    const __m512i w_abs = is_signed ? _mm512_abs_epi8(w) : w;
    const __mmask64 negative = is_signed ? _mm512_movepi8_mask(w) : 0;
    const __m512 dw = halves(d0, d1);
    for (int i = 0; i < R; ++i) {
      const std::size_t r = static_cast<std::size_t>(r0 + i);
      const std::int8_t* xq = x.q.data() + r * x.cols + b * 32;
      const float* xd = x.d.data() + r * blocks + b;
      const __m512i xv =
          pair ? _mm512_loadu_si512(xq)
               : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
      const __m512i xs = _mm512_mask_sub_epi8(xv, negative, _mm512_setzero_si512(), xv);
      const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w_abs, xs);
      const __m512 scale = _mm512_mul_ps(dw, halves(xd[0], pair ? xd[1] : 0.0f));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scale, acc[i]);
      if (with_min) {
        const float* xds = x.ds.data() + r * blocks + b;
        minimums[i] = std::fma(m0, xds[0], minimums[i]);
        if (pair) minimums[i] = std::fma(m1, xds[1], minimums[i]);
      }
    }
  }
  const float bias = p.bias ? p.bias[o] : 0.0f;
  for (int i = 0; i < R; ++i) {
    float y = lane_sum(acc[i]);
    if (with_min) y += minimums[i];
    p.y[static_cast<std::size_t>(r0 + i) * p.ldy + o] = y + bias;
  }
}

// Rows ahead whose bytes are asked for from memory while this one is computed (the weights are
// read once per step: the product waits on memory, not on arithmetic).
constexpr int kPrefetchRows = 4;

inline void prefetch_row(const BlockProduct& p, int o, int o_end) {
  if (o >= o_end) return;
  const char* row = reinterpret_cast<const char*>(p.w) + static_cast<std::size_t>(o) * p.row_bytes;
  for (std::size_t at = 0; at < p.row_bytes; at += 64) _mm_prefetch(row + at, _MM_HINT_T0);
}

}  // namespace

void int8_gemv_avx512_vnni(const BlockProduct& p, int o_begin, int o_end) {
  const int n = p.x->n;
  for (int o = o_begin; o < o_end; ++o) {  // a weight row stays in L1 over every activation row
    prefetch_row(p, o + kPrefetchRows, o_end);
    int r = 0;
    for (; r + kGemvTileRows <= n; r += kGemvTileRows) row_tile<kGemvTileRows>(p, o, r);
    for (; r + 2 <= n; r += 2) row_tile<2>(p, o, r);
    if (r < n) row_tile<1>(p, o, r);
  }
}

}  // namespace sra::whisper
