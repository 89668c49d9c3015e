#include "core/registry.h"

#include <dlfcn.h>

#include <mutex>
#include <unordered_map>

#include "core/errors.h"
#include "core/plugin_api.h"

namespace sra {
namespace {

template <typename Part>
struct PluginSymbol;
template <>
struct PluginSymbol<Model> {
  static constexpr const char* name = "sra_create_model";
};
template <>
struct PluginSymbol<FileStorage> {
  static constexpr const char* name = "sra_create_file_storage";
};
template <>
struct PluginSymbol<MessageBus> {
  static constexpr const char* name = "sra_create_message_bus";
};

// Handles stay open for the life of the process: objects from a plugin keep code pointers into it.
void* open_library(const std::string& variable, const std::string& path) {
  static std::mutex mutex;
  static std::unordered_map<std::string, void*> open;
  std::lock_guard lock(mutex);
  if (auto it = open.find(path); it != open.end()) return it->second;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw config_error(variable + "=" + path + ": cannot load plugin: " + (why ? why : "unknown"));
  }
  using VersionFn = std::uint32_t (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(handle, "sra_plugin_abi_version"));
  if (!version) {
    dlclose(handle);
    throw config_error(variable + "=" + path +
                       ": not a speech-recognition-api plugin (no sra_plugin_abi_version)");
  }
  if (std::uint32_t v = version(); v != SRA_PLUGIN_ABI_VERSION) {
    dlclose(handle);
    throw config_error(variable + "=" + path + ": plugin ABI version " + std::to_string(v) +
                       ", this build needs " + std::to_string(SRA_PLUGIN_ABI_VERSION));
  }
  open[path] = handle;
  return handle;
}

}  // namespace

bool looks_like_plugin_path(const std::string& value) {
  return value.find('/') != std::string::npos ||
         (value.size() > 3 && value.compare(value.size() - 3, 3, ".so") == 0) ||
         value.find(".so.") != std::string::npos;
}

template <typename Part>
PartFactory<Part> load_plugin_factory(const std::string& variable, const std::string& path) {
  void* handle = open_library(variable, path);
  using CreateFn = Part* (*)(const Config*);
  auto create = reinterpret_cast<CreateFn>(dlsym(handle, PluginSymbol<Part>::name));
  if (!create) {
    throw config_error(variable + "=" + path + ": plugin does not provide " +
                       PluginSymbol<Part>::name);
  }
  return [create, variable, path](const Config& config) {
    std::unique_ptr<Part> part(create(&config));
    if (!part) throw config_error(variable + "=" + path + ": plugin factory returned nothing");
    return part;
  };
}

template <typename Part>
PartFactory<Part> PartCatalog<Part>::resolve(const std::string& value) const {
  for (const auto& e : entries_) {
    bool match = e.name == value;
    for (const auto& a : e.aliases) match = match || a == value;
    if (!match) continue;
    if (!e.factory) {
      throw config_error(variable_ + "=" + value + ": '" + e.name +
                         "' is not available in this build");
    }
    return e.factory;
  }
  if (looks_like_plugin_path(value)) return load_plugin_factory<Part>(variable_, value);
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  throw config_error(variable_ + "=" + value + " is unknown; known: " + known +
                     ", or a path to a plugin library");
}

template <typename Part>
std::vector<std::string> PartCatalog<Part>::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

template class PartCatalog<Model>;
template class PartCatalog<FileStorage>;
template class PartCatalog<MessageBus>;
template PartFactory<Model> load_plugin_factory<Model>(const std::string&, const std::string&);
template PartFactory<FileStorage> load_plugin_factory<FileStorage>(const std::string&,
                                                                   const std::string&);
template PartFactory<MessageBus> load_plugin_factory<MessageBus>(const std::string&,
                                                                 const std::string&);

}  // namespace sra
