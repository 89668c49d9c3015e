// Config: the service's settings, read once from a `.env` file and the process environment.
//
// The environment wins over the file, as in the seed (python-dotenv without override). A Config
// is immutable after it is built and safe to read from any thread. Typed getters validate the
// value and throw sra::Error(config) whose message names the variable and what was expected, so a
// misconfigured part says exactly what to fix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sra {

class Config {
 public:
  Config() = default;
  explicit Config(std::map<std::string, std::string, std::less<>> values)
      : values_(std::move(values)) {}
  Config(std::initializer_list<std::pair<const std::string, std::string>> values)
      : values_(values) {}

  // Reads `env_file` if given (it must exist), else `.env` in the working directory if there is
  // one; then overlays the process environment.
  static Config load(const std::optional<std::filesystem::path>& env_file);

  std::optional<std::string> get(std::string_view key) const;
  std::string get_string(std::string_view key, std::string_view fallback) const;
  // Integers and numbers must parse whole and lie in [min, max].
  std::int64_t get_int(std::string_view key, std::int64_t fallback, std::int64_t min = INT64_MIN,
                       std::int64_t max = INT64_MAX) const;
  double get_double(std::string_view key, double fallback, double min = -1e300,
                    double max = 1e300) const;
  // true/false, 1/0, yes/no, on/off (any case).
  bool get_bool(std::string_view key, bool fallback) const;
  // Comma-separated list; blanks around items trimmed, empty items dropped.
  std::vector<std::string> get_list(std::string_view key,
                                    const std::vector<std::string>& fallback) const;

  // Where the file values came from (for messages); empty when no file was read.
  const std::string& source() const { return source_; }
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::string source_;
};

}  // namespace sra
