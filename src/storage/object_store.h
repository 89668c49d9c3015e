// What the S3 and GCS storages share: a file is the object `prefix + id` in a bucket, and reading,
// removing and checking the bucket are one request each with the same answers everywhere. A
// file id that is not one of ours is not found without a request; a missing object is not found,
// the message naming the variable that names the bucket and never the bucket (a failed task's
// error reaches clients; the bucket goes to the log); any other failure is the client's own
// error (what the operator must fix). Only the upload protocols differ (multipart uploads,
// resumable uploads): each storage adds its own begin_upload().
//
// An ObjectClient is called from any thread (each call makes its own requests); the storage
// owns it through a shared_ptr that its uploads share.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/errors.h"
#include "core/file_storage.h"
#include "storage/http_client.h"

namespace sra::storage {

class ObjectClient {
 public:
  virtual ~ObjectClient() = default;
  // One authenticated request, retried as the storage's policy says.
  virtual HttpResponse request(const std::string& method, const std::string& url,
                               std::string_view body = {},
                               std::vector<std::string> headers = {}) = 0;
  // The URL that reads the object `key` (its bytes) and the one that deletes it.
  virtual std::string read_url(const std::string& key) const = 0;
  virtual std::string delete_url(const std::string& key) const = 0;
  // A request that succeeds only when the bucket is there and the credentials may use it.
  virtual std::string bucket_check_url() const = 0;
  // Whether a 404 answer means the bucket, not the object, is missing (or throws the bucket's
  // own failure).
  virtual bool bucket_missing(const HttpResponse& not_found) = 0;
  // The error for a failed answer to `what` (logged with the upstream details).
  virtual Error failure(const HttpResponse& response, const std::string& what) const = 0;

  virtual const std::string& prefix() const = 0;         // of every object name
  virtual const std::string& bucket() const = 0;         // for the log only
  virtual std::string_view service() const = 0;          // "S3", "GCS"
  virtual std::string_view bucket_variable() const = 0;  // the variable that names the bucket
};

class ObjectStorage : public FileStorage {
 public:
  explicit ObjectStorage(std::shared_ptr<ObjectClient> client) : client_(std::move(client)) {}

  std::string read(const std::string& file_id) override;
  void remove(const std::string& file_id) override;
  void check_ready() override;

 protected:
  std::shared_ptr<ObjectClient> client_;
};

}  // namespace sra::storage
