#include "engine/whisper/weight_type.h"

#include <cstring>

namespace sra::whisper {
namespace {

float half_at(const unsigned char* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}

}  // namespace

std::optional<WeightType> weight_type_from_id(int id) {
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
      return static_cast<WeightType>(id);
    default:
      return std::nullopt;
  }
}

std::string_view weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::f32:
      return "f32";
    case WeightType::f16:
      return "f16";
    case WeightType::q4_0:
      return "q4_0";
    case WeightType::q4_1:
      return "q4_1";
    case WeightType::q5_0:
      return "q5_0";
    case WeightType::q5_1:
      return "q5_1";
    case WeightType::q8_0:
      return "q8_0";
  }
  return "unknown";
}

bool is_quantized(WeightType type) {
  return type != WeightType::f32 && type != WeightType::f16;
}

std::size_t quant_block_bytes(WeightType type) {
  switch (type) {
    case WeightType::q4_0:
      return 2 + 16;  // scale, 32 nibbles
    case WeightType::q4_1:
      return 2 + 2 + 16;  // scale, minimum, 32 nibbles
    case WeightType::q5_0:
      return 2 + 4 + 16;  // scale, 32 fifth bits, 32 nibbles
    case WeightType::q5_1:
      return 2 + 2 + 4 + 16;
    case WeightType::q8_0:
      return 2 + 32;  // scale, 32 bytes
    default:
      return 0;
  }
}

std::size_t row_bytes(WeightType type, std::size_t cols) {
  switch (type) {
    case WeightType::f32:
      return cols * 4;
    case WeightType::f16:
      return cols * 2;
    default:
      return cols / kQuantBlock * quant_block_bytes(type);
  }
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f;
  std::uint32_t mant = h & 0x3ff;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      mant &= 0x3ff;
      bits = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | mant << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool has_block_minimum(WeightType type) {
  return type == WeightType::q4_1 || type == WeightType::q5_1;
}

void unpack_block(WeightType type, const unsigned char* b, std::int8_t* q, float& d, float& m) {
  d = half_at(b);
  m = has_block_minimum(type) ? half_at(b + 2) : 0.0f;
  switch (type) {
    case WeightType::q8_0:
      std::memcpy(q, b + 2, kQuantBlock);
      return;
    case WeightType::q4_0:
    case WeightType::q4_1: {
      const unsigned char* qs = b + (type == WeightType::q4_1 ? 4 : 2);
      const int offset = type == WeightType::q4_1 ? 0 : 8;
      for (int j = 0; j < 16; ++j) {
        q[j] = static_cast<std::int8_t>((qs[j] & 0x0f) - offset);
        q[j + 16] = static_cast<std::int8_t>((qs[j] >> 4) - offset);
      }
      return;
    }
    case WeightType::q5_0:
    case WeightType::q5_1: {
      const bool with_min = type == WeightType::q5_1;
      const unsigned char* qh_at = b + (with_min ? 4 : 2);
      const unsigned char* qs = qh_at + 4;
      std::uint32_t qh;
      std::memcpy(&qh, qh_at, 4);
      const int offset = with_min ? 0 : 16;
      for (int j = 0; j < 16; ++j) {
        const int hi0 = static_cast<int>((qh >> j) << 4 & 0x10);
        const int hi1 = static_cast<int>((qh >> (j + 12)) & 0x10);
        q[j] = static_cast<std::int8_t>(((qs[j] & 0x0f) | hi0) - offset);
        q[j + 16] = static_cast<std::int8_t>(((qs[j] >> 4) | hi1) - offset);
      }
      return;
    }
    default:
      std::memset(q, 0, kQuantBlock);
  }
}

void dequantize_row(WeightType type, const void* src, float* dst, std::size_t cols) {
  const auto* p = static_cast<const unsigned char*>(src);
  if (type == WeightType::f32) {
    std::memcpy(dst, p, cols * 4);
    return;
  }
  if (type == WeightType::f16) {
    for (std::size_t i = 0; i < cols; ++i) dst[i] = half_at(p + 2 * i);
    return;
  }
  const std::size_t block = quant_block_bytes(type);
  const bool with_min = has_block_minimum(type);
  std::int8_t q[kQuantBlock];
  for (std::size_t b = 0; b < cols / kQuantBlock; ++b, p += block, dst += kQuantBlock) {
    float d, m;
    unpack_block(type, p, q, d, m);
    for (int j = 0; j < kQuantBlock; ++j)
      dst[j] = with_min ? static_cast<float>(q[j]) * d + m : static_cast<float>(q[j]) * d;
  }
}

}  // namespace sra::whisper
