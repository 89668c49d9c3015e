// What the bf16 and int8 AMX kernels share (bf16_amx.cpp, int8_amx.cpp): the tile configuration
// (eight tiles of 16 rows x 64 bytes) and the order their blocks of 2 x 2 tiles of sums cover a
// product. Include only from files compiled with -mamx-tile; run_amx_blocks() configures the
// tiles on the calling thread and releases them. Whether the process may use the tiles at all is
// cpu_features.h's amx_supported().
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sra::whisper {

// Rows of every tile.
inline constexpr int kAmxTileRows = 16;

// Palette 1, as ldtilecfg reads it.
struct alignas(64) AmxTileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};

// Tiles 0..7 as 16 rows of 64 bytes, on the calling thread.
inline void load_amx_tiles() {
  AmxTileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kAmxTileRows;
    config.bytes_per_row[t] = 64;
  }
  _tile_loadconfig(&config);
}

// Rows [r_begin, r_end) of a product with `groups` groups of 16 outputs, in blocks of up to two
// row tiles by two groups: block.template operator()<RT, GT>(r, g) computes RT row tiles from row
// r and GT groups from group g (RT, GT in {1, 2}; the last rows and group may be a single tile).
// Two groups of weights pass over the rows' activations in turn (32 KiB at base's widths), so
// they stay in the caches. The tiles are configured before and released after.
template <typename Block>
void run_amx_blocks(int groups, int r_begin, int r_end, Block&& block) {
  load_amx_tiles();
  for (int g = 0; g < groups; g += 2) {
    const bool two_groups = g + 1 < groups;
    for (int r = r_begin; r < r_end; r += 2 * kAmxTileRows) {
      const bool two_rows = r + kAmxTileRows < r_end;
      if (two_rows && two_groups)
        block.template operator()<2, 2>(r, g);
      else if (two_rows)
        block.template operator()<2, 1>(r, g);
      else if (two_groups)
        block.template operator()<1, 2>(r, g);
      else
        block.template operator()<1, 1>(r, g);
    }
  }
  _tile_release();
}

}  // namespace sra::whisper
