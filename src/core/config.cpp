#include "core/config.h"

#include <unistd.h>  // environ

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/dotenv.h"
#include "core/errors.h"
#include "core/settings.h"
#include "core/text.h"

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
  config.add_environment();
  return config;
}

Config Config::from_environment() {
  Config config;
  config.add_environment();
  return config;
}

void Config::add_environment() {
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    values_[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    from_environment_[std::string(entry.substr(0, eq))] = true;
  }
}

std::string Config::origin(std::string_view name) const {
  if (from_environment_.count(name)) return "environment";
  if (values_.count(name)) return source_.empty() ? std::string("given") : source_;
  return {};
}

namespace {

const Setting& declared(std::string_view name) {
  const Setting* s = find_setting(name);
  if (!s) {
    throw internal_error("the variable " + std::string(name) +
                         " is read but the settings table does not declare it");
  }
  return *s;
}

std::int64_t parse_int(const Setting& s, const std::string& value) {
  std::string text = strip(value);
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw config_error(std::string(s.name) + "=" + value + " is not an integer");
  }
  if (static_cast<double>(out) < s.min || static_cast<double>(out) > s.max) {
    throw config_error(std::string(s.name) + "=" + value + " is out of range [" +
                       std::to_string(static_cast<long long>(s.min)) + ", " +
                       std::to_string(static_cast<long long>(s.max)) + "]");
  }
  return out;
}

double parse_double(const Setting& s, const std::string& value) {
  std::string text = strip(value);
  char* end = nullptr;
  double out = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(out)) {
    throw config_error(std::string(s.name) + "=" + value + " is not a number");
  }
  if (out < s.min || out > s.max) {
    std::ostringstream range;
    range << "[" << s.min << ", " << s.max << "]";
    throw config_error(std::string(s.name) + "=" + value + " is out of range " + range.str());
  }
  return out;
}

bool parse_bool(const Setting& s, const std::string& value) {
  std::string text = lower(strip(value));
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  throw config_error(std::string(s.name) + "=" + value + " is not a boolean (use true or false)");
}

// The setting's declared default, as text; a fault when it has none (or a computed one).
std::string declared_default(const Setting& s) {
  if (s.computed) {
    throw internal_error(std::string(s.name) + " has a computed default: its reader must give it");
  }
  return std::string(s.default_value);
}

void must_be_computed(const Setting& s) {
  if (!s.computed) {
    throw internal_error(std::string(s.name) + " has a declared default (" +
                         std::string(s.default_value) + "): its reader must not give another");
  }
}

}  // namespace

std::optional<std::string> Config::get(std::string_view name) const {
  declared(name);
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

namespace {

std::optional<std::string> value_of(const std::map<std::string, std::string, std::less<>>& values,
                                    const Setting& s) {
  auto it = values.find(s.name);
  if (it == values.end() || strip(it->second).empty()) return std::nullopt;
  return it->second;
}

// The setting's declared default, as text, for a type that needs one.
std::string required_default(const Setting& s) {
  std::string d = declared_default(s);
  if (d.empty()) {
    throw internal_error(std::string(s.name) + " has no default: check get() first");
  }
  return d;
}

}  // namespace

std::string Config::get_string(const Setting& s) const {
  auto it = values_.find(s.name);
  return it != values_.end() ? it->second : declared_default(s);
}

std::int64_t Config::get_int(const Setting& s) const {
  auto v = value_of(values_, s);
  return parse_int(s, v ? *v : required_default(s));
}

double Config::get_double(const Setting& s) const {
  auto v = value_of(values_, s);
  return parse_double(s, v ? *v : required_default(s));
}

bool Config::get_bool(const Setting& s) const {
  auto v = value_of(values_, s);
  return parse_bool(s, v ? *v : required_default(s));
}

std::string Config::get_string(std::string_view name) const {
  return get_string(declared(name));
}

std::int64_t Config::get_int(std::string_view name) const {
  return get_int(declared(name));
}

double Config::get_double(std::string_view name) const {
  return get_double(declared(name));
}

bool Config::get_bool(std::string_view name) const {
  return get_bool(declared(name));
}

std::vector<std::string> Config::get_list(std::string_view name) const {
  return split_list(get_string(name));
}

std::string Config::get_string(std::string_view name, std::string_view computed_default) const {
  const Setting& s = declared(name);
  must_be_computed(s);
  auto it = values_.find(s.name);
  return it != values_.end() ? it->second : std::string(computed_default);
}

std::int64_t Config::get_int(std::string_view name, std::int64_t computed_default) const {
  const Setting& s = declared(name);
  must_be_computed(s);
  auto v = value_of(values_, s);
  return v ? parse_int(s, *v) : computed_default;
}

double Config::get_double(std::string_view name, double computed_default) const {
  const Setting& s = declared(name);
  must_be_computed(s);
  auto v = value_of(values_, s);
  return v ? parse_double(s, *v) : computed_default;
}

std::optional<std::string> Config::option(std::string_view prefix,
                                          std::string_view option_name) const {
  std::string variable = std::string(prefix) + std::string(option_name);
  for (auto& c : variable) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto it = values_.find(variable);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sra
