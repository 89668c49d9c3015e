#include "core/dotenv.h"

#include <cctype>

#include "core/errors.h"

namespace sra {
namespace {

class DotenvParser {
 public:
  DotenvParser(std::string_view text, const std::string& source, const EnvLookup& lookup)
      : text_(text), source_(source), lookup_(lookup) {}

  std::map<std::string, std::string> parse() {
    while (pos_ < text_.size()) parse_line();
    return values_;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw config_error(source_ + ":" + std::to_string(line_) + ": " + what);
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  void skip_rest_of_line() {
    while (!at_end() && peek() != '\n') ++pos_;
    if (!at_end()) ++pos_;
    ++line_;
  }
  // After a value: only blanks and an optional comment may follow on the line.
  void expect_end_of_line() {
    skip_blanks();
    if (!at_end() && peek() == '\r') ++pos_;
    if (!at_end() && peek() != '\n' && peek() != '#') fail("unexpected characters after value");
    skip_rest_of_line();
  }

  void parse_line() {
    skip_blanks();
    if (at_end()) return;
    if (peek() == '\n' || peek() == '\r' || peek() == '#') return skip_rest_of_line();
    std::string key = parse_key();
    if (key == "export" && !at_end() && (peek() == ' ' || peek() == '\t')) {
      skip_blanks();
      key = parse_key();
    }
    if (key.empty()) fail("expected a variable name");
    skip_blanks();
    if (at_end() || peek() == '\n' || peek() == '\r' || peek() == '#') {
      // A bare `KEY`: python-dotenv records it without a value; nothing to set.
      return skip_rest_of_line();
    }
    if (peek() != '=') fail("expected '=' after '" + key + "'");
    ++pos_;
    skip_blanks();
    std::string value;
    if (!at_end() && peek() == '\'') {
      value = parse_single_quoted();
      expect_end_of_line();
    } else if (!at_end() && peek() == '"') {
      value = expand(parse_double_quoted());
      expect_end_of_line();
    } else {
      value = expand(parse_unquoted());
      skip_rest_of_line();
    }
    values_[key] = value;
  }

  std::string parse_key() {
    std::size_t start = pos_;
    while (!at_end()) {
      char c = peek();
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') {
        ++pos_;
      } else {
        break;
      }
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  std::string parse_single_quoted() {
    std::size_t start_line = line_;
    ++pos_;
    std::string out;
    while (true) {
      if (at_end()) {
        line_ = start_line;
        fail("unterminated single-quoted value");
      }
      char c = text_[pos_++];
      if (c == '\'') return out;
      if (c == '\\' && !at_end() && (peek() == '\'' || peek() == '\\')) c = text_[pos_++];
      if (c == '\n') ++line_;
      out += c;
    }
  }

  std::string parse_double_quoted() {
    std::size_t start_line = line_;
    ++pos_;
    std::string out;
    while (true) {
      if (at_end()) {
        line_ = start_line;
        fail("unterminated double-quoted value");
      }
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c == '\\' && !at_end()) {
        char e = text_[pos_++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '\'':
            out += '\'';
            break;
          default:
            out += '\\';
            out += e;
            break;
        }
        continue;
      }
      if (c == '\n') ++line_;
      out += c;
    }
  }

  std::string parse_unquoted() {
    std::size_t start = pos_;
    while (!at_end() && peek() != '\n') {
      // ` #` starts a comment; a `#` glued to the value is part of it (python-dotenv's rule).
      if (peek() == '#' && pos_ > start && (text_[pos_ - 1] == ' ' || text_[pos_ - 1] == '\t')) {
        break;
      }
      ++pos_;
    }
    std::string value(text_.substr(start, pos_ - start));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.pop_back();
    }
    return value;
  }

  std::optional<std::string> resolve(const std::string& name) const {
    if (lookup_) {
      if (auto v = lookup_(name)) return v;
    }
    auto it = values_.find(name);
    if (it != values_.end()) return it->second;
    return std::nullopt;
  }

  // ${NAME} and ${NAME:-default}, as python-dotenv's interpolation.
  std::string expand(const std::string& in) const {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '{') {
        std::size_t close = in.find('}', i + 2);
        if (close == std::string::npos) fail("unterminated ${...} in value");
        std::string inner = in.substr(i + 2, close - i - 2);
        std::string name = inner, fallback;
        if (auto sep = inner.find(":-"); sep != std::string::npos) {
          name = inner.substr(0, sep);
          fallback = inner.substr(sep + 2);
        }
        out += resolve(name).value_or(fallback);
        i = close;
      } else {
        out += in[i];
      }
    }
    return out;
  }

  std::string_view text_;
  const std::string& source_;
  const EnvLookup& lookup_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::map<std::string, std::string> values_;
};

}  // namespace

std::map<std::string, std::string> parse_dotenv(std::string_view text, const std::string& source,
                                                const EnvLookup& lookup) {
  return DotenvParser(text, source, lookup).parse();
}

}  // namespace sra
