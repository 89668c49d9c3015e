#include "core/option_table.h"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/errors.h"
#include "core/text.h"

namespace sra {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Shortest decimal text of a bound (1, 0.5, 2147483647).
std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// A quoted excerpt of a client's value for messages: never more than 40 bytes of it.
std::string excerpt(std::string_view v) {
  if (v.size() <= 40) return "'" + std::string(v) + "'";
  return "'" + std::string(utf8_prefix(v, 40)) + "...' (" + std::to_string(v.size()) + " bytes)";
}

std::optional<double> to_number(std::string_view text) {
  std::string s = strip(text);
  if (s.empty() || s.size() > 64) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

bool is_none(std::string_view v) {
  std::string l = lower(strip(v));
  return l.empty() || l == "none" || l == "null";
}

}  // namespace

OptionSpec make_option(std::string name, OptionType type, std::string default_text,
                       std::string doc) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = type;
  s.default_text = std::move(default_text);
  s.doc = std::move(doc);
  return s;
}

std::string option_variable(std::string_view prefix, std::string_view name) {
  std::string variable = std::string(prefix) + std::string(name);
  for (auto& c : variable) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return variable;
}

std::string describe_bounds(const OptionSpec& spec) {
  std::string range = "[" + number_text(spec.min) + ", " + number_text(spec.max) + "]";
  std::string out;
  switch (spec.type) {
    case OptionType::boolean:
      out = "`true` or `false`";
      break;
    case OptionType::integer:
      out = "integer in " + range;
      break;
    case OptionType::number:
      out = "number in " + range;
      break;
    case OptionType::numbers:
      out = "up to " + std::to_string(spec.max_items) + " comma-separated numbers in " + range;
      break;
    case OptionType::text:
      out = "text, up to " + std::to_string(spec.max_items) + " bytes";
      break;
    case OptionType::choice: {
      for (const auto& c : spec.choices) out += (out.empty() ? "`" : ", `") + c + "`";
      break;
    }
  }
  if (spec.nullable && spec.type != OptionType::text) out += ", or `none`";
  return out;
}

ParsedOption parse_option(const OptionSpec& spec, std::string_view value) {
  ParsedOption p;
  auto fail = [&](const std::string& expected) -> Error {
    return invalid_field(spec.name, "expected " + expected + ", got " + excerpt(value));
  };
  if (spec.nullable && is_none(value)) {
    p.unset = true;
    return p;
  }
  switch (spec.type) {
    case OptionType::boolean: {
      std::string l = lower(strip(value));
      if (l == "1" || l == "true" || l == "yes" || l == "on") {
        p.flag = true;
      } else if (l == "0" || l == "false" || l == "no" || l == "off") {
        p.flag = false;
      } else {
        throw fail(describe_bounds(spec));
      }
      break;
    }
    case OptionType::integer:
    case OptionType::number: {
      auto d = to_number(value);
      if (!d || *d < spec.min || *d > spec.max ||
          (spec.type == OptionType::integer && *d != std::floor(*d))) {
        throw fail(describe_bounds(spec));
      }
      p.number = *d;
      break;
    }
    case OptionType::numbers: {
      // Counted while splitting, so a huge list costs no more than its first max_items + 1 items.
      std::size_t at = 0;
      while (at <= value.size()) {
        std::size_t comma = value.find(',', at);
        std::string_view item =
            value.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
        at = comma == std::string_view::npos ? value.size() + 1 : comma + 1;
        if (strip(item).empty()) continue;
        if (p.numbers.size() == spec.max_items) throw fail(describe_bounds(spec));
        auto d = to_number(item);
        if (!d || *d < spec.min || *d > spec.max) throw fail(describe_bounds(spec));
        p.numbers.push_back(*d);
      }
      break;
    }
    case OptionType::text:
      if (value.size() > spec.max_items) throw fail(describe_bounds(spec));
      if (spec.check) spec.check(value);
      p.text = std::string(value);
      break;
    case OptionType::choice: {
      std::string l = lower(strip(value));
      bool known = false;
      for (const auto& c : spec.choices) known = known || c == l;
      if (!known) throw fail(describe_bounds(spec));
      p.text = l;
      break;
    }
  }
  return p;
}

const OptionSpec* find_option(const std::vector<OptionSpec>& table, std::string_view field) {
  for (const auto& spec : table) {
    if (spec.name == field) return &spec;
    for (const auto& alias : spec.aliases) {
      if (alias == field) return &spec;
    }
  }
  return nullptr;
}

std::string options_markdown(const std::vector<OptionSpec>& table,
                             std::string_view variable_prefix) {
  std::ostringstream out;
  out << "| variable | default | accepted | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : table) {
    std::string variable = option_variable(variable_prefix, spec.name);
    std::string fields = "`" + spec.name + "`";
    for (const auto& a : spec.aliases) fields += " or `" + a + "`";
    out << "| `" << variable << "` | " << spec.default_text << " | " << describe_bounds(spec)
        << " | " << spec.doc << " (field " << fields << ") |\n";
  }
  return out.str();
}

std::string fields_markdown(const std::vector<OptionSpec>& table) {
  std::ostringstream out;
  out << "| field | default | accepted | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : table) {
    out << "| `" << spec.name << "` | " << spec.default_text << " | " << describe_bounds(spec)
        << " | " << spec.doc << " |\n";
  }
  return out.str();
}

boost::json::object options_schema_properties(const std::vector<OptionSpec>& table) {
  namespace json = boost::json;
  json::object props;
  for (const auto& spec : table) {
    json::object p;
    std::string doc = spec.doc + " (" + describe_bounds(spec) + ")";
    if (!spec.default_text.empty()) doc += "; default " + spec.default_text;
    switch (spec.type) {
      case OptionType::boolean:
        p["type"] = "boolean";
        break;
      case OptionType::integer:
        p["type"] = "integer";
        p["minimum"] = spec.min;
        p["maximum"] = spec.max;
        break;
      case OptionType::number:
        p["type"] = "number";
        p["minimum"] = spec.min;
        p["maximum"] = spec.max;
        break;
      case OptionType::numbers:
      case OptionType::text:
        p["type"] = "string";
        if (spec.type == OptionType::text) p["maxLength"] = spec.max_items;
        break;
      case OptionType::choice: {
        json::array values;
        for (const auto& c : spec.choices) values.emplace_back(c);
        p["type"] = "string";
        p["enum"] = std::move(values);
        break;
      }
    }
    if (spec.nullable && spec.type != OptionType::text && spec.type != OptionType::numbers) {
      // "none" is accepted as text alongside the typed value.
      json::object typed = std::move(p);
      p = json::object{{"anyOf", json::array{std::move(typed), json::object{{"const", "none"}}}}};
    }
    p["description"] = doc;
    for (const auto& name : spec.aliases) props[name] = p;
    props[spec.name] = std::move(p);
  }
  return props;
}

}  // namespace sra
