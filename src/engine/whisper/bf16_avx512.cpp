// bf16_gemm.h's AVX-512 BF16 kernel (compiled with -mavx512bf16; run only where the CPU has it).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/whisper/bf16_gemm.h"

namespace sra::whisper {
namespace {

// Activation rows a tile computes at once, and weight groups (16 rows each): 24 sums in registers.
constexpr int kTileRows = 6;
constexpr int kTileGroups = 4;
// Activation rows whose values stay in the caches while every weight group passes over them.
constexpr int kRowBlock = 48;

inline __m512bh broadcast_pair(const std::uint16_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(v));
}

// Rows r0 .. r0 + R and groups g0 .. g0 + G of the product, summed over every step.
template <int R, int G>
void tile(const Bf16Product& p, int r0, int g0) {
  const Bf16Matrix& w = *p.w;
  const int steps = w.depth / 2;
  const std::size_t group_values = w.group_values();
  const std::uint16_t* b0 = w.packed.data() + static_cast<std::size_t>(g0) * group_values;
  const std::uint16_t* a0 = p.x->values.data() + static_cast<std::size_t>(r0) * p.x->depth;
  const std::size_t lda = static_cast<std::size_t>(p.x->depth);
  __m512 acc[R][G];
  for (int i = 0; i < R; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = _mm512_setzero_ps();
  for (int s = 0; s < steps; ++s) {
    __m512bh b[G];
    for (int g = 0; g < G; ++g)
      b[g] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b0 + g * group_values + s * 32));
    for (int i = 0; i < R; ++i) {
      const __m512bh a = broadcast_pair(a0 + i * lda + s * 2);
      for (int g = 0; g < G; ++g) acc[i][g] = _mm512_dpbf16_ps(acc[i][g], a, b[g]);
    }
  }
  for (int g = 0; g < G; ++g) {
    const int o = (g0 + g) * kBf16Group;
    const int lanes = std::min(kBf16Group, w.rows - o);
    const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mask, p.bias + o) : _mm512_setzero_ps();
    for (int i = 0; i < R; ++i) {
      _mm512_mask_storeu_ps(p.y + static_cast<std::size_t>(r0 + i) * p.ldy + o, mask,
                            _mm512_add_ps(acc[i][g], bias));
    }
  }
}

// Rows r .. r + R and groups g .. g + gs (gs <= kTileGroups).
template <int R>
void tiles(const Bf16Product& p, int r, int g, int gs) {
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

}  // namespace

void round_activation_rows_bf16_avx512(const float* x, int cols, int r_begin, int r_end,
                                       Bf16Activations& out) {
  for (int r = r_begin; r < r_end; ++r) {
    const float* row = x + static_cast<std::size_t>(r) * cols;
    std::uint16_t* v = out.values.data() + static_cast<std::size_t>(r) * out.depth;
    for (int c = 0; c < cols; c += 16) {
      const __mmask16 k = cols - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (cols - c)) - 1);
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, row + c));
      _mm256_mask_storeu_epi16(v + c, k, reinterpret_cast<__m256i>(h));
    }
    std::fill(v + cols, v + out.depth, std::uint16_t{0});
  }
}

void bf16_kernel_avx512(const Bf16Product& p, int r_begin, int r_end) {
  const int groups = (p.w->rows + kBf16Group - 1) / kBf16Group;
  for (int block = r_begin; block < r_end; block += kRowBlock) {
    const int block_end = std::min(r_end, block + kRowBlock);
    for (int g = 0; g < groups; g += kTileGroups) {
      const int gs = std::min(kTileGroups, groups - g);
      int r = block;
      for (; r + kTileRows <= block_end; r += kTileRows) tiles<kTileRows>(p, r, g, gs);
      for (; r < block_end; ++r) tiles<1>(p, r, g, gs);
    }
  }
}

}  // namespace sra::whisper
