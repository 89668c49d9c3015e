// int8_gemm.h's AVX-512 VNNI kernel (compiled with -mavx512vnni; run only where the CPU has it).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/whisper/int8_gemm.h"

namespace sra::whisper {
namespace {

// Activation rows a tile computes at once, and weight groups (16 rows each).
constexpr int kTileRows = 4;
constexpr int kTileGroups = 4;
// Activation rows whose bytes stay in the caches while every weight group passes over them.
constexpr int kRowBlock = 48;

inline __m512i broadcast4(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Rows r0 .. r0 + R and groups g0 .. g0 + G of the product, summed over every step.
template <int R, int G>
void tile(const Int8Product& p, int r0, int g0) {
  const Int8Matrix& w = *p.w;
  const int steps = w.depth / 4;
  const std::size_t group_bytes = w.group_bytes();
  const std::int8_t* b0 = w.packed.data() + static_cast<std::size_t>(g0) * group_bytes;
  const std::uint8_t* a0 = p.x->bytes.data() + static_cast<std::size_t>(r0) * p.x->depth;
  const std::size_t lda = static_cast<std::size_t>(p.x->depth);
  __m512i acc[R][G];
  for (int i = 0; i < R; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = _mm512_setzero_si512();
  for (int s = 0; s < steps; ++s) {
    __m512i b[G];
    for (int g = 0; g < G; ++g) b[g] = _mm512_loadu_si512(b0 + g * group_bytes + s * 64);
    for (int i = 0; i < R; ++i) {
      const __m512i a = broadcast4(a0 + i * lda + s * 4);
      for (int g = 0; g < G; ++g) acc[i][g] = _mm512_dpbusd_epi32(acc[i][g], a, b[g]);
    }
  }
  for (int g = 0; g < G; ++g) {
    const int o = (g0 + g) * kInt8Group;
    const int lanes = std::min(kInt8Group, w.rows - o);
    const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
    const __m512 sw = _mm512_maskz_loadu_ps(mask, w.scales.data() + o);
    const __m512i offset = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mask, w.sums.data() + o), 7);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mask, p.bias + o) : _mm512_setzero_ps();
    for (int i = 0; i < R; ++i) {
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(p.x->scales[r0 + i]), sw);
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][g], offset));
      _mm512_mask_storeu_ps(p.y + static_cast<std::size_t>(r0 + i) * p.ldy + o, mask,
                            _mm512_fmadd_ps(scale, v, bias));
    }
  }
}

// Rows r .. r + R and groups g .. g + gs (gs <= kTileGroups).
template <int R>
void tiles(const Int8Product& p, int r, int g, int gs) {
  switch (gs) {
    case 4:
      tile<R, 4>(p, r, g);
      break;
    case 3:
      tile<R, 3>(p, r, g);
      break;
    case 2:
      tile<R, 2>(p, r, g);
      break;
    default:
      tile<R, 1>(p, r, g);
      break;
  }
}

// Lanes of the 16 values from column c on that lie within the row's `cols`.
inline __mmask16 columns_mask(int cols, int c) {
  return cols - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (cols - c)) - 1);
}

// int8_gemm.cpp's absolute_max, 16 values at a time: the largest |row[i]|, or infinity when a
// value is not finite (not <= the largest float; NaN compares false).
inline float row_absolute_max(const float* row, int cols) {
  __m512 m = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (int c = 0; c < cols; c += 16) {
    const __mmask16 k = columns_mask(cols, c);
    const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(k, row + c));
    bad |= _mm512_mask_cmp_ps_mask(k, a, _mm512_set1_ps(3.40282347e38f), _CMP_NLE_UQ);
    m = _mm512_max_ps(m, a);
  }
  return bad ? INFINITY : _mm512_reduce_max_ps(m);
}

