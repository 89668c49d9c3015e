// CatalogModelLoader<T>: one model file the service loads on first use (Silero VAD, smart-turn),
// either a file of the user's own or a model of the catalog in the models directory. A catalog
// model that is missing is pulled on a thread of its own, never the caller's: until it is in,
// get() throws sra::Error(unavailable) with Retry-After; a failed pull throws sra::Error(config)
// (the index, redacted, and what to run) and is tried again no sooner than 30 s later, doubling
// up to an hour. T is constructed from the file's path and must be immutable once loaded.
//
// Thread-safe. The destructor stops a pull in progress (within about a second) and waits for its
// thread: nothing of the loader runs once it is gone.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/errors.h"
#include "models/model_catalog.h"
#include "models/model_pull.h"

namespace sra {

struct CatalogModelSource {
  std::string what;            // "VAD model", "turn model": for messages
  std::string catalog_name;    // a catalog model (used when `path` is empty)
  std::filesystem::path path;  // a file of the user's own; empty: the catalog model's
  std::filesystem::path models_dir = "./models";  // where catalog models live
  ModelSources sources;                           // MODEL_INDEX_URL, MODEL_BASE_URL, MODEL_SOURCE
  bool download = true;                           // MODEL_DOWNLOAD
};

namespace detail {
// The untyped part: where the file is, the pull and its back-off. `load` turns a path into the
// model (type-erased as shared_ptr<const void>).
class ModelFetch {
 public:
  using Load = std::function<std::shared_ptr<const void>(const std::filesystem::path&)>;
  ModelFetch(CatalogModelSource source, Load load);
  ~ModelFetch();
  std::shared_ptr<const void> get();
  void prefetch();
  // Waits for a pull in progress to end; throws its failure (sra::Error(config)).
  void wait();

 private:
  struct State;
  CatalogModelSource source_;
  Load load_;
  std::shared_ptr<State> state_;
  std::thread puller_;
};
}  // namespace detail

template <typename T>
class CatalogModelLoader {
 public:
  explicit CatalogModelLoader(CatalogModelSource source)
      : fetch_(std::move(source), [](const std::filesystem::path& p) {
          return std::static_pointer_cast<const void>(std::make_shared<const T>(p));
        }) {}
  CatalogModelLoader(const CatalogModelLoader&) = delete;
  CatalogModelLoader& operator=(const CatalogModelLoader&) = delete;

  // The model, loaded on first use (see above for a missing catalog model).
  std::shared_ptr<const T> get() { return std::static_pointer_cast<const T>(fetch_.get()); }
  // Starts pulling the model now if it is missing; errors are left for get() to report.
  void prefetch() { fetch_.prefetch(); }
  // Waits for a pull in progress; throws sra::Error(config) if it failed.
  void wait() { fetch_.wait(); }

 private:
  detail::ModelFetch fetch_;
};

}  // namespace sra
