// WeightType: how the values of one weight tensor are stored in a whisper.cpp ggml file (f32,
// f16, and the block-quantized q4_0, q4_1, q5_0, q5_1, q8_0 that whisper.cpp's `whisper-quantize`
// writes), with the sizes of a row and a portable row dequantizer. A quantized row of `cols`
// values is cols / 32 blocks, each a half-precision scale (and, for the _1 types, a minimum)
// followed by its packed values. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sra::whisper {

// The numbers are ggml's type ids, as they appear in a tensor header.
enum class WeightType : int { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8 };

// Values per quantized block.
inline constexpr int kQuantBlock = 32;

// The type with ggml id `id`, or nullopt for ids we do not read (k-quants, bf16, ...).
std::optional<WeightType> weight_type_from_id(int id);
std::string_view weight_type_name(WeightType type);
bool is_quantized(WeightType type);
// Bytes of one block of 32 values (quantized types only).
std::size_t quant_block_bytes(WeightType type);
// Bytes a row of `cols` values takes (cols a multiple of 32 for quantized types).
std::size_t row_bytes(WeightType type, std::size_t cols);
// IEEE half to float.
float half_to_float(std::uint16_t h);
// Whether blocks of `type` carry a minimum added to every value (q4_1, q5_1).
bool has_block_minimum(WeightType type);
// The 32 integers of one stored block of a quantized type, in value order (q8_0: the bytes;
// q4_0: nibble - 8; q5_0: 5 bits - 16; q4_1, q5_1: the unsigned values), its scale `d` and
// minimum `m` (0 for the types without one): value j is q[j] * d (+ m).
void unpack_block(WeightType type, const unsigned char* block, std::int8_t* q, float& d, float& m);
// Widens one row of `cols` values stored as `type` at `src` into `dst` (portable code).
void dequantize_row(WeightType type, const void* src, float* dst, std::size_t cols);

}  // namespace sra::whisper
