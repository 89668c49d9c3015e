#include "service/backlog_gate.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "core/errors.h"
#include "service/metrics.h"

namespace sra {

namespace {

constexpr double kUnknownRetrySeconds = 30;  // Retry-After before any drain rate is measured
constexpr double kDiskRetrySeconds = 60;     // Retry-After when the disk is nearly full
constexpr double kMaxRetrySeconds = 600;
constexpr double kRateSeconds = 20;  // the drain rate's memory

std::string mib(std::uint64_t bytes) {
  return fmt::format("{:.0f} MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

BacklogLimits backlog_limits_from(const Config& config) {
  BacklogLimits l;
  l.max_pending_tasks = config.get_int("MAX_PENDING_TASKS");
  l.max_pending_audio_seconds = config.get_double("MAX_PENDING_AUDIO_SECONDS");
  l.max_pending_bytes = static_cast<std::uint64_t>(config.get_int("MAX_PENDING_BYTES"));
  l.min_free_disk_bytes = static_cast<std::uint64_t>(config.get_int("MIN_FREE_DISK_BYTES"));
  l.refresh_seconds = config.get_double("BACKLOG_REFRESH_SECONDS");
  return l;
}

BacklogGate::Admission::Admission(Admission&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)), bytes_(other.bytes_), seconds_(other.seconds_) {}

BacklogGate::Admission::~Admission() {
  if (!gate_) return;
  std::lock_guard lock(gate_->mutex_);
  unreserve_locked();
}

void BacklogGate::Admission::unreserve_locked() const {
  gate_->reserved_.tasks -= 1;
  gate_->reserved_.audio_seconds -= seconds_;
  gate_->reserved_.audio_bytes -= bytes_;
}

void BacklogGate::Admission::add_bytes(std::uint64_t n) {
  gate_->check_disk(n);
  std::lock_guard lock(gate_->mutex_);
  Totals extra{0, 0, n};
  if (auto why = gate_->check_locked(extra)) gate_->refuse_locked(*why, extra);
  gate_->reserved_.audio_bytes += n;
  bytes_ += n;
}

void BacklogGate::Admission::set_audio_seconds(double seconds) {
  std::lock_guard lock(gate_->mutex_);
  Totals extra{0, seconds - seconds_, 0};
  if (auto why = gate_->check_locked(extra)) gate_->refuse_locked(*why, extra);
  gate_->reserved_.audio_seconds += seconds - seconds_;
  seconds_ = seconds;
}

void BacklogGate::Admission::commit() {
  if (!gate_) return;
  BacklogGate& g = *gate_;
  std::lock_guard lock(g.mutex_);
  unreserve_locked();
  g.committed_.tasks += 1;
  g.committed_.audio_seconds += seconds_;
  g.committed_.audio_bytes += bytes_;
  // Running means over the first 100 submissions, then a moving average.
  g.submissions_ += 1;
  double weight = 1.0 / static_cast<double>(std::min<std::int64_t>(g.submissions_, 100));
  g.mean_seconds_ += (seconds_ - g.mean_seconds_) * weight;
  g.mean_bytes_ += (static_cast<double>(bytes_) - g.mean_bytes_) * weight;
  gate_ = nullptr;
}

BacklogGate::Admission BacklogGate::admit() {
  refresh_if_stale();
  check_disk(0);
  std::lock_guard lock(mutex_);
  Totals extra{1, 0, 0};
  if (auto why = check_locked(extra)) refuse_locked(*why, extra);
  reserved_.tasks += 1;
  return Admission(this);
}

std::optional<std::string> BacklogGate::over_bound() {
  refresh_if_stale();
  try {
    check_disk(0);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  std::lock_guard lock(mutex_);
  // At the bound, the next submission would be refused.
  return check_locked(Totals{1, 0, 0});
}

BacklogView BacklogGate::view() {
  refresh_if_stale();
  std::lock_guard lock(mutex_);
  return view_locked();
}

std::optional<double> BacklogGate::start_in_seconds(std::int64_t ahead) {
  refresh_if_stale();
  std::lock_guard lock(mutex_);
  if (!drain_rate_ || *drain_rate_ <= 1e-9) return std::nullopt;
  return static_cast<double>(ahead + 1) / *drain_rate_;
}

void BacklogGate::refresh_if_stale() {
  {
    std::lock_guard lock(mutex_);
    auto age = std::chrono::duration<double>(now_() - sampled_at_).count();
    if (refreshing_ || (sampled_ && age < limits_.refresh_seconds)) return;
    refreshing_ = true;
  }
  auto at = now_();
  std::optional<Backlog> fresh;
  std::exception_ptr failure;
  try {
    fresh = parts_.bus().backlog();
  } catch (...) {
    failure = std::current_exception();
  }
  std::lock_guard lock(mutex_);
  refreshing_ = false;
  if (failure) std::rethrow_exception(failure);  // the broker is down: nothing can be admitted
  // Tasks finished since the last sample: what it had plus what was added since, less what is
  // left. Measured only while there was work to drain.
  if (sampled_ && sample_ && fresh && sample_->tasks > 0) {
    double dt = std::chrono::duration<double>(at - sampled_at_).count();
    if (dt > 1e-3) {
      double finished = static_cast<double>(sample_->tasks + committed_.tasks - fresh->tasks);
      double rate = std::max(0.0, finished) / dt;
      // A moving average over about kRateSeconds of samples, whatever their spacing.
      double weight = 1 - std::exp(-dt / kRateSeconds);
      drain_rate_ = drain_rate_ ? *drain_rate_ + (rate - *drain_rate_) * weight : rate;
    }
  }
  sample_ = fresh;
  sampled_ = true;
  sampled_at_ = at;
  committed_ = {};
}

BacklogView BacklogGate::view_locked() const {
  BacklogView v;
  v.drain_rate = drain_rate_;
  if (!sample_) return v;
  v.counted = true;
  const Backlog& s = *sample_;
  auto n = static_cast<double>(s.tasks);
  v.tasks = s.tasks + committed_.tasks + reserved_.tasks;
  v.audio_seconds = s.audio_seconds.value_or(n * mean_seconds_) + committed_.audio_seconds +
                    reserved_.audio_seconds;
  v.audio_bytes = s.audio_bytes.value_or(static_cast<std::uint64_t>(n * mean_bytes_)) +
                  committed_.audio_bytes + reserved_.audio_bytes;
  return v;
}

std::optional<std::string> BacklogGate::check_locked(const Totals& extra) const {
  BacklogView v = view_locked();
  if (!v.counted) return std::nullopt;
  if (limits_.max_pending_tasks > 0 && v.tasks + extra.tasks > limits_.max_pending_tasks) {
    return fmt::format("the async backlog is full: {} tasks unfinished (MAX_PENDING_TASKS={})",
                       v.tasks, limits_.max_pending_tasks);
  }
  // One task alone is never refused for its size (MAX_UPLOAD_BYTES and MAX_AUDIO_SECONDS bound
  // it); with others waiting, the total is bounded.
  if (v.tasks + extra.tasks <= 1) return std::nullopt;
  if (limits_.max_pending_audio_seconds > 0 &&
      v.audio_seconds + extra.audio_seconds > limits_.max_pending_audio_seconds) {
    return fmt::format(
        "the async backlog is full: {:.0f} s of audio unfinished (MAX_PENDING_AUDIO_SECONDS={:g})",
        v.audio_seconds, limits_.max_pending_audio_seconds);
  }
  if (limits_.max_pending_bytes > 0 &&
      v.audio_bytes + extra.audio_bytes > limits_.max_pending_bytes) {
    return fmt::format("the async backlog is full: {} of uploads unfinished (MAX_PENDING_BYTES={})",
                       mib(v.audio_bytes), limits_.max_pending_bytes);
  }
  return std::nullopt;
}

double BacklogGate::retry_after_locked(const Totals& extra) const {
  if (!drain_rate_ || *drain_rate_ <= 1e-9) return kUnknownRetrySeconds;
  BacklogView v = view_locked();
  // The tasks that must finish before this submission fits, in each dimension.
  double tasks = static_cast<double>(std::max<std::int64_t>(v.tasks, 1));
  double over = 1;
  if (limits_.max_pending_tasks > 0) {
    over = std::max(over, static_cast<double>(v.tasks + extra.tasks - limits_.max_pending_tasks));
  }
  if (limits_.max_pending_audio_seconds > 0 && v.audio_seconds > 0) {
    double excess = v.audio_seconds + extra.audio_seconds - limits_.max_pending_audio_seconds;
    over = std::max(over, excess / (v.audio_seconds / tasks));
  }
  if (limits_.max_pending_bytes > 0 && v.audio_bytes > 0) {
    double excess = static_cast<double>(v.audio_bytes + extra.audio_bytes) -
                    static_cast<double>(limits_.max_pending_bytes);
    over = std::max(over, excess / (static_cast<double>(v.audio_bytes) / tasks));
  }
  return std::clamp(over / *drain_rate_, 1.0, kMaxRetrySeconds);
}

void BacklogGate::refuse_locked(const std::string& why, const Totals& extra) const {
  metrics().refused.with({"backlog"}).add();
  throw overloaded(why + "; retry later", retry_after_locked(extra));
}

void BacklogGate::check_disk(std::uint64_t more) {
  if (limits_.min_free_disk_bytes == 0) return;
  std::optional<std::uint64_t> free = parts_.storage().free_bytes();
  if (free && *free < limits_.min_free_disk_bytes + more) {
    metrics().refused.with({"disk"}).add();
    throw overloaded("the disk where uploads are stored is nearly full (" + mib(*free) +
                         " free, MIN_FREE_DISK_BYTES=" +
                         std::to_string(limits_.min_free_disk_bytes) + "); retry later",
                     kDiskRetrySeconds);
  }
}

}  // namespace sra
