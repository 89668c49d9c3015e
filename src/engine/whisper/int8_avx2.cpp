// int8_gemm.h's AVX2 kernel (compiled with -mavx2 -mfma; run only where the CPU has them): the
// CPUs without VNNI. AVX2 multiplies unsigned by signed bytes into saturating 16-bit pairs
// (vpmaddubsw), so the activations are taken back to signed bytes q (the stored q + 128 with its
// top bit flipped) and multiplied as |q| times w with q's sign moved onto w (vpsignb): each pair
// is at most 2 * 127 * 127, which 16 bits hold, and the sum of the products is the exact integer
// the other kernels compute (they take 128 * sum_w back out of theirs), so the result is
// bit-identical to theirs.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/whisper/int8_gemm.h"

namespace sra::whisper {
namespace {

// Activation rows a tile computes at once (each against the 16 rows of one weight group, as
// two registers of 8).
constexpr int kTileRows = 4;
// Activation rows whose bytes stay in the caches while every weight group passes over them.
constexpr int kRowBlock = 48;

inline __m256i broadcast4(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// acc += the exact products of the signed bytes a and b, 4 to each int32 lane.
inline __m256i multiply_add(__m256i acc, __m256i a_abs, __m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(a_abs, _mm256_sign_epi8(b, a));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// The first `lanes` (0..8) lanes set, for masked loads and stores.
inline __m256i lanes_mask(int lanes) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), index);
}

// Rows r0 .. r0 + R of the product with weight group g, summed over every step.
template <int R>
void tile(const Int8Product& p, int r0, int g) {
  const Int8Matrix& w = *p.w;
  const int steps = w.depth / 4;
  const std::int8_t* b0 = w.packed.data() + static_cast<std::size_t>(g) * w.group_bytes();
  const std::uint8_t* a0 = p.x->bytes.data() + static_cast<std::size_t>(r0) * p.x->depth;
  const std::size_t lda = static_cast<std::size_t>(p.x->depth);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (int s = 0; s < steps; ++s) {
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + s * 64));
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + s * 64 + 32));
    for (int i = 0; i < R; ++i) {
      const __m256i a = _mm256_xor_si256(broadcast4(a0 + i * lda + s * 4), flip);  // q
      const __m256i a_abs = _mm256_sign_epi8(a, a);
      acc[i][0] = multiply_add(acc[i][0], a_abs, a, low);
      acc[i][1] = multiply_add(acc[i][1], a_abs, a, high);
    }
  }
  for (int half = 0; half < 2; ++half) {
    const int o = g * kInt8Group + half * 8;
    const int lanes = std::min(8, w.rows - o);
    if (lanes <= 0) break;
    const __m256i mask = lanes_mask(lanes);
    const __m256 sw = _mm256_maskload_ps(w.scales.data() + o, mask);
    const __m256 bias = p.bias ? _mm256_maskload_ps(p.bias + o, mask) : _mm256_setzero_ps();
    for (int i = 0; i < R; ++i) {
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(p.x->scales[r0 + i]), sw);
      const __m256 v = _mm256_cvtepi32_ps(acc[i][half]);
      _mm256_maskstore_ps(p.y + static_cast<std::size_t>(r0 + i) * p.ldy + o, mask,
                          _mm256_fmadd_ps(scale, v, bias));
    }
  }
}

}  // namespace

void int8_kernel_avx2(const Int8Product& p, int r_begin, int r_end) {
  const int groups = (p.w->rows + kInt8Group - 1) / kInt8Group;
  for (int block = r_begin; block < r_end; block += kRowBlock) {
    const int block_end = std::min(r_end, block + kRowBlock);
    for (int g = 0; g < groups; ++g) {  // one group's bytes stay in L1 over the block's rows
      int r = block;
      for (; r + kTileRows <= block_end; r += kTileRows) tile<kTileRows>(p, r, g);
      for (; r < block_end; ++r) tile<1>(p, r, g);
    }
  }
}

}  // namespace sra::whisper
