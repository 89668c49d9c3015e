// PartCatalog: the names under which a kind of part (model, storage, message bus) can be chosen,
// and how each is built.
//
// A value of MODEL / STORAGE / MESSAGE_BUS resolves to a factory by, in order: a short name
// ("whisper"), an alias (the seed's Python class path, so a seed `.env` keeps working), or a path
// to a plugin library (see plugin_api.h). Names known to the project but not built into this
// binary resolve to an error saying so; unknown names to an error listing the known ones. A
// catalog is filled at start-up and read-only afterwards: safe to read from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace sra {

template <typename Part>
using PartFactory = std::function<std::unique_ptr<Part>(const Config&)>;

// Loads `path` as a plugin and returns its factory for the part `Part`. Throws sra::Error(config)
// naming `variable` if the library cannot be loaded, has another ABI version or lacks the factory.
template <typename Part>
PartFactory<Part> load_plugin_factory(const std::string& variable, const std::string& path);

template <typename Part>
class PartCatalog {
 public:
  explicit PartCatalog(std::string variable) : variable_(std::move(variable)) {}

  // `factory` empty: the name is known but this build does not include the part.
  void add(std::string name, std::vector<std::string> aliases, PartFactory<Part> factory) {
    entries_.push_back({std::move(name), std::move(aliases), std::move(factory)});
  }

  PartFactory<Part> resolve(const std::string& value) const;
  std::vector<std::string> names() const;
  const std::string& variable() const { return variable_; }

 private:
  struct Entry {
    std::string name;
    std::vector<std::string> aliases;
    PartFactory<Part> factory;
  };
  std::string variable_;
  std::vector<Entry> entries_;
};

bool looks_like_plugin_path(const std::string& value);

}  // namespace sra
