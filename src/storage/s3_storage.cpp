#include "storage/s3_storage.h"

#include <spdlog/spdlog.h>

#include "core/errors.h"
#include "core/uuid.h"
#include "storage/aws_credentials.h"
#include "storage/http_client.h"
#include "storage/object_store.h"

namespace sra {
namespace {

using storage::HttpRequest;
using storage::HttpResponse;

struct S3Options {
  std::string bucket;
  std::string prefix;
  bool path_style = false;
  std::size_t part_size = 8 * 1024 * 1024;
  storage::RetryPolicy retry;
};

class S3Client final : public storage::ObjectClient {
 public:
  S3Client(S3Options options, const Config& config)
      : options_(std::move(options)), credentials_(config) {}

  const S3Options& options() const { return options_; }

  std::string object_url(const std::string& key, const std::string& query = "") const {
    std::string endpoint = credentials_.endpoint();
    std::string url;
    if (endpoint.empty()) {
      endpoint = "https://s3." + credentials_.region() + ".amazonaws.com";
    }
    if (options_.path_style) {
      url = endpoint + "/" + options_.bucket + "/" + storage::url_encode(key, true);
    } else {
      auto scheme_end = endpoint.find("://");
      std::string scheme =
          scheme_end == std::string::npos ? "https://" : endpoint.substr(0, scheme_end + 3);
      std::string host =
          scheme_end == std::string::npos ? endpoint : endpoint.substr(scheme_end + 3);
      url = scheme + options_.bucket + "." + host + "/" + storage::url_encode(key, true);
    }
    return query.empty() ? url : url + "?" + query;
  }

  // One signed request, retried as the policy says.
  HttpResponse request(const std::string& method, const std::string& url,
                       std::string_view body = {}, std::vector<std::string> headers = {}) override {
    return storage::with_retries(options_.retry, [&] {
      storage::AwsKeys keys = credentials_.current();
      HttpRequest r;
      r.method = method;
      r.url = url;
      r.body = body;
      r.headers = headers;
      r.headers.push_back("x-amz-content-sha256: " + storage::sha256_hex(body));
      if (!keys.session_token.empty())
        r.headers.push_back("x-amz-security-token: " + keys.session_token);
      r.aws_sigv4 = "aws:amz:" + credentials_.region() + ":s3";
      r.user_password = keys.access_key_id + ":" + keys.secret_access_key;
      return storage::perform(r);
    });
  }

  // An sra::Error for a failed response, saying what S3 said.
  // What the operator must fix, without the upstream message or the bucket's name (both go to
  // the log only: an error's text can reach a client in a 503).
  std::string read_url(const std::string& key) const override { return object_url(key); }
  std::string delete_url(const std::string& key) const override { return object_url(key); }
  // A one-key listing, not HEAD: its errors come with a body that says what is wrong.
  std::string bucket_check_url() const override { return object_url("", "list-type=2&max-keys=1"); }
  bool bucket_missing(const HttpResponse& r) override {
    return storage::xml_value(r.body, "Code") == "NoSuchBucket";
  }
  const std::string& prefix() const override { return options_.prefix; }
  const std::string& bucket() const override { return options_.bucket; }
  std::string_view service() const override { return "S3"; }
  std::string_view bucket_variable() const override { return "S3_STORAGE_BUCKET_NAME"; }

  Error failure(const HttpResponse& r, const std::string& what) const override {
    std::string code = storage::xml_value(r.body, "Code");
    std::string message = storage::xml_value(r.body, "Message");
    spdlog::error("S3 {} on bucket '{}' failed: HTTP {} {}: {}", what, options_.bucket, r.status,
                  code, message);
    std::string text;
    if (code == "NoSuchBucket") {
      text = "the bucket S3_STORAGE_BUCKET_NAME names does not exist";
    } else if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
               code == "InvalidClientTokenId" || code == "ExpiredToken" || code == "InvalidToken") {
      text = "S3 refused the credentials (" + code +
             "): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY";
    } else if (code == "AccessDenied" || r.status == 403) {
      text = "S3 denied access to the bucket S3_STORAGE_BUCKET_NAME names" +
             (code.empty() ? "" : " (" + code + ")");
    } else {
      text = "S3 " + what + " failed: HTTP " + std::to_string(r.status) +
             (code.empty() ? "" : " " + code) + " (see the log)";
    }
    return unavailable(text);
  }

