#include "storage/gcs_storage.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "core/errors.h"
#include "core/uuid.h"
#include "storage/gcs_credentials.h"
#include "storage/http_client.h"
#include "storage/object_store.h"

namespace sra {
namespace {

using storage::HttpRequest;
using storage::HttpResponse;

struct GcsOptions {
  std::string project;
  std::string bucket;
  std::string prefix;
  std::string base_url = "https://storage.googleapis.com";
  std::size_t chunk_size = 8 * 1024 * 1024;
  storage::RetryPolicy retry;
};

class GcsClient final : public storage::ObjectClient {
 public:
  GcsClient(GcsOptions options, const Config& config)
      : options_(std::move(options)), tokens_(config) {}

  const GcsOptions& options() const { return options_; }

  std::string object_path(const std::string& name) const {
    return options_.base_url + "/storage/v1/b/" + storage::url_encode(options_.bucket, false) +
           "/o/" + storage::url_encode(name, false);
  }
  std::string upload_url(const std::string& name, const char* type) const {
    return options_.base_url + "/upload/storage/v1/b/" +
           storage::url_encode(options_.bucket, false) + "/o?uploadType=" + type +
           "&name=" + storage::url_encode(name, false);
  }

  HttpResponse request(const std::string& method, const std::string& url,
                       std::string_view body = {}, std::vector<std::string> headers = {}) override {
    return storage::with_retries(options_.retry, [&] {
      HttpRequest r{method, url, headers, body};
      if (std::string auth = tokens_.authorization_header(); !auth.empty())
        r.headers.push_back(auth);
      return storage::perform(r);
    });
  }

  // What the operator must fix, without the upstream body or the bucket's name (both go to the
  // log only: an error's text can reach a client in a 503).
  std::string read_url(const std::string& key) const override {
    return object_path(key) + "?alt=media";
  }
  std::string delete_url(const std::string& key) const override { return object_path(key); }
  std::string bucket_check_url() const override {
    return options_.base_url + "/storage/v1/b/" + storage::url_encode(options_.bucket, false);
  }
  // GCS answers 404 alike for both: the bucket is asked (and its failure is the answer).
  bool bucket_missing(const HttpResponse&) override {
    HttpResponse bucket = request("GET", bucket_check_url());
    if (bucket.status != 200) throw failure(bucket, "bucket check");
    return false;
  }
  const std::string& prefix() const override { return options_.prefix; }
  const std::string& bucket() const override { return options_.bucket; }
  std::string_view service() const override { return "GCS"; }
  std::string_view bucket_variable() const override { return "GOOGLE_CLOUD_STORAGE_BUCKET_NAME"; }

  Error failure(const HttpResponse& r, const std::string& what) const override {
    std::string message;
    try {
      auto v = boost::json::parse(r.body);
      message = std::string(v.at("error").at("message").as_string());
    } catch (...) {
      message = r.body.substr(0, 200);
    }
    spdlog::error("GCS {} on bucket '{}' failed: HTTP {}: {}", what, options_.bucket, r.status,
                  message);
    if (r.status == 401) return unavailable("GCS refused the credentials (see the log)");
    if (r.status == 403)
      return unavailable("GCS denied access to the bucket GOOGLE_CLOUD_STORAGE_BUCKET_NAME names");
    if (r.status == 404)
      return unavailable("the bucket GOOGLE_CLOUD_STORAGE_BUCKET_NAME names does not exist");
    return unavailable("GCS " + what + " failed: HTTP " + std::to_string(r.status) +
                       " (see the log)");
  }

 private:
  GcsOptions options_;
  storage::GcsTokenProvider tokens_;
};

class GcsUpload final : public FileUpload {
 public:
  explicit GcsUpload(std::shared_ptr<GcsClient> client)
      : client_(std::move(client)), id_(make_uuid()) {
    name_ = client_->options().prefix + id_;
  }

