// Access: who may call the API (API keys) and which browser origins may call it from their pages
// (CORS).
//
// With API_KEY (comma-separated keys) or API_KEY_FILE (one key per line) set, every route except
// /health, /ready, /metrics and the static documents (/, /docs, /openapi.json: they hold no data;
// the page asks for the key itself) needs `Authorization: Bearer <key>`, as OpenAI's SDKs send
// it. Keys are compared in constant time (by their SHA-256) and never logged; a caller is known
// to the rate limiter by the key's number, not the key. With CORS_ALLOW_ORIGINS (comma-separated
// origins, or *), responses to those origins carry Access-Control-Allow-Origin and preflight
// requests (OPTIONS with Access-Control-Request-Method) are answered with 204.
//
// Immutable after construction: safe to use from every I/O thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace sra::http {

class Access {
 public:
  Access() = default;
  // Throws sra::Error(config) for an unreadable API_KEY_FILE or a key that is empty.
  explicit Access(const Config& config);

  bool keys_required() const { return !key_hashes_.empty(); }
  // Whether `path` may be called without a key.
  static bool is_open_path(std::string_view path);
  // The caller's identity for an `Authorization` header value: "key#N" for the Nth key; nullopt
  // if the header names no configured key.
  std::optional<std::string> identify(std::string_view authorization) const;

  bool cors_enabled() const { return cors_any_ || !cors_origins_.empty(); }
  // Whether a page of `origin` may read our responses.
  bool origin_allowed(std::string_view origin) const;

 private:
  std::vector<std::array<unsigned char, 32>> key_hashes_;
  std::vector<std::string> cors_origins_;
  bool cors_any_ = false;
};

}  // namespace sra::http
