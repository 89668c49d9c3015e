// Small timing helpers of the buses' worker loops. Pure or per-call: safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stop_token>
#include <string>

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

// Sleeps up to `seconds`, waking early when `stop` is requested.
inline void sleep_unless_stopped(std::stop_token stop, double seconds) {
  std::mutex m;
  std::unique_lock lock(m);
  std::condition_variable_any cv;
  cv.wait_for(lock, stop, std::chrono::duration<double>(seconds), [] { return false; });
}

}  // namespace sra::bus
