// int8_gemm.h's AMX kernel (compiled with -mamx-tile -mamx-int8; run only where
// int8_amx_supported()). Eight tiles of 16 rows x 64 bytes: four of int32 sums (32 activation rows
// x 32 outputs), two of activations (16 rows x 64 unsigned bytes), two of weights (16 steps of 16
// rows' 4 signed bytes, int8_gemm.h's packing as it is). The sums are exact integers and the
// epilogue is the VNNI kernel's, so the results are bit-identical to it.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "engine/whisper/amx_tiles.h"
#include "engine/whisper/cpu_features.h"
#include "engine/whisper/int8_gemm.h"

namespace sra::whisper {
namespace {

constexpr int kTileRows = kAmxTileRows;

// A tile of sums (16 x 16 int32, 64 bytes a row) scaled back into y's rows [r, r + rows) and
// outputs [o, o + lanes), as the VNNI kernel does: (sx * sw) * (acc - 128 * sum_w) + bias.
void store(const std::int32_t* sums, const Int8Product& p, int r, int rows, int o, int lanes) {
  const Int8Matrix& w = *p.w;
  const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
  const __m512 sw = _mm512_maskz_loadu_ps(mask, w.scales.data() + o);
  const __m512i offset = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mask, w.sums.data() + o), 7);
  const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mask, p.bias + o) : _mm512_setzero_ps();
  for (int i = 0; i < rows; ++i) {
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(p.x->scales[r + i]), sw);
    const __m512 v =
        _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(sums + i * 16), offset));
    _mm512_mask_storeu_ps(p.y + static_cast<std::size_t>(r + i) * p.ldy + o, mask,
                          _mm512_fmadd_ps(scale, v, bias));
  }
}

// RT row tiles from row r and GT weight groups from group g, summed over the whole depth.
// Tiles: sums 0..3 (row tile i, group j: i * 2 + j), activations 4..5, weights 6..7.
template <int RT, int GT>
void block(const Int8Product& p, int r, int g, int r_end) {
  const Int8Matrix& w = *p.w;
  const std::size_t lda = static_cast<std::size_t>(p.x->depth);
  const std::uint8_t* a = p.x->bytes.data() + static_cast<std::size_t>(r) * lda;
  const std::int8_t* b = w.packed.data() + static_cast<std::size_t>(g) * w.group_bytes();
  const std::size_t group_bytes = w.group_bytes();
  // Tile numbers must be constants: each case names them.
  _tile_zero(0);
  if constexpr (GT > 1) _tile_zero(1);
  if constexpr (RT > 1) _tile_zero(2);
  if constexpr (RT > 1 && GT > 1) _tile_zero(3);
  for (int k = 0; k < w.depth; k += kInt8Depth) {
    // The weights' 16 steps of 4 columns from column k: 16 rows of 64 bytes, contiguous.
    const std::int8_t* bk = b + static_cast<std::size_t>(k) * kInt8Group;
    _tile_loadd(4, a + k, lda);
    _tile_loadd(6, bk, 64);
    if constexpr (GT > 1) _tile_loadd(7, bk + group_bytes, 64);
    if constexpr (RT > 1) _tile_loadd(5, a + 16 * lda + k, lda);
    _tile_dpbusd(0, 4, 6);
    if constexpr (GT > 1) _tile_dpbusd(1, 4, 7);
    if constexpr (RT > 1) _tile_dpbusd(2, 5, 6);
    if constexpr (RT > 1 && GT > 1) _tile_dpbusd(3, 5, 7);
  }
  alignas(64) std::int32_t sums[4][kTileRows * 16];
  _tile_stored(0, sums[0], 64);
  if constexpr (GT > 1) _tile_stored(1, sums[1], 64);
  if constexpr (RT > 1) _tile_stored(2, sums[2], 64);
  if constexpr (RT > 1 && GT > 1) _tile_stored(3, sums[3], 64);
  for (int i = 0; i < RT; ++i) {
    const int r0 = r + i * kTileRows;
    const int rows = std::min(kTileRows, r_end - r0);
    if (rows <= 0) break;
    for (int j = 0; j < GT; ++j) {
      const int o = (g + j) * kInt8Group;
      store(sums[i * 2 + j], p, r0, rows, o, std::min(kInt8Group, w.rows - o));
    }
  }
}

}  // namespace

bool int8_amx_supported() {
  return int8_vnni_supported() && amx_supported(false);
}

void int8_kernel_amx(const Int8Product& p, int r_begin, int r_end) {
  const int groups = (p.w->rows + kInt8Group - 1) / kInt8Group;
  run_amx_blocks(groups, r_begin, r_end,
                 [&]<int RT, int GT>(int r, int g) { block<RT, GT>(p, r, g, r_end); });
}

}  // namespace sra::whisper
