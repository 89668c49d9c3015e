// RateLimiter: per-client limits on transcription requests (RATE_LIMIT_REQUESTS_PER_MINUTE) and
// on the audio they bring (RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE), as token buckets that hold one
// minute's allowance and refill continuously. A request takes one token when it arrives; its
// audio is charged once its length is known, so a client may end one request in debt, and its
// next requests are refused until the debt is repaid. Refusals are sra::Error(rate_limited) with
// retry_after() set (HTTP 429 + Retry-After).
//
// A client is whatever key the caller gives (the API key once keys exist, else the peer's
// address). At most `max_clients` buckets are kept; full ones are forgotten first. Safe for
// concurrent use from any thread; never blocks on I/O.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/config.h"

namespace sra {

struct RateLimits {
  double requests_per_minute = 0;       // transcription requests per client; 0: no limit
  double audio_seconds_per_minute = 0;  // seconds of audio per client; 0: no limit
  std::size_t max_clients = 100000;     // buckets kept at most
};

RateLimits rate_limits_from(const Config& config);

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimits limits) : limits_(limits) {}

  bool enabled() const {
    return limits_.requests_per_minute > 0 || limits_.audio_seconds_per_minute > 0;
  }
  // Takes one request from `client`'s allowance, or throws rate_limited.
  void admit(const std::string& client, Clock::time_point now = Clock::now());
  // Charges `seconds` of audio to `client` (never throws).
  void charge_audio(const std::string& client, double seconds,
                    Clock::time_point now = Clock::now());
  std::size_t clients() const;

 private:
  struct Bucket {
    double requests = 0;  // tokens left
    double audio = 0;     // seconds left (negative: debt)
    Clock::time_point updated;
  };
  Bucket& bucket_locked(const std::string& client, Clock::time_point now);
  void forget_full_locked(Clock::time_point now);

  RateLimits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace sra
