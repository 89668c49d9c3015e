#include "core/parts.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <type_traits>

#include "core/errors.h"

namespace sra {
namespace {

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

}  // namespace

Parts::Parts(Config config, PartCatalogs catalogs)
    : config_(std::move(config)), catalogs_(std::move(catalogs)) {
  auto value = config_.get("SERVED_MODELS");
  if (!value) return;
  for (const std::string& raw : split(*value, ',')) {
    std::string item = trim(raw);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos || trim(item.substr(0, eq)).empty()) {
      throw config_error("SERVED_MODELS: '" + item + "' is not name=MODEL[;VAR=value...]");
    }
    std::string name = trim(item.substr(0, eq));
    auto parts = split(item.substr(eq + 1), ';');
    auto values = config_.values();
    values["MODEL"] = trim(parts.empty() ? "" : parts[0]);
    if (values["MODEL"].empty()) throw config_error("SERVED_MODELS: '" + name + "' has no MODEL");
    for (std::size_t i = 1; i < parts.size(); ++i) {
      auto assign = parts[i].find('=');
      if (assign == std::string::npos) {
        throw config_error("SERVED_MODELS: '" + parts[i] + "' in '" + name + "' is not VAR=value");
      }
      values[trim(parts[i].substr(0, assign))] = trim(parts[i].substr(assign + 1));
    }
    for (const auto& s : served_) {
      if (s.name == name) throw config_error("SERVED_MODELS names '" + name + "' twice");
    }
    served_.push_back({name, Config(std::move(values))});
  }
}

template <typename F>
auto Parts::built(const std::string& name, F make) -> decltype(make()) {
  using Part = typename decltype(make())::element_type;
  auto started = std::chrono::steady_clock::now();
  auto part = make();
  if constexpr (std::is_same_v<Part, Model>) {
    if (catalogs_.hooks.model_built) {
      catalogs_.hooks.model_built(
          name, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
  } else if constexpr (std::is_same_v<Part, FileStorage>) {
    if (catalogs_.hooks.wrap_storage) part = catalogs_.hooks.wrap_storage(std::move(part));
  } else {
    if (catalogs_.hooks.wrap_bus) part = catalogs_.hooks.wrap_bus(std::move(part));
  }
  return part;
}

template <typename Part>
Part& Parts::get(Slot<Part>& slot, const PartCatalog<Part>& catalog, const std::string& name) {
  std::lock_guard lock(slot.mutex);
  if (!slot.part) {
    auto factory = catalog.resolve(config_.get_string(catalog.variable()));
    slot.part = built(name, [&] { return factory(config_); });
  }
  return *slot.part;
}

Model& Parts::model() {
  return get(model_, catalogs_.models, model_name());
}

FileStorage& Parts::storage() {
  return get(storage_, catalogs_.storages, "storage");
}

MessageBus& Parts::bus() {
  return get(bus_, catalogs_.buses, "bus");
}

Model& Parts::model(const std::string& name) {
  for (auto& s : served_) {
    if (s.name != name) continue;
    std::lock_guard lock(s.slot->mutex);
    if (!s.slot->part) {
      auto factory = catalogs_.models.resolve(*s.config.get("MODEL"));
      s.slot->part = built(s.name, [&] { return factory(s.config); });
    }
    return *s.slot->part;
  }
  if (name == kOpenAIDefaultModelName || name == model_name()) return model();
  throw not_found("The model '" + name + "' does not exist");
}

std::vector<std::string> Parts::served_model_names() const {
  std::vector<std::string> names{model_name()};
  if (model_name() != kOpenAIDefaultModelName) names.push_back(kOpenAIDefaultModelName);
  for (const auto& s : served_) {
    if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  }
  return names;
}

}  // namespace sra
