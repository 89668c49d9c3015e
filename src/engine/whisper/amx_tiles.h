// The AMX tile configuration the bf16 and int8 AMX kernels share (bf16_amx.cpp, int8_amx.cpp):
// eight tiles of 16 rows x 64 bytes. Include only from files compiled with -mamx-tile; call
// load_amx_tiles() on the thread that runs a kernel, before its first tile instruction, and
// _tile_release() after its last. Whether the process may use the tiles at all is
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

}  // namespace sra::whisper
