// bf16_gemm.h's AMX kernel (compiled with -mamx-tile -mamx-bf16; run only where
// bf16_amx_supported()). Eight tiles of 16 rows x 64 bytes: four sums (32 activation rows x 32
// outputs), two of activations (16 rows x 32 values), two of weights (16 steps of 16 rows' pairs,
// bf16_gemm.h's packing as it is).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "engine/whisper/amx_tiles.h"
#include "engine/whisper/bf16_gemm.h"

namespace sra::whisper {
namespace {

constexpr int kTileRows = kAmxTileRows;

// Sums tile (16 x 16 floats, 64 bytes a row) plus the bias into y's rows [r, r + rows) and
// outputs [o, o + lanes).
void store(const float* sums, const Bf16Product& p, int r, int rows, int o, int lanes) {
  const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
  const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(mask, p.bias + o) : _mm512_setzero_ps();
  for (int i = 0; i < rows; ++i) {
    _mm512_mask_storeu_ps(p.y + static_cast<std::size_t>(r + i) * p.ldy + o, mask,
                          _mm512_add_ps(_mm512_loadu_ps(sums + i * 16), bias));
  }
}

// RT row tiles from row r and GT weight groups from group g, summed over the whole depth.
// Tiles: sums 0..3 (row tile i, group j: i * 2 + j), activations 4..5, weights 6..7.
template <int RT, int GT>
void block(const Bf16Product& p, int r, int g, int r_end) {
  const Bf16Matrix& w = *p.w;
  const std::size_t lda = static_cast<std::size_t>(p.x->depth) * 2;  // bytes
  const std::uint16_t* a = p.x->values.data() + static_cast<std::size_t>(r) * p.x->depth;
  const std::uint16_t* b = w.packed.data() + static_cast<std::size_t>(g) * w.group_values();
  const std::size_t group_values = w.group_values();
  // Tile numbers must be constants: each case names them.
  _tile_zero(0);
  if constexpr (GT > 1) _tile_zero(1);
  if constexpr (RT > 1) _tile_zero(2);
  if constexpr (RT > 1 && GT > 1) _tile_zero(3);
  for (int k = 0; k < w.depth; k += kBf16Depth) {
    // The weights' 16 steps of 2 columns from column k: 16 rows of 64 bytes, contiguous.
    const std::uint16_t* bk = b + static_cast<std::size_t>(k / 2) * 32;
    _tile_loadd(4, a + k, lda);
    _tile_loadd(6, bk, 64);
    if constexpr (GT > 1) _tile_loadd(7, bk + group_values, 64);
    if constexpr (RT > 1) _tile_loadd(5, a + 16 * p.x->depth + k, lda);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (GT > 1) _tile_dpbf16ps(1, 4, 7);
    if constexpr (RT > 1) _tile_dpbf16ps(2, 5, 6);
    if constexpr (RT > 1 && GT > 1) _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float sums[4][kTileRows * 16];
  _tile_stored(0, sums[0], 64);
  if constexpr (GT > 1) _tile_stored(1, sums[1], 64);
  if constexpr (RT > 1) _tile_stored(2, sums[2], 64);
  if constexpr (RT > 1 && GT > 1) _tile_stored(3, sums[3], 64);
  for (int i = 0; i < RT; ++i) {
    const int r0 = r + i * kTileRows;
    const int rows = std::min(kTileRows, r_end - r0);
    if (rows <= 0) break;
    for (int j = 0; j < GT; ++j) {
      const int o = (g + j) * kBf16Group;
      store(sums[i * 2 + j], p, r0, rows, o, std::min(kBf16Group, w.rows - o));
    }
  }
}

}  // namespace

void bf16_kernel_amx(const Bf16Product& p, int r_begin, int r_end) {
  const int groups = (p.w->rows + kBf16Group - 1) / kBf16Group;
  run_amx_blocks(groups, r_begin, r_end,
                 [&]<int RT, int GT>(int r, int g) { block<RT, GT>(p, r, g, r_end); });
}

}  // namespace sra::whisper
