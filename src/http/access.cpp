#include "http/access.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "core/errors.h"
#include "core/text.h"

namespace sra::http {

namespace {

std::array<unsigned char, 32> sha256(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

}  // namespace

Access::Access(const Config& config) {
  std::vector<std::string> keys = split_list(config.get_string("API_KEY"));
  std::string file = config.get_string("API_KEY_FILE");
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw config_error("API_KEY_FILE cannot be read");
    std::string line;
    while (std::getline(in, line)) {
      std::string key(strip(line));
      if (!key.empty() && key[0] != '#') keys.push_back(key);
    }
    if (keys.empty()) throw config_error("API_KEY_FILE holds no key");
  }
  for (const auto& key : keys) key_hashes_.push_back(sha256(key));
  for (const auto& origin : split_list(config.get_string("CORS_ALLOW_ORIGINS"))) {
    if (origin == "*") {
      cors_any_ = true;
    } else {
      cors_origins_.push_back(origin);
    }
  }
}

bool Access::is_open_path(std::string_view path) {
  return path == "/health" || path == "/ready" || path == "/metrics" || path == "/" ||
         path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/");
}

std::optional<std::string> Access::identify(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return std::nullopt;
  }
  auto given = sha256(strip(authorization.substr(kBearer.size())));
  std::optional<std::string> who;
  // Every key is compared, whichever matches: the time taken says nothing about the keys.
  for (std::size_t i = 0; i < key_hashes_.size(); ++i) {
    if (CRYPTO_memcmp(given.data(), key_hashes_[i].data(), given.size()) == 0 && !who) {
      who = "key#" + std::to_string(i + 1);
    }
  }
  return who;
}

bool Access::origin_allowed(std::string_view origin) const {
  if (cors_any_) return true;
  for (const auto& o : cors_origins_) {
    if (o == origin) return true;
  }
  return false;
}

}  // namespace sra::http
