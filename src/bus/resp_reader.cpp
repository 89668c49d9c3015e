#include "bus/resp_reader.h"

#include <charconv>

#include "core/errors.h"

namespace sra::bus {
namespace {

[[noreturn]] void protocol_error(const std::string& why) {
  throw unavailable("Redis protocol error: " + why);
}

// Parses one reply at data[pos...]; returns false when more bytes are needed.
class Parser {
 public:
  Parser(std::string_view data, const RespLimits& limits) : data_(data), limits_(limits) {}

  bool reply(RedisReply& out, int depth) {
    if (depth > limits_.max_depth) protocol_error("arrays nested too deep");
    std::string_view line_text;
    if (pos_ >= data_.size()) return false;
    char type = data_[pos_];
    std::size_t start = pos_;
    ++pos_;
    if (!line(line_text)) {
      pos_ = start;
      return false;
    }
    switch (type) {
      case '+':
        out.type = RedisReply::Type::status;
        out.str.assign(line_text);
        return true;
      case '-':
        out.type = RedisReply::Type::error;
        out.str.assign(line_text);
        return true;
      case ':':
        out.type = RedisReply::Type::integer;
        out.integer = number(line_text);
        return true;
      case '$': {
        long long n = number(line_text);
        if (n == -1) {
          out.type = RedisReply::Type::nil;
          return true;
        }
        if (n < 0 || static_cast<unsigned long long>(n) > limits_.max_bulk_bytes)
          protocol_error("bulk string length " + std::to_string(n) + " out of bounds");
        std::size_t len = static_cast<std::size_t>(n);
        if (data_.size() - pos_ < len + 2) {
          pos_ = start;
          return false;
        }
        if (data_[pos_ + len] != '\r' || data_[pos_ + len + 1] != '\n')
          protocol_error("bulk string not followed by CRLF");
        out.type = RedisReply::Type::string;
        out.str.assign(data_.substr(pos_, len));
        pos_ += len + 2;
        return true;
      }
      case '*': {
        long long n = number(line_text);
        if (n == -1) {
          out.type = RedisReply::Type::nil;
          return true;
        }
        if (n < 0 || static_cast<unsigned long long>(n) > limits_.max_elements)
          protocol_error("array length " + std::to_string(n) + " out of bounds");
        out.type = RedisReply::Type::array;
        out.elements.clear();
        for (long long i = 0; i < n; ++i) {
          // Each element takes at least 3 bytes: never reserve what the buffer cannot hold.
          RedisReply element;
          if (!reply(element, depth + 1)) {
            pos_ = start;
            out.elements.clear();
            return false;
          }
          out.elements.push_back(std::move(element));
        }
        return true;
      }
      default:
        protocol_error("unexpected reply type byte " +
                       std::to_string(static_cast<unsigned char>(type)));
    }
  }

  std::size_t position() const { return pos_; }

 private:
  // The text up to CRLF; false (nothing consumed) when the CRLF has not arrived yet.
  bool line(std::string_view& out) {
    std::size_t end = data_.find("\r\n", pos_);
    if (end == std::string_view::npos) {
      if (data_.size() - pos_ > limits_.max_line_bytes) protocol_error("line too long");
      return false;
    }
    if (end - pos_ > limits_.max_line_bytes) protocol_error("line too long");
    out = data_.substr(pos_, end - pos_);
    pos_ = end + 2;
    return true;
  }

  static long long number(std::string_view text) {
    long long value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
      protocol_error("not a number: '" + std::string(text.substr(0, 32)) + "'");
    return value;
  }

  std::string_view data_;
  const RespLimits& limits_;
  std::size_t pos_ = 0;
};

}  // namespace

std::size_t parse_resp_reply(std::string_view data, RedisReply& out, const RespLimits& limits) {
  Parser parser(data, limits);
  RedisReply reply;
  if (!parser.reply(reply, 0)) return 0;
  out = std::move(reply);
  return parser.position();
}

std::string encode_resp_command(const std::vector<std::string>& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& arg : argv) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

}  // namespace sra::bus
