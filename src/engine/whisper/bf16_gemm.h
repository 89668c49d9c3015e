// bfloat16 matrix products for the many-row products of a window (the encoder's linear layers and
// attention, the decoder's cross-attention keys and values) when a model runs with
// WHISPER_COMPUTE=bf16, as CTranslate2's bfloat16 compute type does:
//   - each weight is rounded once to bfloat16 (the top 16 bits of its float, rounded to nearest,
//     ties to even) and packed for the kernel (Bf16Matrix, built on first use from the file's
//     rows, any stored type);
//   - each activation is rounded the same way as it comes;
//   - the products of pairs of columns are summed in float32 (AMX-BF16 `tdpbf16ps` or AVX-512 BF16
//     `vdpbf16ps`: the product of two bfloat16 values is exact in float, the sums are rounded),
//     then the bias added.
// Rounding to bfloat16 is the same on every path (to_bf16, and its AVX-512 form); the sums' order
// is the kernel's own (the instructions' internal rounding is the CPU's), so a kernel is not
// bit-identical to the portable one: each output is within bf16_error_bound() of the exact
// product of the unrounded operands (tests/unit/engine/whisper_bf16_test.cpp), and the transcripts
// this gives are compared with the exact products' in tests/integration/test_quantized.py.
//
// Pure functions over their arguments: safe on any thread (the AMX kernel loads its tile
// configuration on the calling thread). kernels.h's linear() and attention_bf16() are the
// callers; they split rows across the thread budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sra::whisper {

// Weight rows kept together by the packing (one 512-bit register of float sums).
inline constexpr int kBf16Group = 16;

// A float rounded to bfloat16 (nearest, ties to even; a NaN stays a quiet NaN of its sign; a
// subnormal float becomes a zero of its sign, as the AVX-512 BF16 conversion does).
std::uint16_t to_bf16(float x);
// The float a bfloat16 value stands for (exact).
float from_bf16(std::uint16_t b);

// Columns the packing pads to: one AMX tile's depth (32 values, 64 bytes a row).
inline constexpr int kBf16Depth = 32;

// A weight matrix [rows, cols] rounded to bfloat16 and packed: for each group of 16 rows, for each
// step of 2 columns, the 16 rows' 2 values (64 bytes; 16 steps are one AMX tile of the weights).
// Columns are padded with zeros to a multiple of 32 (depth), rows with zero rows to a multiple of
// 16.
struct Bf16Matrix {
  int rows = 0;                       // output rows of the original matrix
  int cols = 0;                       // its columns (the products' depth)
  int depth = 0;                      // cols rounded up to a multiple of kBf16Depth
  std::vector<std::uint16_t> packed;  // groups * (depth / 2) * 32 values
  std::size_t group_values() const { return static_cast<std::size_t>(depth) * kBf16Group; }
};

// An all-zero matrix of the shape; then rows [r_begin, r_end) of it, given at w (row r_begin
// first), from separate threads if need be.
Bf16Matrix empty_bf16_matrix(int rows, int cols);
void round_weight_rows_bf16(const float* w, int r_begin, int r_end, Bf16Matrix& m);

// Activations rounded to bfloat16: n rows of depth values (padding 0), and room for the rows up to
// a multiple of 16 (one AMX tile's rows; their values are never used).
struct Bf16Activations {
  int n = 0;
  int depth = 0;
  std::vector<std::uint16_t> values;  // round_up(n, 16) * depth
};
// Rows [r_begin, r_end) of x (`cols` values each, `cols` apart) into `out`, sized by the caller.
void round_activation_rows_bf16(const float* x, int cols, int r_begin, int r_end,
                                Bf16Activations& out);

// One product's operands: y[r * ldy + o] for activation rows r and every output row o < w.rows.
struct Bf16Product {
  const Bf16Activations* x;
  const Bf16Matrix* w;
  const float* bias;  // per output row, or null
  float* y;
  int ldy;
};

// The kernels. Each computes activation rows [r_begin, r_end) of `p`.
using Bf16Kernel = void (*)(const Bf16Product& p, int r_begin, int r_end);
// Sums each pair of columns' products, then adds them in column order (the reference).
void bf16_kernel_portable(const Bf16Product& p, int r_begin, int r_end);
// AVX-512 BF16 (vdpbf16ps); only where bf16_avx512_supported().
void bf16_kernel_avx512(const Bf16Product& p, int r_begin, int r_end);
// AMX (tdpbf16ps on 16 x 32 tiles); only where bf16_amx_supported(); r_begin a multiple of 16.
void bf16_kernel_amx(const Bf16Product& p, int r_begin, int r_end);
// round_activation_rows_bf16 with AVX-512 (the same values).
void round_activation_rows_bf16_avx512(const float* x, int cols, int r_begin, int r_end,
                                       Bf16Activations& out);
// Whether this process runs the AVX-512 BF16 kernel: the CPU has it and the active kernel set is
// avx512 (cpu_features.h).
bool bf16_avx512_supported();
// Whether this process may run the AMX kernel: bf16_avx512_supported(), the CPU has AMX-BF16 and
// the kernel grants the process its tile state (asked once).
bool bf16_amx_supported();

// The kernel and the activation rounding this process uses, and the kernel's name
// ("AMX-BF16", "AVX-512 BF16" or "portable"). AMX where supported, unless SRA_BF16_KERNEL=avx512
// (benchmarks and tests compare the two); a bad SRA_BF16_KERNEL throws sra::Error(config).
Bf16Kernel bf16_kernel();
using Bf16Rounder = void (*)(const float* x, int cols, int r_begin, int r_end,
                             Bf16Activations& out);
Bf16Rounder bf16_rounder();
const char* bf16_kernel_name();

// A bound of |y - exact| for one output: the product of x's row and w's row, each value rounded
// to bfloat16 (relative error 2^-9), the pairs' products summed in float (`cols` roundings at
// most, each 2^-24 relative to the partial sum's magnitude).
double bf16_error_bound(const float* x, const float* w, int cols);

}  // namespace sra::whisper