  ~GcsUpload() override {
    if (committed_ || session_.empty()) return;
    try {  // cancel the resumable session: nothing half-created stays
      client_->request("DELETE", session_);
    } catch (const std::exception& e) {
      spdlog::warn("GCS: could not cancel the upload of {}: {}", name_, e.what());
    }
  }

  void write(std::span<const char> bytes) override {
    const std::size_t chunk = client_->options().chunk_size;
    buffer_.append(bytes.data(), bytes.size());
    // Keep at least one byte back, so that the last chunk can carry the total size.
    while (buffer_.size() > chunk) send_chunk(chunk, false);
  }

  std::string commit() override {
    if (session_.empty()) {
      HttpResponse r = client_->request("POST", client_->upload_url(name_, "media"), buffer_,
                                        {"Content-Type: application/octet-stream"});
      if (r.status != 200) throw client_->failure(r, "upload");
    } else {
      send_chunk(buffer_.size(), true);
    }
    committed_ = true;
    return id_;
  }

 private:
  void send_chunk(std::size_t n, bool last) {
    if (session_.empty()) {
      HttpResponse r = client_->request(
          "POST", client_->upload_url(name_, "resumable"), {},
          {"X-Upload-Content-Type: application/octet-stream", "Content-Type: application/json"});
      session_ = r.header("location");
      if (r.status != 200 || session_.empty()) throw client_->failure(r, "resumable upload start");
    }
    std::string total = last ? std::to_string(sent_ + n) : "*";
    std::string range = n == 0 ? "bytes */" + total
                               : "bytes " + std::to_string(sent_) + "-" +
                                     std::to_string(sent_ + n - 1) + "/" + total;
    std::string_view piece(buffer_.data(), n);
    HttpResponse r = client_->request("PUT", session_, piece, {"Content-Range: " + range});
    bool ok = last ? (r.status == 200 || r.status == 201) : r.status == 308;
    if (!ok) throw client_->failure(r, "resumable upload");
    sent_ += n;
    buffer_.erase(0, n);
  }

  std::shared_ptr<GcsClient> client_;
  std::string id_;
  std::string name_;
  std::string buffer_;
  std::string session_;
  std::size_t sent_ = 0;
  bool committed_ = false;
};

class GcsStorage final : public storage::ObjectStorage {
 public:
  explicit GcsStorage(std::shared_ptr<GcsClient> client)
      : ObjectStorage(client), gcs_(std::move(client)) {}

  std::unique_ptr<FileUpload> begin_upload() override { return std::make_unique<GcsUpload>(gcs_); }

 private:
  std::shared_ptr<GcsClient> gcs_;
};

}  // namespace

std::unique_ptr<FileStorage> make_gcs_storage(const Config& config) {
  GcsOptions o;
  o.project = config.get_string("GOOGLE_CLOUD_STORAGE_PROJECT_ID");
  o.bucket = config.get_string("GOOGLE_CLOUD_STORAGE_BUCKET_NAME");
  if (o.bucket.empty()) throw config_error("GOOGLE_CLOUD_STORAGE_BUCKET_NAME is not set");
  o.prefix = config.get_string("GOOGLE_CLOUD_STORAGE_FILE_PREFIX");
  if (auto emulator = config.get_string("STORAGE_EMULATOR_HOST"); !emulator.empty()) {
    o.base_url = emulator.find("://") == std::string::npos ? "http://" + emulator : emulator;
  }
  o.base_url = config.get_string("GOOGLE_CLOUD_STORAGE_ENDPOINT", o.base_url);
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  o.chunk_size = static_cast<std::size_t>(config.get_int("GOOGLE_CLOUD_STORAGE_CHUNK_SIZE"));
  if (o.chunk_size % (256 * 1024) != 0) {
    throw config_error("GOOGLE_CLOUD_STORAGE_CHUNK_SIZE must be a multiple of 262144 (256 KiB)");
  }
  o.retry.max_attempts = static_cast<int>(config.get_int("GOOGLE_CLOUD_STORAGE_MAX_ATTEMPTS"));
  return std::make_unique<GcsStorage>(std::make_shared<GcsClient>(std::move(o), config));
}

}  // namespace sra
