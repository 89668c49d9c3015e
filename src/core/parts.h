// Parts: the configured model, file storage and message bus of this process, each built once, on
// first use (the seed imports its classes only when first used).
//
// Safe for concurrent use from any thread: the first caller of model() builds the model while
// others wait; if building fails, the error (naming the variable at fault) is thrown to every
// caller and the next call tries again, so fixing a dependency does not need a restart. Parts owns
// the parts; references stay valid for the life of the Parts object.
//
// Besides the default model, SERVED_MODELS names models that requests may choose (OpenAI's
// `model` field): `name=MODEL[;VAR=value...]` items separated by commas, each built from the
// configuration with its own variables overriding, e.g.
// `base=whisper;WHISPER_MODEL_PATH=models/ggml-base.bin,sphinx=pocketsphinx`. The default model
// is always served under its MODEL value and under "whisper-1", the name OpenAI's clients send.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/file_storage.h"
#include "core/message_bus.h"
#include "core/model.h"
#include "core/registry.h"

namespace sra {

// What the service layer adds to every part once built, plugins included (e.g. metrics). Each
// may be empty.
struct PartHooks {
  // Told the time a model took to build, with the name it is served under.
  std::function<void(const std::string& name, double seconds)> model_built;
  // Wrap the storage and the bus (a wrapper must forward every call).
  std::function<std::unique_ptr<FileStorage>(std::unique_ptr<FileStorage>)> wrap_storage;
  std::function<std::unique_ptr<MessageBus>(std::unique_ptr<MessageBus>)> wrap_bus;
};

struct PartCatalogs {
  PartCatalog<Model> models{"MODEL"};
  PartCatalog<FileStorage> storages{"STORAGE"};
  PartCatalog<MessageBus> buses{"MESSAGE_BUS"};
  PartHooks hooks;
};

inline constexpr const char* kOpenAIDefaultModelName = "whisper-1";

class Parts {
 public:
  // Throws sra::Error(config) if SERVED_MODELS is malformed.
  Parts(Config config, PartCatalogs catalogs);

  const Config& config() const { return config_; }
  Model& model();
  // The model served under `name`; throws sra::Error(not_found) for a name not served.
  Model& model(const std::string& name);
  // Every name model(name) accepts, the default model's first.
  std::vector<std::string> served_model_names() const;
  FileStorage& storage();
  MessageBus& bus();

  std::string model_name() const { return config_.get_string("MODEL"); }
  std::string storage_name() const { return config_.get_string("STORAGE"); }
  std::string bus_name() const { return config_.get_string("MESSAGE_BUS"); }

 private:
  template <typename Part>
  struct Slot {
    std::mutex mutex;
    std::unique_ptr<Part> part;
  };

  template <typename Part>
  Part& get(Slot<Part>& slot, const PartCatalog<Part>& catalog, const std::string& name);
  // Builds a part with make() and applies the hooks of its kind.
  template <typename F>
  auto built(const std::string& name, F make) -> decltype(make());

  struct ServedModel {
    std::string name;
    Config config;  // the configuration with the model's own overrides
    std::unique_ptr<Slot<Model>> slot = std::make_unique<Slot<Model>>();
  };

  Config config_;
  PartCatalogs catalogs_;
  Slot<Model> model_;
  std::vector<ServedModel> served_;
  Slot<FileStorage> storage_;
  Slot<MessageBus> bus_;
};

}  // namespace sra
