// One task runner for every bus: how a delivery of a task is run and what its outcome is, with one
// retry policy, so that the embedded, Celery and Huey-role buses cannot drift apart.
//
// run_delivery() calls the handler and turns what happens into an outcome: SUCCESS with the
// transcription; FAILED for good when the input is at fault (a permanent sra::Error: not audio,
// a bad option, past its deadline) or when the retries are used up; CANCELLED when the task's
// token was cancelled (cancel_task: final, never retried); otherwise RETRY after the
// policy's backoff (exponential, capped). The bus stores the outcome in its own format, then calls
// the finished hook (TaskHooks::on_finished) for an outcome that is final, never before it is
// stored: so deleting the audio after a task can never lose a task whose result did not make it.
// Pure function of its inputs plus the handler; safe from any thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "core/errors.h"
#include "core/message_bus.h"

namespace sra::bus {

struct RetryPolicy {
  int max_retries = 3;       // runs after the first one for failures of the infrastructure
  double first_delay = 1.0;  // seconds before the first retry; doubles with each
  double max_delay = 30.0;   // longest wait between retries

  double delay(int retries_so_far) const {
    double d = first_delay * std::pow(2.0, std::min(retries_so_far, 30));
    return std::min(d, max_delay);
  }
};

struct TaskOutcome {
  enum class Kind { success, failed, cancelled, retry };
  Kind kind = Kind::failed;
  std::optional<Transcription> transcription;  // success
  std::string error;         // failed, cancelled, retry: why, for the task and the log
  bool input_error = false;  // failed: the input is at fault
  double retry_delay = 0;    // retry: seconds before the next run
};

inline constexpr const char* kCancelledMessage = "the task was cancelled";

// What a handler's failure `e` makes of the delivery before retries are counted: cancelled (its
// token was cancelled), failed (a permanent sra::Error: the input is at fault) or retry.
inline TaskOutcome::Kind failure_kind(const std::exception& e, TaskControl& control) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    if (error->kind() == ErrorKind::cancelled && control.cancel_token().cancelled()) {
      return TaskOutcome::Kind::cancelled;
    }
    if (error->is_permanent()) return TaskOutcome::Kind::failed;
  }
  return TaskOutcome::Kind::retry;
}

// Runs one delivery of `request` that has been retried `retries_so_far` times before.
inline TaskOutcome run_delivery(const TaskHandler& handler, const TaskRequest& request,
                                TaskControl& control, int retries_so_far,
                                const RetryPolicy& policy) {
  TaskOutcome out;
  std::string why;
  try {
    control.cancel_token().check();  // cancelled before it started
    out.transcription = handler(request, control);
    out.kind = TaskOutcome::Kind::success;
    return out;
  } catch (const std::exception& e) {
    switch (failure_kind(e, control)) {
      case TaskOutcome::Kind::cancelled:
        out.kind = TaskOutcome::Kind::cancelled;
        out.error = kCancelledMessage;
        return out;
      case TaskOutcome::Kind::failed: {
        const auto& error = static_cast<const Error&>(e);  // failure_kind said so
        out.kind = TaskOutcome::Kind::failed;
        out.input_error = true;
        out.error = error.field() ? *error.field() + ": " + e.what() : std::string(e.what());
        return out;
      }
      default:
        why = e.what();
    }
  }
  if (retries_so_far >= policy.max_retries) {
    out.kind = TaskOutcome::Kind::failed;
    out.error = why + " (after " + std::to_string(retries_so_far + 1) + " attempts)";
    return out;
  }
  out.kind = TaskOutcome::Kind::retry;
  out.error = why;
  out.retry_delay = policy.delay(retries_so_far);
  return out;
}

// Hands a final outcome (not a retry) to WorkerOptions::before_final, before the bus stores it.
// Never throws.
inline void announce_final(const WorkerOptions& options, const std::string& task_id,
                           const TaskRequest& request, const TaskOutcome& outcome) {
  if (!options.before_final || outcome.kind == TaskOutcome::Kind::retry) return;
  TaskResult result;
  if (outcome.kind == TaskOutcome::Kind::success) {
    result.status = TaskStatus::success;
    result.transcription = outcome.transcription;
  } else {
    result.status = TaskStatus::failed;
    result.error = outcome.error;
    result.cancelled = outcome.kind == TaskOutcome::Kind::cancelled;
  }
  try {
    options.before_final(task_id, request, result);
  } catch (...) {
  }
}

// The same for a task given up without a run (delivered too often without a result).
inline void announce_given_up(const WorkerOptions& options, const std::string& task_id,
                              const TaskRequest& request, const std::string& why) {
  TaskOutcome outcome;
  outcome.kind = TaskOutcome::Kind::failed;
  outcome.error = why;
  announce_final(options, task_id, request, outcome);
}

}  // namespace sra::bus
