// BacklogGate: admission control for async work. The unfinished tasks, their audio seconds and
// their stored bytes are bounded (MAX_PENDING_TASKS, MAX_PENDING_AUDIO_SECONDS,
// MAX_PENDING_BYTES), and so is the free disk where uploads go (MIN_FREE_DISK_BYTES): past any of
// them a submission is refused with sra::Error(unavailable) and a Retry-After computed from the
// measured drain rate, before its body is stored (the bytes and the audio bound are checked again
// as the body arrives and once its duration is known).
//
// The backlog comes from the broker (MessageBus::backlog(): every producer's tasks), sampled at
// most every `refresh_seconds`, plus what this process admitted since the sample and what it is
// admitting now, so that concurrent submissions cannot overshoot a bound. A broker that counts
// tasks but not their audio or bytes (Celery, Huey-role) gets those estimated from the mean of
// this process's submissions; a bus that cannot count at all (a plugin without backlog()) is
// bounded by the disk floor only. The drain rate (tasks finished per second, from successive
// samples) also gives a pending task's estimated start.
//
// Every method may block on the broker: call it from a blocking-pool thread. Safe for concurrent
// use from any thread. It references the Parts it is given, which must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/message_bus.h"
#include "core/parts.h"

namespace sra {

struct BacklogLimits {
  std::int64_t max_pending_tasks = 1000;             // unfinished tasks; 0: no bound
  double max_pending_audio_seconds = 24 * 3600.0;    // their audio, in seconds; 0: no bound
  std::uint64_t max_pending_bytes = 4ull << 30;      // their stored uploads, in bytes; 0: no bound
  std::uint64_t min_free_disk_bytes = 256ull << 20;  // free disk kept where uploads go; 0: none
  double refresh_seconds = 1;                        // oldest broker count a decision may use
};

BacklogLimits backlog_limits_from(const Config& config);

// What the gate sees now: the broker's count plus this process's admissions since.
struct BacklogView {
  std::int64_t tasks = 0;
  double audio_seconds = 0;
  std::uint64_t audio_bytes = 0;
  bool counted = false;              // false when the bus cannot count its tasks
  std::optional<double> drain_rate;  // tasks finished per second, once measured
};

class BacklogGate {
 public:
  // One submission being admitted: holds its share of the bounds until committed (its task
  // exists) or destroyed (it was refused or abandoned).
  class Admission {
   public:
    Admission(Admission&& other) noexcept;
    Admission& operator=(Admission&&) = delete;
    ~Admission();
    // `n` more bytes of the upload are about to be stored: refused past MAX_PENDING_BYTES or
    // below the disk floor.
    void add_bytes(std::uint64_t n);
    // The upload's audio is about `seconds` long: refused past MAX_PENDING_AUDIO_SECONDS.
    void set_audio_seconds(double seconds);
    // The task was created: its share now counts as the broker's until the next sample.
    void commit();
    std::uint64_t bytes() const { return bytes_; }
    double audio_seconds() const { return seconds_; }

   private:
    friend class BacklogGate;
    explicit Admission(BacklogGate* gate) : gate_(gate) {}
    // Takes this admission's share out of the gate's reservations (the gate's lock held).
    void unreserve_locked() const;
    BacklogGate* gate_;
    std::uint64_t bytes_ = 0;
    double seconds_ = 0;
  };

  using Clock = std::chrono::steady_clock;
  // What the gate reads the time from: Clock::now, or a test's clock.
  using Now = std::function<Clock::time_point()>;

  BacklogGate(Parts& parts, BacklogLimits limits, Now now = Clock::now)
      : parts_(parts), limits_(limits), now_(std::move(now)) {}

  // A new submission, or sra::Error(unavailable) with retry_after() when a bound is reached.
  Admission admit();
  // Why the backlog cannot take more work now (for /ready), or nullopt.
  std::optional<std::string> over_bound();
  // The backlog as last sampled (refreshed if older than refresh_seconds).
  BacklogView view();
  // Seconds until a pending task with `ahead` tasks before it starts, once a rate is measured.
  std::optional<double> start_in_seconds(std::int64_t ahead);
  const BacklogLimits& limits() const { return limits_; }

 private:
  struct Totals {
    std::int64_t tasks = 0;
    double audio_seconds = 0;
    std::uint64_t audio_bytes = 0;
  };

  void refresh_if_stale();
  BacklogView view_locked() const;
  // Which bound `extra` more would pass, as a message; nullopt if none.
  std::optional<std::string> check_locked(const Totals& extra) const;
  double retry_after_locked(const Totals& extra) const;
  [[noreturn]] void refuse_locked(const std::string& why, const Totals& extra) const;
  void check_disk(std::uint64_t more);

  Parts& parts_;
  BacklogLimits limits_;
  Now now_;
  std::mutex mutex_;
  bool refreshing_ = false;
  std::optional<Backlog> sample_;  // the broker's last count (nullopt: it cannot count)
  bool sampled_ = false;
  Clock::time_point sampled_at_{};
  Totals committed_;  // admitted by this process since the sample
  Totals reserved_;   // being admitted now
  std::optional<double> drain_rate_;
  double mean_seconds_ = 0;  // per task, of this process's submissions (for brokers that
  double mean_bytes_ = 0;    // count tasks only)
  std::int64_t submissions_ = 0;
};

}  // namespace sra