// int8_gemm.cpp's quantize, 16 values at a time: x * inverse clamped to [-127, 127] and rounded
// to the nearest integer by adding and taking away 1.5 * 2^23 (columns outside `k` give 0).
inline __m512i quantize16(const float* x, __mmask16 k, __m512 inverse) {
  const __m512 round = _mm512_set1_ps(12582912.0f);
  __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x), inverse);
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  return _mm512_cvttps_epi32(_mm512_sub_ps(_mm512_add_ps(v, round), round));
}

}  // namespace

void quantize_activation_rows_avx512(const float* x, int cols, int r_begin, int r_end,
                                     Int8Activations& out) {
  // quantize_activation_rows's arithmetic, 16 values at a time: the same IEEE operations in the
  // same order, so the same bytes.
  const __m512i offset = _mm512_set1_epi32(128);
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = x + static_cast<std::size_t>(r) * cols;
    std::uint8_t* q = out.bytes.data() + static_cast<std::size_t>(r) * out.depth;
    const float max = row_absolute_max(row, cols);
    if (max == 0.0f || !std::isfinite(max)) {
      out.scales[r] = 0.0f;
      std::memset(q, 128, static_cast<std::size_t>(out.depth));
      continue;
    }
    out.scales[r] = max / 127.0f;
    const __m512 inverse = _mm512_set1_ps(127.0f / max);
    for (int c = 0; c < cols; c += 16) {
      const __mmask16 k = columns_mask(cols, c);
      const __m512i qi = _mm512_add_epi32(quantize16(row + c, k, inverse), offset);
      _mm_mask_storeu_epi8(q + c, k, _mm512_cvtepi32_epi8(qi));
    }
    std::memset(q + cols, 128, static_cast<std::size_t>(out.depth - cols));
  }
}

void quantize_weight_rows_avx512(const float* w, int r_begin, int r_end, Int8Matrix& m) {
  // quantize_weight_rows's arithmetic, 16 values at a time (the same bytes, scales and sums).
  const int cols = m.cols;
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = w + static_cast<std::size_t>(r - r_begin) * cols;
    const float max = row_absolute_max(row, cols);
    if (max == 0.0f || !std::isfinite(max))
      continue;  // zeros, as the portable quantizer leaves them
    m.scales[r] = max / 127.0f;
    const __m512 inverse = _mm512_set1_ps(127.0f / max);
    std::int8_t* lane = m.packed.data() +
                        static_cast<std::size_t>(r / kInt8Group) * m.group_bytes() +
                        (r % kInt8Group) * 4;
    __m512i sum = _mm512_setzero_si512();
    for (int c = 0; c < cols; c += 16) {
      const __mmask16 k = columns_mask(cols, c);
      const __m512i q = _mm512_maskz_mov_epi32(k, quantize16(row + c, k, inverse));
      sum = _mm512_add_epi32(sum, q);
      alignas(16) std::int32_t quads[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(quads), _mm512_cvtepi32_epi8(q));
      // 4 columns per step: step (c / 4 + j) of this row's lane.
      for (int j = 0; j < 4 && c + 4 * j < cols; ++j)
        std::memcpy(lane + static_cast<std::size_t>(c / 4 + j) * 64, &quads[j], 4);
    }
    m.sums[r] = _mm512_reduce_add_epi32(sum);
  }
}

void int8_kernel_avx512_vnni(const Int8Product& p, int r_begin, int r_end) {
  const int groups = (p.w->rows + kInt8Group - 1) / kInt8Group;
  for (int block = r_begin; block < r_end; block += kRowBlock) {
    const int block_end = std::min(r_end, block + kRowBlock);
    // Four weight groups at a time over the block's rows (their bytes stay in L1 and L2).
    for (int g = 0; g < groups; g += kTileGroups) {
      const int gs = std::min(kTileGroups, groups - g);
      int r = block;
      for (; r + kTileRows <= block_end; r += kTileRows) tiles<kTileRows>(p, r, g, gs);
      for (; r < block_end; ++r) tiles<1>(p, r, g, gs);
    }
  }
}

}  // namespace sra::whisper
