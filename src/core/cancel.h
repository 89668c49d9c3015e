// CancelToken: how a running job learns that nobody wants its result any more, or that its time
// is up.
//
// The party that starts a job owns the token and may call cancel() from any thread (a closed
// connection, a shutdown); the job calls check() at its natural steps (per 30 s window, per
// decoded token) and stops by the exception it throws. A deadline, when set, makes check() throw
// sra::Error(deadline_exceeded) once it has passed. Thread-safe; the token must outlive the job.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "core/errors.h"

namespace sra {

class CancelToken {
 public:
  using Clock = std::chrono::steady_clock;

  CancelToken() = default;
  explicit CancelToken(Clock::time_point deadline) { set_deadline(deadline); }
  // A token for part of a job: also cancelled, and past its deadline, when `parent` (which must
  // outlive it; may be null) is; cancelling this one leaves the parent alone.
  explicit CancelToken(const CancelToken* parent) : parent_(parent) {}

  // Asks the job to stop; `reason` is kept for the error the job throws (first reason wins).
  void cancel(const char* reason = "the request was cancelled") noexcept {
    const char* expected = nullptr;
    reason_.compare_exchange_strong(expected, reason);
  }
  bool cancelled() const noexcept {
    return reason_.load() != nullptr || (parent_ && parent_->cancelled());
  }

  void set_deadline(Clock::time_point deadline) noexcept {
    deadline_.store(deadline.time_since_epoch().count());
  }
  Clock::time_point deadline() const noexcept {
    return Clock::time_point(Clock::duration(deadline_.load()));
  }

  // Throws sra::Error(cancelled) once cancel() was called, sra::Error(deadline_exceeded) once the
  // deadline has passed; otherwise returns at once.
  void check() const {
    if (parent_) parent_->check();
    if (const char* reason = reason_.load()) throw sra::cancelled(reason);
    if (Clock::now() > deadline()) {
      throw deadline_exceeded("the job ran past its deadline (MAX_JOB_SECONDS)");
    }
  }

 private:
  const CancelToken* parent_ = nullptr;
  std::atomic<const char*> reason_{nullptr};
  std::atomic<Clock::rep> deadline_{Clock::time_point::max().time_since_epoch().count()};
};

}  // namespace sra
