#include "core/config.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/dotenv.h"
#include "core/errors.h"
#include "core/text.h"

extern char** environ;

namespace sra {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Config Config::load(const std::optional<std::filesystem::path>& env_file) {
  Config config;
  std::filesystem::path path = env_file.value_or(".env");
  bool exists = std::filesystem::exists(path);
  if (env_file && !exists) throw config_error("env file " + path.string() + " does not exist");
  if (exists) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error("cannot read env file " + path.string());
    std::stringstream text;
    text << in.rdbuf();
    auto from_environment = [](const std::string& name) -> std::optional<std::string> {
      if (const char* v = std::getenv(name.c_str())) return std::string(v);
      return std::nullopt;
    };
    for (auto& [k, v] : parse_dotenv(text.str(), path.string(), from_environment)) {
      config.values_[k] = v;
    }
    config.source_ = path.string();
  }
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    config.values_[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  return config;
}

std::optional<std::string> Config::get(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Config::get_string(std::string_view key, std::string_view fallback) const {
  auto v = get(key);
  return v ? *v : std::string(fallback);
}

std::int64_t Config::get_int(std::string_view key, std::int64_t fallback, std::int64_t min,
                             std::int64_t max) const {
  auto v = get(key);
  if (!v || strip(*v).empty()) return fallback;
  std::string s = strip(*v);
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    throw config_error(std::string(key) + "=" + *v + " is not an integer");
  }
  if (out < min || out > max) {
    throw config_error(std::string(key) + "=" + *v + " is out of range [" + std::to_string(min) +
                       ", " + std::to_string(max) + "]");
  }
  return out;
}

double Config::get_double(std::string_view key, double fallback, double min, double max) const {
  auto v = get(key);
  if (!v || strip(*v).empty()) return fallback;
  std::string s = strip(*v);
  char* end = nullptr;
  double out = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) {
    throw config_error(std::string(key) + "=" + *v + " is not a number");
  }
  if (out < min || out > max) {
    std::ostringstream range;
    range << "[" << min << ", " << max << "]";
    throw config_error(std::string(key) + "=" + *v + " is out of range " + range.str());
  }
  return out;
}

bool Config::get_bool(std::string_view key, bool fallback) const {
  auto v = get(key);
  if (!v || strip(*v).empty()) return fallback;
  std::string s = lower(strip(*v));
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  throw config_error(std::string(key) + "=" + *v + " is not a boolean (use true or false)");
}

std::vector<std::string> Config::get_list(std::string_view key,
                                          const std::vector<std::string>& fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(*v);
  while (std::getline(in, item, ',')) {
    item = strip(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace sra
