#include "storage/gcs_credentials.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/errors.h"
#include "storage/http_client.h"

namespace sra::storage {

std::string base64url(std::string_view data) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(data[k]); };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += table[v >> 6 & 63];
    out += table[v & 63];
  }
  if (data.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
  } else if (data.size() - i == 2) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += table[v >> 6 & 63];
  }
  return out;
}

std::string rs256_sign(const std::string& pem, std::string_view data) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key)
    throw config_error("GOOGLE_APPLICATION_CREDENTIALS: private_key is not a PEM private key");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw config_error("GOOGLE_APPLICATION_CREDENTIALS: cannot sign with private_key (not RSA?)");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw config_error("GOOGLE_APPLICATION_CREDENTIALS: signing failed");
  }
  signature.resize(length);
  return signature;
}

GcsTokenProvider::GcsTokenProvider(const Config& config) {
  scope_ = "https://www.googleapis.com/auth/devstorage.read_write";
  if (!config.get_string("STORAGE_EMULATOR_HOST").empty()) {
    emulator_ = true;
    return;
  }
  key_file_ = config.get_string("GOOGLE_APPLICATION_CREDENTIALS");
  if (!key_file_.empty()) {
    std::ifstream in(key_file_);
    if (!in) throw config_error("GOOGLE_APPLICATION_CREDENTIALS=" + key_file_ + " cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    try {
      auto key = boost::json::parse(text.str()).as_object();
      if (auto* type = key.if_contains("type"); type && type->as_string() != "service_account") {
        throw config_error("GOOGLE_APPLICATION_CREDENTIALS=" + key_file_ + " is a '" +
                           std::string(type->as_string()) +
                           "' key; a service_account key is needed");
      }
      client_email_ = std::string(key.at("client_email").as_string());
      private_key_ = std::string(key.at("private_key").as_string());
      auto* uri = key.if_contains("token_uri");
      token_uri_ = uri ? std::string(uri->as_string()) : "https://oauth2.googleapis.com/token";
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw config_error("GOOGLE_APPLICATION_CREDENTIALS=" + key_file_ +
                         " is not a service account key: " + e.what());
    }
    return;
  }
  metadata_host_ = config.get_string("GCE_METADATA_HOST");
}

std::string GcsTokenProvider::authorization_header() {
  if (emulator_) return {};
  std::lock_guard lock(mutex_);
  if (token_.empty() || std::chrono::steady_clock::now() >= expiry_) {
    std::chrono::seconds lifetime{3600};
    token_ =
        key_file_.empty() ? fetch_from_metadata(lifetime) : fetch_from_service_account(lifetime);
    expiry_ = std::chrono::steady_clock::now() + lifetime - std::chrono::seconds(60);
    ++fetched_;
  }
  return "Authorization: Bearer " + token_;
}

namespace {

std::string read_token(const HttpResponse& r, const std::string& source,
                       std::chrono::seconds& lifetime) {
  if (r.status != 200) {
    spdlog::error("{} refused to issue a token: HTTP {}: {}", source, r.status,
                  r.body.substr(0, 300));
    throw unavailable(source + " refused to issue a token (HTTP " + std::to_string(r.status) +
                      "; see the log)");
  }
  try {
    auto v = boost::json::parse(r.body).as_object();
    if (auto* e = v.if_contains("expires_in"))
      lifetime = std::chrono::seconds(e->to_number<std::int64_t>());
    return std::string(v.at("access_token").as_string());
  } catch (const std::exception& e) {
    throw unavailable(source + " answered without an access token: " + e.what());
  }
}

}  // namespace

std::string GcsTokenProvider::fetch_from_service_account(std::chrono::seconds& lifetime) {
  std::int64_t now = std::time(nullptr);
  std::string header = base64url(R"({"alg":"RS256","typ":"JWT"})");
  std::string claims = base64url(boost::json::serialize(boost::json::object{{"iss", client_email_},
                                                                            {"scope", scope_},
                                                                            {"aud", token_uri_},
                                                                            {"iat", now},
                                                                            {"exp", now + 3600}}));
  std::string unsigned_jwt = header + "." + claims;
  std::string jwt = unsigned_jwt + "." + base64url(rs256_sign(private_key_, unsigned_jwt));
  std::string form =
      "grant_type=" + url_encode("urn:ietf:params:oauth:grant-type:jwt-bearer", false) +
      "&assertion=" + jwt;
  HttpRequest request{
      "POST", token_uri_, {"Content-Type: application/x-www-form-urlencoded"}, form};
  request.timeout_seconds = 30;
  HttpResponse r = with_retries({}, [&] { return perform(request); });
  return read_token(r, "the token endpoint " + token_uri_ + " (GOOGLE_APPLICATION_CREDENTIALS)",
                    lifetime);
}

std::string GcsTokenProvider::fetch_from_metadata(std::chrono::seconds& lifetime) {
  std::string url =
      "http://" + metadata_host_ + "/computeMetadata/v1/instance/service-accounts/default/token";
  HttpRequest request{"GET", url, {"Metadata-Flavor: Google"}};
  request.timeout_seconds = 5;
  request.connect_timeout_seconds = 2;
  HttpResponse r;
  try {
    r = perform(request);
  } catch (const Error& e) {
    throw config_error(
        std::string(
            "no Google credentials: GOOGLE_APPLICATION_CREDENTIALS and STORAGE_EMULATOR_HOST "
            "are not set and the metadata server did not answer (") +
        e.what() + ")");
  }
  return read_token(r, "the metadata server " + metadata_host_, lifetime);
}

}  // namespace sra::storage
