// Small text helpers shared by the layers. Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sra {

// `text` without leading and trailing ASCII whitespace (" \t\n\v\f\r"), as Python's str.strip().
inline std::string strip(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  std::size_t b = text.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  std::size_t e = text.find_last_not_of(kSpace);
  return std::string(text.substr(b, e - b + 1));
}

// The items of a comma-separated list, each stripped; empty items dropped.
inline std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  while (true) {
    auto comma = text.find(',');
    std::string item = strip(text.substr(0, comma));
    if (!item.empty()) items.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence: an excerpt of a client's text for a message stays valid UTF-8 (and valid JSON).
inline std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

// The longest suffix of `text` of at most `max_bytes` bytes that starts on a whole UTF-8
// character.
inline std::string_view utf8_suffix(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t at = text.size() - max_bytes;
  while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  return text.substr(at);
}

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
inline bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    int more = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      more = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(more) >= text.size()) return false;  // cut short
    for (int k = 1; k <= more; ++k) {
      const auto n = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      if ((n & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (n & 0x3F);
    }
    if ((more == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (more == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += static_cast<std::size_t>(more) + 1;
  }
  return true;
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

// `url` with the password of its user-info replaced by "***" ("redis://:pw@h" ->
// "redis://:***@h", "amqp://u:p@h" -> "amqp://u:***@h"), for messages and logs. The user-info
// ends at the last '@', so a password holding an unescaped '/', '?' or '#' is masked too (an '@'
// in a path or query masks more than needed, never less). Text without a scheme or '@' is
// returned as it is.
inline std::string redact_url(std::string_view url) {
  std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  std::size_t start = scheme + 3;
  std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  std::string_view userinfo = url.substr(start, at - start);
  std::size_t colon = userinfo.find(':');
  std::string out(url.substr(0, start));
  out += colon == std::string_view::npos ? std::string("***")
                                         : std::string(userinfo.substr(0, colon)) + ":***";
  out += url.substr(at);
  return out;
}

}  // namespace sra
