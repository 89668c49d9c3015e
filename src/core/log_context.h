// Log lines that say which request they belong to. LogScope puts a request's fields (its id, and
// for the one access line per request its route, status and duration) on the calling thread for
// as long as the scope lives; every spdlog line written on that thread meanwhile carries them.
// Work that hops threads (a coroutine, a job on the inference pool, a task in a worker) opens a
// scope wherever it runs. install_log_format() makes the default logger write either readable
// lines (the default) or one JSON object per line (LOG_FORMAT=json); in both, control characters
// and invalid UTF-8 in messages (which may quote user input) are escaped, so a client cannot
// forge log lines.
//
// LogScope is per thread and must be destroyed on the thread that made it, in reverse order.
#pragma once

#include <string>
#include <string_view>

namespace sra {

struct LogFields {
  std::string request_id;   // X-Request-Id of the request the line belongs to (empty: none)
  std::string route = {};   // access line only: the route label
  int status = 0;           // access line only: the HTTP status (0: not an access line)
  double duration_ms = -1;  // access line only: time to the response
};

class LogScope {
 public:
  explicit LogScope(LogFields fields);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogFields saved_;
};

// The fields of the innermost scope on this thread (empty fields when none).
const LogFields& current_log_fields();

// Sets the default logger's format: JSON lines when `json`, else readable lines.
void install_log_format(bool json);

// `id` if it is acceptable as a request id (1-128 characters of A-Z a-z 0-9 . _ : -), else empty.
std::string checked_request_id(std::string_view id);

}  // namespace sra
