#include "service/rate_limiter.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "core/errors.h"
#include "service/metrics.h"

namespace sra {

RateLimits rate_limits_from(const Config& config) {
  RateLimits l;
  l.requests_per_minute = config.get_double("RATE_LIMIT_REQUESTS_PER_MINUTE");
  l.audio_seconds_per_minute = config.get_double("RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE");
  l.max_clients = static_cast<std::size_t>(config.get_int("RATE_LIMIT_MAX_CLIENTS"));
  return l;
}

RateLimiter::Bucket& RateLimiter::bucket_locked(const std::string& client, Clock::time_point now) {
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= limits_.max_clients) forget_full_locked(now);
    Bucket fresh{limits_.requests_per_minute, limits_.audio_seconds_per_minute, now};
    return buckets_.emplace(client, fresh).first->second;
  }
  Bucket& b = it->second;
  double minutes = std::chrono::duration<double>(now - b.updated).count() / 60;
  if (minutes > 0) {
    b.requests =
        std::min(limits_.requests_per_minute, b.requests + minutes * limits_.requests_per_minute);
    b.audio = std::min(limits_.audio_seconds_per_minute,
                       b.audio + minutes * limits_.audio_seconds_per_minute);
    b.updated = now;
  }
  return b;
}

void RateLimiter::forget_full_locked(Clock::time_point now) {
  // Buckets refilled to the brim carry no state: forget those; if none is, the oldest.
  auto oldest = buckets_.end();
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    double minutes = std::chrono::duration<double>(now - it->second.updated).count() / 60;
    bool full = minutes >= 1 || (it->second.requests >= limits_.requests_per_minute &&
                                 it->second.audio >= limits_.audio_seconds_per_minute);
    if (full) {
      it = buckets_.erase(it);
      continue;
    }
    if (oldest == buckets_.end() || it->second.updated < oldest->second.updated) oldest = it;
    ++it;
  }
  if (buckets_.size() >= limits_.max_clients && oldest != buckets_.end()) buckets_.erase(oldest);
}

void RateLimiter::admit(const std::string& client, Clock::time_point now) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  Bucket& b = bucket_locked(client, now);
  if (limits_.requests_per_minute > 0 && b.requests < 1) {
    double wait = (1 - b.requests) / limits_.requests_per_minute * 60;
    metrics().refused.with({"rate_limit"}).add();
    throw rate_limited(fmt::format("rate limit reached: at most {:g} transcription requests per "
                                   "minute per client (RATE_LIMIT_REQUESTS_PER_MINUTE)",
                                   limits_.requests_per_minute),
                       wait);
  }
  if (limits_.audio_seconds_per_minute > 0 && b.audio <= 0) {
    double wait = (-b.audio + 1) / limits_.audio_seconds_per_minute * 60;
    metrics().refused.with({"rate_limit"}).add();
    throw rate_limited(fmt::format("rate limit reached: at most {:g} seconds of audio per minute "
                                   "per client (RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE)",
                                   limits_.audio_seconds_per_minute),
                       wait);
  }
  if (limits_.requests_per_minute > 0) b.requests -= 1;
}

void RateLimiter::charge_audio(const std::string& client, double seconds, Clock::time_point now) {
  if (limits_.audio_seconds_per_minute <= 0 || !(seconds > 0)) return;
  std::lock_guard lock(mutex_);
  bucket_locked(client, now).audio -= seconds;
}

std::size_t RateLimiter::clients() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace sra
