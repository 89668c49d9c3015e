// Where a Google Cloud Storage client's access token comes from, found as Google's client
// libraries find it: none when STORAGE_EMULATOR_HOST points at an emulator; else the service
// account key file of GOOGLE_APPLICATION_CREDENTIALS (an OAuth2 JWT bearer grant signed RS256
// with OpenSSL, sent to the key's token_uri); else the metadata server of GCE/GKE
// (GCE_METADATA_HOST, default metadata.google.internal). Tokens are cached until a minute before
// they expire. Safe for concurrent use.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "core/config.h"

namespace sra::storage {

class GcsTokenProvider {
 public:
  explicit GcsTokenProvider(const Config& config);
  // "Authorization: Bearer ..." or empty for an emulator. Throws sra::Error (config for a bad
  // key file, unavailable when the token endpoint refuses or cannot be reached).
  std::string authorization_header();
  // How many tokens were fetched (tests check the cache).
  int tokens_fetched() const { return fetched_; }

 private:
  std::string fetch_from_service_account(std::chrono::seconds& lifetime);
  std::string fetch_from_metadata(std::chrono::seconds& lifetime);

  bool emulator_ = false;
  std::string key_file_;
  std::string client_email_;
  std::string private_key_;
  std::string token_uri_;
  std::string metadata_host_;
  std::string scope_;
  std::mutex mutex_;
  std::string token_;
  std::chrono::steady_clock::time_point expiry_;
  int fetched_ = 0;
};

// base64url without padding, as JWTs use it.
std::string base64url(std::string_view data);
// RS256 signature of `data` with a PEM private key; throws sra::Error(config) on a bad key.
std::string rs256_sign(const std::string& pem_private_key, std::string_view data);

}  // namespace sra::storage
