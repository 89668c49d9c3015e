// Small timing helpers of the buses' worker loops. Pure or per-call: safe from any thread.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

namespace sra::bus {

// Seconds since the Unix epoch, as the scores and timestamps the queues store.
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A time in seconds as Redis arguments take it ("1764245000.123456").
inline std::string seconds_text(double v) {
  char out[64];
  std::snprintf(out, sizeof out, "%.6f", v);
  return out;
}

// How long the record of an unfinished task lives: a week, or the result's time to live if that
// is longer. Every record expires, even one whose message was lost; a task still queued after a
// week is forgotten.
inline long long unfinished_record_seconds(long long result_expires) {
  return std::max(result_expires, 7LL * 86400);
}

// A counter as Redis returns it ("3"); nullopt for anything else (a damaged or hostile record).
inline std::optional<long long> count_from(std::string_view text) {
  long long n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 0) return std::nullopt;
  return n;
}

// Sleeps up to `seconds`, waking early when `stop` is requested.
inline void sleep_unless_stopped(std::stop_token stop, double seconds) {
  std::mutex m;
  std::unique_lock lock(m);
  std::condition_variable_any cv;
  cv.wait_for(lock, stop, std::chrono::duration<double>(seconds), [] { return false; });
}

}  // namespace sra::bus
