// Small text helpers shared by the layers. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace sra {

// `text` without leading and trailing ASCII whitespace (" \t\n\v\f\r"), as Python's str.strip().
inline std::string strip(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  std::size_t b = text.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  std::size_t e = text.find_last_not_of(kSpace);
  return std::string(text.substr(b, e - b + 1));
}

// Lower-case hexadecimal of `bytes` (digests).
inline std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

}  // namespace sra
