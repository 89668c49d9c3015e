// Config: the service's settings, read once from a `.env` file and the process environment.
//
// The environment wins over the file, as in the Python project (python-dotenv without override).
// Every read goes through the settings table (core/settings.h): a getter takes the variable's
// name, and its default and bounds come from the table's declaration; reading a name the table
// does not declare throws sra::Error(internal) (a fault of ours: every variable is documented).
// A value that is not of the declared type or out of its bounds throws sra::Error(config) naming
// the variable and what was expected, so a misconfigured part says exactly what to fix. The
// option tables' variables (WHISPER_<option>, VAD_<option>) are read with option().
//
// A Config is immutable after it is built and safe to read from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/settings.h"

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
  // The process environment alone (for settings read below the parts, such as SRA_KERNELS).
  static Config from_environment();

  // The value of a declared variable, if it is set.
  std::optional<std::string> get(std::string_view name) const;
  // The value, or the declared default.
  std::string get_string(std::string_view name) const;
  // Integers and numbers must parse whole and lie in the declared [min, max].
  std::int64_t get_int(std::string_view name) const;
  double get_double(std::string_view name) const;
  // true/false, 1/0, yes/no, on/off (any case).
  bool get_bool(std::string_view name) const;
  // Comma-separated list; blanks around items trimmed, empty items dropped.
  std::vector<std::string> get_list(std::string_view name) const;
  // The same, for a variable whose default the table says is computed (from the machine or other
  // settings): the caller gives it. Calling these for one with a declared default is a fault.
  std::string get_string(std::string_view name, std::string_view computed_default) const;
  std::int64_t get_int(std::string_view name, std::int64_t computed_default) const;
  double get_double(std::string_view name, double computed_default) const;

  // The same, for a variable a plugin declares itself (the table declares the service's own):
  // default and bounds from `declared`.
  std::string get_string(const Setting& declared) const;
  std::int64_t get_int(const Setting& declared) const;
  double get_double(const Setting& declared) const;
  bool get_bool(const Setting& declared) const;

  // The variable `prefix` + NAME of an option an option table declares (WHISPER_BEAM_SIZE for
  // prefix "WHISPER_" and option "beam_size"), if it is set.
  std::optional<std::string> option(std::string_view prefix, std::string_view option_name) const;

  // Where the file values came from (for messages); empty when no file was read.
  const std::string& source() const { return source_; }
  // Where `name`'s value came from: "environment", the .env file's path, or "" (not set).
  std::string origin(std::string_view name) const;
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  void add_environment();  // the process environment, over what is there

  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, bool, std::less<>> from_environment_;  // names the environment set
  std::string source_;
};

}  // namespace sra
