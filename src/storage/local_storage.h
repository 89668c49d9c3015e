// LocalStorage: keeps uploaded files in a folder of the local file system (the seed's
// LocalStorage). Reads LOCAL_STORAGE_FOLDER_PATH (created if missing).
//
// File ids are random UUIDs; read() and remove() reject anything else before any file system
// call, so an id like `../etc/passwd` never reaches the disk. An upload is written to a hidden
// temporary file in the same folder, flushed to disk and renamed on commit, so a reader never sees
// a partial file and a crash leaves no visible file behind. Safe for concurrent use; an upload
// object is used by one thread at a time.
#pragma once

#include <filesystem>
#include <memory>

#include "core/config.h"
#include "core/file_storage.h"

namespace sra {

struct LocalStorageOptions {
  std::filesystem::path folder = "./data/files";  // where uploaded files are kept
};

LocalStorageOptions local_storage_options_from(const Config& config);
std::unique_ptr<FileStorage> make_local_storage(const LocalStorageOptions& options);

}  // namespace sra
