#include "storage/aws_credentials.h"

#include <boost/json.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "core/errors.h"
#include "storage/http_client.h"

namespace sra::storage {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string home_file(const Config& config, const char* relative) {
  return config.get_string("HOME") + relative;
}

// "2026-11-27T12:00:00Z" -> time point (UTC).
std::chrono::system_clock::time_point parse_iso8601(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::chrono::system_clock::now() + std::chrono::minutes(10);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::string section;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

AwsCredentialProvider::AwsCredentialProvider(const Config& config) {
  std::string profile = config.get_string("AWS_PROFILE");
  auto credentials = parse_ini(read_text(
      config.get_string("AWS_SHARED_CREDENTIALS_FILE", home_file(config, "/.aws/credentials"))));
  auto conf =
      parse_ini(read_text(config.get_string("AWS_CONFIG_FILE", home_file(config, "/.aws/config"))));
  const auto& cred_section = credentials[profile];
  const auto& conf_section = conf[profile == "default" ? "default" : "profile " + profile];
  auto from_profile = [&](const char* key) -> std::string {
    if (auto it = cred_section.find(key); it != cred_section.end()) return it->second;
    if (auto it = conf_section.find(key); it != conf_section.end()) return it->second;
    return {};
  };

  if (auto id = config.get("AWS_ACCESS_KEY_ID"); id && !id->empty()) {
    auto secret = config.get("AWS_SECRET_ACCESS_KEY");
    if (!secret || secret->empty()) {
      throw config_error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    }
    static_keys_ = AwsKeys{*id, *secret, config.get_string("AWS_SESSION_TOKEN"), "environment"};
  } else if (!from_profile("aws_access_key_id").empty()) {
    static_keys_ = AwsKeys{from_profile("aws_access_key_id"), from_profile("aws_secret_access_key"),
                           from_profile("aws_session_token"), "profile " + profile};
  }
  region_ = config.get_string("AWS_REGION", config.get_string("AWS_DEFAULT_REGION"));
  if (region_.empty()) region_ = from_profile("region");
  if (region_.empty()) region_ = "us-east-1";
  endpoint_ = config.get_string("AWS_ENDPOINT_URL_S3", config.get_string("AWS_ENDPOINT_URL"));
  if (endpoint_.empty()) endpoint_ = from_profile("endpoint_url");
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  imds_endpoint_ = config.get_string("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  while (!imds_endpoint_.empty() && imds_endpoint_.back() == '/') imds_endpoint_.pop_back();
  imds_disabled_ = config.get_bool("AWS_EC2_METADATA_DISABLED");
}

AwsKeys AwsCredentialProvider::current() {
  if (static_keys_) return *static_keys_;
  if (imds_disabled_) {
    throw config_error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
        "AWS_PROFILE with ~/.aws/credentials (the instance metadata service is "
        "disabled by AWS_EC2_METADATA_DISABLED)");
  }
  std::lock_guard lock(mutex_);
  if (!imds_keys_ || std::chrono::system_clock::now() > imds_expiry_ - std::chrono::minutes(5)) {
    imds_keys_ = from_instance_metadata();
  }
  return *imds_keys_;
}

AwsKeys AwsCredentialProvider::from_instance_metadata() {
  auto fail = [&](const std::string& why) -> Error {
    return config_error(
        "no AWS credentials: AWS_ACCESS_KEY_ID is not set, no profile has keys, and "
        "the instance metadata service at " +
        imds_endpoint_ + " " + why);
  };
  HttpRequest token_request{
      "PUT", imds_endpoint_ + "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}};
  token_request.timeout_seconds = 2;
  token_request.connect_timeout_seconds = 1;
  HttpResponse token;
  try {
    token = perform(token_request);
  } catch (const Error& e) {
    throw fail(std::string("did not answer (") + e.what() + ")");
  }
  if (token.status != 200)
    throw fail("refused a session token (HTTP " + std::to_string(token.status) + ")");
  std::vector<std::string> auth{"X-aws-ec2-metadata-token: " + token.body};
  HttpRequest role_request{"GET", imds_endpoint_ + "/latest/meta-data/iam/security-credentials/",
                           auth};
  role_request.timeout_seconds = 2;
  HttpResponse role = perform(role_request);
  std::string name = trim(role.body.substr(0, role.body.find('\n')));
  if (role.status != 200 || name.empty()) throw fail("has no IAM role for this instance");
  HttpRequest keys_request{
      "GET", imds_endpoint_ + "/latest/meta-data/iam/security-credentials/" + name, auth};
  keys_request.timeout_seconds = 2;
  HttpResponse keys = perform(keys_request);
  if (keys.status != 200) throw fail("gave no keys for role " + name);
  try {
    auto v = boost::json::parse(keys.body).as_object();
    AwsKeys out{std::string(v.at("AccessKeyId").as_string()),
                std::string(v.at("SecretAccessKey").as_string()),
                std::string(v.at("Token").as_string()), "instance metadata role " + name};
    imds_expiry_ = parse_iso8601(std::string(v.at("Expiration").as_string()));
    return out;
  } catch (const std::exception& e) {
    throw fail(std::string("answered keys that cannot be read: ") + e.what());
  }
}

}  // namespace sra::storage
