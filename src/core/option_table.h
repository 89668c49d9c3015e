// Option tables: every setting a request may send to a model, declared once (name, type, bounds,
// default, one-line doc), so that parsing, validation, the README table and the OpenAPI document
// all come from the same declaration and cannot drift apart.
//
// An OptionSpec describes one option; parse_option() turns a request's (or a WHISPER_* variable's)
// text into a checked ParsedOption or throws sra::Error(invalid_request) with field() set to the
// option's name and a message saying what is expected. Bounds are hard: a value outside them is
// refused, never clamped, so a client learns what it asked for is not possible. Tables are
// immutable values; every function here is pure and safe from any thread.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/errors.h"

namespace sra {

enum class OptionType {
  boolean,  // true/false, 1/0, yes/no, on/off
  integer,  // a whole number in [min, max]
  number,   // a finite number in [min, max]
  numbers,  // comma-separated numbers, each in [min, max], at most max_items of them
  text,     // free text of at most max_items bytes
  choice,   // one of `choices` (case-insensitive)
};

struct OptionSpec {
  std::string name;  // the form field; WHISPER_<NAME> sets the default
  OptionType type = OptionType::text;
  std::string default_text;          // the default as documented ("" when there is none)
  std::string doc;                   // one line for the README and the OpenAPI document
  double min = 0;                    // integer, number, numbers: smallest value accepted
  double max = 0;                    // integer, number, numbers: largest value accepted
  std::size_t max_items = 0;         // numbers: most items; text: most bytes
  bool nullable = false;             // "none", "null" or "" are accepted and mean "unset"
  std::vector<std::string> choices;  // choice: the accepted values, lower case
  std::vector<std::string> aliases;  // other field names accepted for it ("prompt")
  std::vector<std::string> members;  // text holding a JSON object: its keys, which a form may
                                     // also send as `name[key]` fields (OpenAI's SDKs do)
  // text: a further check of the value's content (throws sra::Error(invalid_request)); may be
  // empty. Runs wherever the option is parsed, so a bad value is refused before work is queued.
  std::function<void(std::string_view)> check;
};

// A value that passed its spec. `unset` is true for a nullable option given as none/null/"".
struct ParsedOption {
  bool unset = false;
  bool flag = false;            // boolean
  double number = 0;            // integer, number
  std::vector<double> numbers;  // numbers
  std::string text;             // text (as given), choice (lower case)
};

// Checks `value` against `spec`. Throws sra::Error(invalid_request, field = spec.name).
ParsedOption parse_option(const OptionSpec& spec, std::string_view value);

// A spec built in one expression: the fields every option has.
OptionSpec make_option(std::string name, OptionType type, std::string default_text,
                       std::string doc);

// An option together with what applies its checked value to a target (a layer's options struct),
// so that adding an option is one line of its table plus the target's field. The setter may
// refuse a value the spec's type admits (sra::Error(invalid_request) naming the field).
template <typename Target>
struct BoundOption {
  OptionSpec spec;
  std::function<void(Target&, const ParsedOption&)> set;
};
template <typename Target>
using BoundOptions = std::vector<BoundOption<Target>>;

// The specs of a bound table, for lookups and documentation.
template <typename Target>
std::vector<OptionSpec> specs_of(const BoundOptions<Target>& table) {
  std::vector<OptionSpec> specs;
  for (const auto& o : table) specs.push_back(o.spec);
  return specs;
}

// Parses `value` for the option named `field` (name or alias) and applies it to `target`; false
// when the table has no such option. Errors name the field as the client named it.
template <typename Target>
bool apply_option(const BoundOptions<Target>& table, Target& target, std::string_view field,
                  std::string_view value) {
  for (const auto& o : table) {
    bool named = o.spec.name == field;
    for (const auto& alias : o.spec.aliases) named = named || alias == field;
    if (!named) continue;
    try {
      o.set(target, parse_option(o.spec, value));
    } catch (const Error& e) {
      throw Error(e.kind(), e.what(), std::string(field));
    }
    return true;
  }
  return false;
}

// The spec whose name or alias is `field`, or nullptr.
const OptionSpec* find_option(const std::vector<OptionSpec>& table, std::string_view field);

// The variable that sets an option's default: `prefix` + its name in upper case
// ("WHISPER_", "beam_size" -> "WHISPER_BEAM_SIZE").
std::string option_variable(std::string_view prefix, std::string_view name);

// The bounds in words, as the README shows them ("integer in [1, 10]", "up to 6 numbers in
// [0, 2]").
std::string describe_bounds(const OptionSpec& spec);

// A Markdown table: | variable | default | accepted | meaning |, one row per option, with
// `variable_prefix` + NAME in upper case as the variable (e.g. WHISPER_BEAM_SIZE).
std::string options_markdown(const std::vector<OptionSpec>& table,
                             std::string_view variable_prefix);
// A Markdown table of request fields that no variable sets: | field | default | accepted |
// meaning |.
std::string fields_markdown(const std::vector<OptionSpec>& table);

// JSON-schema properties (OpenAPI 3.1) for the options as multipart form fields.
boost::json::object options_schema_properties(const std::vector<OptionSpec>& table);

}  // namespace sra
