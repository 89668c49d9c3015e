#include "core/log_context.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

namespace sra {

namespace {

thread_local LogFields current;

// The length of the valid UTF-8 sequence at `s[i]`, or 0 if there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  std::size_t n = c < 0x80           ? 1
                  : (c >> 5) == 0x6  ? 2
                  : (c >> 4) == 0xE  ? 3
                  : (c >> 3) == 0x1E ? 4
                                     : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xC2) return 0;  // overlong
  return n;
}

// `s` with quotes and backslashes (JSON only), control characters and invalid UTF-8 escaped.
void append_escaped(std::string_view s, bool json, spdlog::memory_buf_t& out) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = utf8_length(s, i);
    if (n == 0) {  // not UTF-8: shown as a byte, never passed through
      if (json) {
        out.append(std::string_view("\\ufffd"));
      } else {
        fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
      }
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s.data() + i, s.data() + i + n);
    } else if (c == '\n') {
      out.append(std::string_view("\\n"));
    } else if (c == '\r') {
      out.append(std::string_view("\\r"));
    } else if (c == '\t') {
      out.append(std::string_view("\\t"));
    } else if (c < 0x20 || c == 0x7F) {
      if (json) {
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      } else {
        fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
      }
    } else if (json && (c == '"' || c == '\\')) {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(c));
    }
    i += n;
  }
}

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    auto since = msg.time.time_since_epoch();
    std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since).count();
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char time[32];
    std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &tm);
    auto level = spdlog::level::to_string_view(msg.level);
    const LogFields& f = current;
    std::string_view text(msg.payload.data(), msg.payload.size());
    if (json_) {
      fmt::format_to(std::back_inserter(out), R"({{"time":"{}.{:03}Z","level":"{}","message":")",
                     time, millis, std::string_view(level.data(), level.size()));
      append_escaped(text, true, out);
      out.push_back('"');
      if (!f.request_id.empty())
        fmt::format_to(std::back_inserter(out), R"(,"request_id":"{}")", f.request_id);
      if (f.status != 0) {
        out.append(std::string_view(R"(,"route":")"));
        append_escaped(f.route, true, out);
        fmt::format_to(std::back_inserter(out), R"(","status":{},"duration_ms":{:.1f})", f.status,
                       f.duration_ms);
      }
      out.append(std::string_view("}\n"));
      return;
    }
    fmt::format_to(std::back_inserter(out), "{}.{:03}Z ", time, millis);
    msg.color_range_start = out.size();
    out.append(std::string_view(level.data(), level.size()));
    msg.color_range_end = out.size();
    fmt::format_to(std::back_inserter(out), " [{}]", msg.thread_id);
    if (!f.request_id.empty()) fmt::format_to(std::back_inserter(out), " [{}]", f.request_id);
    out.push_back(' ');
    append_escaped(text, false, out);
    out.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(json_);
  }

 private:
  bool json_;
};

}  // namespace

LogScope::LogScope(LogFields fields) : saved_(std::move(current)) {
  current = std::move(fields);
}

LogScope::~LogScope() {
  current = std::move(saved_);
}

const LogFields& current_log_fields() {
  return current;
}

void install_log_format(bool json) {
  spdlog::set_formatter(std::make_unique<LineFormatter>(json));
}

std::string checked_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return {};
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return {};
  }
  return std::string(id);
}

}  // namespace sra
