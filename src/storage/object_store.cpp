#include "storage/object_store.h"

#include <spdlog/spdlog.h>

#include "core/uuid.h"

namespace sra::storage {

std::string ObjectStorage::read(const std::string& file_id) {
  if (!is_uuid(file_id)) throw not_found("no file with id '" + file_id + "'");
  HttpResponse r = client_->request("GET", client_->read_url(client_->prefix() + file_id));
  if (r.status == 404 && !client_->bucket_missing(r)) {
    spdlog::info("{}: no object {} in bucket '{}'", client_->service(), file_id, client_->bucket());
    throw not_found("no file with id '" + file_id + "' in the bucket " +
                    std::string(client_->bucket_variable()) + " names");
  }
  if (r.status != 200) throw client_->failure(r, "download");
  return std::move(r.body);
}

void ObjectStorage::remove(const std::string& file_id) {
  if (!is_uuid(file_id)) return;
  HttpResponse r = client_->request("DELETE", client_->delete_url(client_->prefix() + file_id));
  if (r.status != 204 && r.status != 200 && r.status != 404) throw client_->failure(r, "delete");
}

void ObjectStorage::check_ready() {
  HttpResponse r = client_->request("GET", client_->bucket_check_url());
  if (r.status != 200) throw client_->failure(r, "bucket check");
}

}  // namespace sra::storage
