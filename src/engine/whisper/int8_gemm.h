// Integer matrix products for the many-row products of a window (the encoder's linear layers and
// the decoder's cross-attention keys and values) when a model runs with WHISPER_COMPUTE=int8 (the
// default for quantized files on CPUs with AVX2, AVX-512 VNNI or AMX), as CTranslate2's int8
// compute type does:
//   - each weight row is quantized once to int8 with its own scale (max |w| / 127) and packed for
//     the kernel (Int8Matrix, built on first use from the file's rows, any stored type);
//   - each activation row is quantized as it comes, with its own scale (max |x| / 127), stored as
//     unsigned bytes q + 128 (the VNNI and AMX instructions multiply unsigned by signed bytes);
//   - products are summed exactly in int32, the +128 taken back out with the weight row's sum,
//     and scaled back to float: y = bias + (sx * sw) * (acc - 128 * sum_w).
// Every kernel gives bit-identical results (the sums are exact integers and the float epilogue is
// one fused multiply-add in each), so the portable kernel is the others' reference. Against the
// exact product of the unquantized operands, each output is within the bound int8_error_bound()
// computes (tests/unit/engine/whisper_int8_test.cpp); the transcripts this gives are compared with
// the exact products' in tests/integration/test_quantized.py.
//
// Pure functions over their arguments: safe on any thread. kernels.h's linear() is the caller;
// it splits rows across the thread budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sra::whisper {

// Weight rows kept together by the packing (one 512-bit register of int32 sums).
inline constexpr int kInt8Group = 16;

// Columns the packing pads to: one AMX tile's depth (64 bytes a row).
inline constexpr int kInt8Depth = 64;

// A weight matrix [rows, cols] quantized per row and packed: for each group of 16 rows, for each
// step of 4 columns, the 16 rows' 4 bytes (64 bytes; 16 steps are one AMX tile of the weights).
// Columns are padded with zeros to a multiple of 64 (depth), rows with zero rows (scale 0) to a
// multiple of 16.
struct Int8Matrix {
  int rows = 0;                     // output rows of the original matrix
  int cols = 0;                     // its columns (the products' depth)
  int depth = 0;                    // cols rounded up to a multiple of kInt8Depth
  std::vector<std::int8_t> packed;  // groups * (depth / 4) * 64 bytes
  std::vector<float> scales;        // per row (padded rows: 0)
  std::vector<std::int32_t> sums;   // per row: the sum of its int8 values
  std::size_t group_bytes() const { return static_cast<std::size_t>(depth) * kInt8Group; }
};

// Quantizes and packs `rows` rows of `cols` float values (row r at w + r * cols).
Int8Matrix quantize_weight_rows(const float* w, int rows, int cols);
// The same in parts, from separate threads if need be: an all-zero matrix of the shape, then rows
// [r_begin, r_end) of it, given at w (row r_begin first).
Int8Matrix empty_int8_matrix(int rows, int cols);
void quantize_weight_rows(const float* w, int r_begin, int r_end, Int8Matrix& m);

// Activations quantized per row: n rows of depth unsigned bytes (q + 128; padding 128, i.e. 0),
// and room for the rows up to a multiple of 16 (one AMX tile's rows; never used).
struct Int8Activations {
  int n = 0;
  int depth = 0;
  std::vector<std::uint8_t> bytes;  // round_up(n, 16) * depth
  std::vector<float> scales;        // per row
};
// Rows [r_begin, r_end) of x (`cols` values each, `cols` apart) into `out`, sized by the caller
// (n, depth, bytes and scales already sized).
void quantize_activation_rows(const float* x, int cols, int r_begin, int r_end,
                              Int8Activations& out);

// One product's operands: y[r * ldy + o] for activation rows r and every output row o < w.rows.
struct Int8Product {
  const Int8Activations* x;
  const Int8Matrix* w;
  const float* bias;  // per output row, or null
  float* y;
  int ldy;
};

// The kernels. Each computes activation rows [r_begin, r_end) of `p`, bit-identically.
using Int8Kernel = void (*)(const Int8Product& p, int r_begin, int r_end);
void int8_kernel_portable(const Int8Product& p, int r_begin, int r_end);
// AVX-512 with VNNI (vpdpbusd); only where int8_vnni_supported().
void int8_kernel_avx512_vnni(const Int8Product& p, int r_begin, int r_end);
bool int8_vnni_supported();
// AMX (tdpbusd on 16 x 64 tiles); only where int8_amx_supported(); r_begin a multiple of 16.
void int8_kernel_amx(const Int8Product& p, int r_begin, int r_end);
bool int8_amx_supported();
// AVX2 (vpmaddubsw on |q| and sign-moved weights); only where int8_avx2_supported().
void int8_kernel_avx2(const Int8Product& p, int r_begin, int r_end);
bool int8_avx2_supported();

// quantize_activation_rows with AVX-512 (the same bytes and scales); only where
// int8_vnni_supported().
void quantize_activation_rows_avx512(const float* x, int cols, int r_begin, int r_end,
                                     Int8Activations& out);
// quantize_weight_rows (the parts form) with AVX-512: the same bytes, scales and sums.
void quantize_weight_rows_avx512(const float* w, int r_begin, int r_end, Int8Matrix& m);
using Int8Quantizer = void (*)(const float* x, int cols, int r_begin, int r_end,
                               Int8Activations& out);
// The activation quantizer that goes with int8_kernel().
Int8Quantizer int8_quantizer();

// The kernel this process uses for int8 products: AMX where the CPU and the OS allow it, else VNNI
// where the CPU has it and the active kernel set is avx512 (cpu_features.h), else AVX2 where the
// active set is avx2 or avx512, else the portable one; `fast` says whether it is not the last.
Int8Kernel int8_kernel(bool* fast = nullptr);
// Which that is: "AMX-INT8", "AVX-512 VNNI", "AVX2" or "portable".
const char* int8_kernel_name();

// A bound of |y - exact| for one output: the product of x's row and w's row, each quantized with
// scale max|.| / 127 (rounding to nearest), summed exactly, then rounded to float once more.
double int8_error_bound(const float* x, const float* w, int cols);

}  // namespace sra::whisper
