// Base64 (RFC 4648's standard alphabet) for small values held whole in memory (webhook
// signatures and secrets), and the base64 data URLs (RFC 2397) that carry audio clips in form
// fields. Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sra {

// `bytes` as base64 text, padded with '='.
std::string base64_encode(std::string_view bytes);

// The bytes of base64 `text` (padding optional, only at the end); nullopt when `text` is not
// base64 (another character, white space included, or a lone sixth of a byte at the end).
std::optional<std::string> base64_decode(std::string_view text);

// A `data:[<media type>][;<parameter>...];base64,<data>` URL's media type (lower-cased, "" when
// absent) and bytes; nullopt for anything else (not a data URL, not base64).
struct DataUrl {
  std::string media_type;
  std::string bytes;
};
std::optional<DataUrl> parse_base64_data_url(std::string_view url);

}  // namespace sra
