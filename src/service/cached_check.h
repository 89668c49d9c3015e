// CachedCheck: the answer of a costly check (readiness: calls to S3, GCS or a broker), reused for
// `max_age`, so that a storm of probes never becomes a storm of calls. A check in progress is
// never started twice: callers meanwhile get the last answer, or wait for the first one. The
// answer is a problem in words, "" when all is well. Safe for concurrent use from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

namespace sra {

class CachedCheck {
 public:
  using Clock = std::chrono::steady_clock;
  explicit CachedCheck(Clock::duration max_age = std::chrono::seconds(1)) : max_age_(max_age) {}

  // The cached answer, or `check`'s when it is older than max_age.
  template <typename Check>
  std::string get(Check check) {
    std::unique_lock lock(mutex_);
    if (answer_ && (Clock::now() - at_ < max_age_ || checking_)) return *answer_;
    while (checking_) changed_.wait(lock);
    if (answer_ && Clock::now() - at_ < max_age_) return *answer_;
    checking_ = true;
    lock.unlock();
    std::string problem;
    try {
      problem = check();
    } catch (...) {
      lock.lock();
      checking_ = false;
      changed_.notify_all();
      throw;
    }
    lock.lock();
    answer_ = problem;
    at_ = Clock::now();
    checking_ = false;
    changed_.notify_all();
    return problem;
  }

 private:
  Clock::duration max_age_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::string> answer_;
  Clock::time_point at_;
  bool checking_ = false;
};

}  // namespace sra