 private:
  S3Options options_;
  storage::AwsCredentialProvider credentials_;
};

class S3Upload final : public FileUpload {
 public:
  S3Upload(std::shared_ptr<S3Client> client) : client_(std::move(client)), id_(make_uuid()) {
    key_ = client_->options().prefix + id_;
    buffer_.reserve(client_->options().part_size);
  }

  ~S3Upload() override {
    if (committed_ || upload_id_.empty()) return;
    try {  // leave nothing half-created behind
      client_->request("DELETE", client_->object_url(
                                     key_, "uploadId=" + storage::url_encode(upload_id_, false)));
    } catch (const std::exception& e) {
      spdlog::warn("S3: could not abort multipart upload of {}: {}", key_, e.what());
    }
  }

  void write(std::span<const char> bytes) override {
    const std::size_t part = client_->options().part_size;
    while (!bytes.empty()) {
      std::size_t n = std::min(bytes.size(), part - buffer_.size());
      buffer_.append(bytes.data(), n);
      bytes = bytes.subspan(n);
      if (buffer_.size() == part) flush_part();
    }
  }

  std::string commit() override {
    if (upload_id_.empty()) {
      HttpResponse r = client_->request("PUT", client_->object_url(key_), buffer_,
                                        {"Content-Type: application/octet-stream"});
      if (r.status != 200) throw client_->failure(r, "upload");
    } else {
      if (!buffer_.empty()) flush_part();
      std::string xml = "<CompleteMultipartUpload>";
      for (std::size_t i = 0; i < etags_.size(); ++i) {
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags_[i] +
               "</ETag></Part>";
      }
      xml += "</CompleteMultipartUpload>";
      HttpResponse r = client_->request(
          "POST", client_->object_url(key_, "uploadId=" + storage::url_encode(upload_id_, false)),
          xml, {"Content-Type: application/xml"});
      // S3 may answer 200 with an error document when completion fails late.
      if (r.status != 200 || r.body.find("<Error>") != std::string::npos)
        throw client_->failure(r, "multipart completion");
    }
    committed_ = true;
    return id_;
  }

 private:
  void flush_part() {
    if (upload_id_.empty()) {
      HttpResponse r = client_->request("POST", client_->object_url(key_, "uploads="), {},
                                        {"Content-Type: application/octet-stream"});
      upload_id_ = storage::xml_value(r.body, "UploadId");
      if (r.status != 200 || upload_id_.empty())
        throw client_->failure(r, "multipart upload start");
    }
    std::string query = "partNumber=" + std::to_string(etags_.size() + 1) +
                        "&uploadId=" + storage::url_encode(upload_id_, false);
    HttpResponse r = client_->request("PUT", client_->object_url(key_, query), buffer_);
    std::string etag = r.header("etag");
    if (r.status != 200 || etag.empty()) throw client_->failure(r, "part upload");
    etags_.push_back(etag);
    buffer_.clear();
  }

  std::shared_ptr<S3Client> client_;
  std::string id_;
  std::string key_;
  std::string buffer_;
  std::string upload_id_;
  std::vector<std::string> etags_;
  bool committed_ = false;
};

class S3Storage final : public storage::ObjectStorage {
 public:
  explicit S3Storage(std::shared_ptr<S3Client> client)
      : ObjectStorage(client), s3_(std::move(client)) {}

  std::unique_ptr<FileUpload> begin_upload() override { return std::make_unique<S3Upload>(s3_); }

 private:
  std::shared_ptr<S3Client> s3_;
};

}  // namespace

std::unique_ptr<FileStorage> make_s3_storage(const Config& config) {
  S3Options o;
  o.bucket = config.get_string("S3_STORAGE_BUCKET_NAME");
  if (o.bucket.empty()) throw config_error("S3_STORAGE_BUCKET_NAME is not set");
  o.prefix = config.get_string("S3_STORAGE_FILE_PREFIX");
  o.path_style = config.get_bool("S3_STORAGE_FORCE_PATH_STYLE");
  o.part_size = static_cast<std::size_t>(config.get_int("S3_STORAGE_PART_SIZE"));
  o.retry.max_attempts = static_cast<int>(config.get_int("S3_STORAGE_MAX_ATTEMPTS"));
  return std::make_unique<S3Storage>(std::make_shared<S3Client>(std::move(o), config));
}

}  // namespace sra
