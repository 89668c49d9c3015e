// int8_gemv.h's AVX2 kernel (compiled with -mavx2 -mfma -mf16c; run only where the CPU has them).
// One block per 256-bit register: block b of a pair in the accumulator of lanes 0-7, b + 1 in
// that of lanes 8-15, as the portable kernel numbers them. vpmaddubsw multiplies unsigned by
// signed bytes into saturating 16-bit pairs: the signed types multiply |q_w| by q_x with q_w's
// sign moved onto q_x (vpsignb), each pair at most 2 * 128 * 127, which 16 bits hold; vpmaddwd
// then sums the pairs exactly into 32-bit lanes of 4 products.
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

// 0x10 in byte k where bit k of `bits` is set.
inline __m256i fifth_bits(std::uint32_t bits) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
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
      const __m256i v = _mm256_or_si256(nibbles(qh_at + 4), fifth_bits(qh));
      return with_min ? v : _mm256_sub_epi8(v, _mm256_set1_epi8(16));
    }
    default:
      return _mm256_setzero_si256();
  }
}

// int8_gemv.h's lane tree over lanes 0-7 (low) and 8-15 (high).
inline float lane_sum(__m256 low, __m256 high) {
  const __m256 h8 = _mm256_add_ps(low, high);
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
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  float minimums[R];
  for (int i = 0; i < R; ++i) {
    acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    minimums[i] = 0.0f;
  }
  for (int b = 0; b < blocks; ++b) {
    float d, m = 0.0f;
    const __m256i w = block_values(p.type, row + b * block_bytes, d, m);
    const __m256i w_abs = is_signed ? _mm256_sign_epi8(w, w) : w;
    for (int i = 0; i < R; ++i) {
      const std::size_t r = static_cast<std::size_t>(r0 + i);
      const __m256i xv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q.data() + r * x.cols + b * 32));
      const __m256i xs = is_signed ? _mm256_sign_epi8(xv, w) : xv;
      const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, xs), ones);
      const __m256 scale = _mm256_set1_ps(d * x.d[r * blocks + b]);
      __m256& a = acc[i][b % 2];
      a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, a);
      if (with_min) minimums[i] = std::fma(m, x.ds[r * blocks + b], minimums[i]);
    }
  }
  const float bias = p.bias ? p.bias[o] : 0.0f;
  for (int i = 0; i < R; ++i) {
    float y = lane_sum(acc[i][0], acc[i][1]);
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

void int8_gemv_avx2(const BlockProduct& p, int o_begin, int o_end) {
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
