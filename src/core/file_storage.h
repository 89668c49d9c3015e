// FileStorage: the extension point that keeps uploaded audio until a worker takes it (the seed's
// Storage interface: save_file / get_file), for the async API.
//
// A FileStorage is safe for concurrent use from several threads. Uploads stream: begin_upload()
// returns a FileUpload that receives the bytes in pieces and makes the file visible only on
// commit(); a FileUpload destroyed without commit leaves nothing behind. File ids are chosen by
// the storage; read() and remove() must reject an id that the storage could not have issued
// (sra::Error(not_found)) before touching any file or object, so hostile ids such as `../x` are
// harmless.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace sra {

// One upload in progress. Used by one thread at a time; owned by the caller.
class FileUpload {
 public:
  virtual ~FileUpload() = default;
  virtual void write(std::span<const char> bytes) = 0;
  // Makes the file durable and visible; returns its id. Call at most once.
  virtual std::string commit() = 0;
};

class FileStorage {
 public:
  virtual ~FileStorage() = default;
  virtual std::unique_ptr<FileUpload> begin_upload() = 0;
  // The whole file. Throws sra::Error(not_found) for an unknown or malformed id.
  virtual std::string read(const std::string& file_id) = 0;
  // Removes the file; an unknown id is not an error.
  virtual void remove(const std::string& file_id) = 0;
  // Throws sra::Error(unavailable) saying what is wrong if the storage cannot serve now (bucket
  // missing, credentials refused, server down). Used by GET /ready.
  virtual void check_ready() {}
  // Bytes that may still be written where uploads go before the disk is full; nullopt for
  // storage without a local disk (S3, GCS). Thread-safe.
  virtual std::optional<std::uint64_t> free_bytes() { return std::nullopt; }

  // Convenience: one-piece upload.
  std::string save(std::span<const char> bytes) {
    auto upload = begin_upload();
    upload->write(bytes);
    return upload->commit();
  }
};

}  // namespace sra
