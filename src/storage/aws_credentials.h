// AwsCredentials: where an S3 client's keys, region and endpoint come from, found the way AWS's
// SDKs find them: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; then the
// profile AWS_PROFILE (default "default") of ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE)
// and ~/.aws/config (AWS_CONFIG_FILE); then the EC2 instance metadata service with IMDSv2
// tokens (AWS_EC2_METADATA_SERVICE_ENDPOINT; off with AWS_EC2_METADATA_DISABLED=true), whose
// temporary keys are refreshed before they expire. Region: AWS_REGION, AWS_DEFAULT_REGION, the
// profile's region, else us-east-1. Endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
// profile's endpoint_url, else AWS.
//
// An AwsCredentialProvider is safe for concurrent use; current() caches what it found.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/config.h"

namespace sra::storage {

struct AwsKeys {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary
  std::string source;         // where they came from, for messages
};

// Sections of an INI file: section name -> key -> value (profiles of ~/.aws/config are named
// "profile <name>" there, as the SDKs write them).
std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text);

class AwsCredentialProvider {
 public:
  explicit AwsCredentialProvider(const Config& config);
  // The keys to sign the next request with. Throws sra::Error(config) when none can be found.
  AwsKeys current();
  const std::string& region() const { return region_; }
  const std::string& endpoint() const { return endpoint_; }  // empty: AWS itself

 private:
  AwsKeys from_instance_metadata();

  std::optional<AwsKeys> static_keys_;
  std::string region_;
  std::string endpoint_;
  std::string imds_endpoint_;
  bool imds_disabled_ = false;
  std::mutex mutex_;
  std::optional<AwsKeys> imds_keys_;
  std::chrono::system_clock::time_point imds_expiry_;
};

}  // namespace sra::storage
