// Integer products of a few activation rows (decoding: at most kGemvMaxRows) with a quantized
// file's weights as they are stored (q8_0, q4_0, q4_1, q5_0, q5_1: 32-value blocks, each with its
// own scale), as whisper.cpp and llama.cpp compute them, when a model runs with
// WHISPER_COMPUTE=int8 (the default for quantized files on CPUs with AVX2 or AVX-512 VNNI):
//   - each activation row is quantized per 32-value block: scale d_x = max |x| / 127, values
//     q_x = round(x / d_x) in [-127, 127] (BlockActivations);
//   - each weight block's integer values q_w (q8_0: the stored bytes; q4_0: nibble - 8; q5_0:
//     5 bits - 16; q4_1 and q5_1: the unsigned values, their minimum m added apart) meet q_x in
//     exact int32 sums, 4 products to a lane, 8 lanes to a block, 16 lanes to a pair of blocks;
//   - each lane is scaled back in float: acc[j] = fma(lane sum, d_w * d_x, acc[j]); the 16 lanes
//     are summed in a fixed tree (8 + 8, 4 + 4, 2 + 2, 1 + 1), the types with a minimum add
//     m * d_x * sum(q_x) block by block, then the bias.
// The weights are read once per call for every activation row, in their stored bytes (nothing is
// widened or copied). Every kernel follows the arithmetic above operation for operation, so the
// portable kernel is the others' reference, bit for bit. Against the exact product of the stored
// weights with the unquantized activations, each output is within int8_gemv_error_bound().
//
// Pure functions over their arguments: safe on any thread. kernels.h's linear() is the caller;
// it splits the output rows across the thread budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/whisper/weight_type.h"

namespace sra::whisper {

// Whether the block products take weights of `type` (the quantized types with 32-value blocks).
bool int8_gemv_supports(WeightType type);

// n activation rows of `cols` values (a multiple of 32), quantized per 32-value block.
struct BlockActivations {
  int n = 0;
  int cols = 0;
  std::vector<std::int8_t> q;  // n * cols values in [-127, 127]
  std::vector<float> d;        // n * cols / 32 block scales (0 for an all-zero or non-finite block)
  std::vector<float> ds;       // n * cols / 32: d * the sum of the block's q (for the minimums)
};
// Quantizes rows x[0, n) (`cols` apart) into `out` (resized).
void quantize_blocks(const float* x, int n, int cols, BlockActivations& out);

// One product's operands: y[r * ldy + o] = bias[o] + row o of the weights . row r of x, for
// every activation row r < x.n and the output rows o a kernel call is given.
struct BlockProduct {
  WeightType type;
  const unsigned char* w;  // the stored rows, row_bytes apart
  std::size_t row_bytes;
  const BlockActivations* x;
  const float* bias;  // per output row, or null
  float* y;
  int ldy;
};

// The kernels: output rows [o_begin, o_end) of `p`, bit-identically.
using BlockGemvKernel = void (*)(const BlockProduct& p, int o_begin, int o_end);
void int8_gemv_portable(const BlockProduct& p, int o_begin, int o_end);
// AVX-512 VNNI (vpdpbusd); only where int8_vnni_supported() (int8_gemm.h).
void int8_gemv_avx512_vnni(const BlockProduct& p, int o_begin, int o_end);
// AVX2 (vpmaddubsw, vpmaddwd); only where int8_avx2_supported().
void int8_gemv_avx2(const BlockProduct& p, int o_begin, int o_end);

// The kernel this process uses (the same choice as int8_kernel(); the VNNI one where that is AMX),
// and its name ("AVX-512 VNNI", "AVX2" or "portable").
BlockGemvKernel int8_gemv_kernel();
const char* int8_gemv_kernel_name();

// A bound of |y - exact| for one output: row `w` (`cols` values, as stored: widened exactly) with
// the activation row x quantized per block as above, every sum of the float epilogue rounded.
double int8_gemv_error_bound(const float* x, const float* w, int cols);

}  // namespace sra::whisper
