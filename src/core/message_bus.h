// MessageBus: the extension point that carries async tasks from the API to workers and their
// results back (the seed's MessageBus interface: create_task / get_task_result, plus the worker
// side that the seed left to Celery and Huey).
//
// A MessageBus is safe for concurrent use from several threads. Delivery is at least once: a
// task is acknowledged only after its result is stored, so a worker that dies mid-task leaves the
// task to another. The handler decides the outcome: a returned Transcription is SUCCESS; an
// sra::Error whose is_permanent() is true makes the task FAILED at once; any other exception is
// retried, up to a bus-specific limit, then FAILED.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "core/transcription.h"

namespace sra {

enum class TaskStatus { pending, success, failed };
const char* to_string(TaskStatus status);  // "PENDING", "SUCCESS", "FAILED"

struct TaskRequest {
  std::string file_id;            // where the audio waits in the FileStorage
  std::string options_json;       // per-request options as a JSON object ("{}" when none)
  double audio_seconds = 0;       // the audio's estimated duration (queue accounting; 0: unknown)
  std::uint64_t audio_bytes = 0;  // the stored file's size (queue accounting; 0: unknown)
  std::string request_id;         // X-Request-Id of the submission, for the worker's log lines
};

// The work waiting for (or held by) workers, as the broker counts it.
struct Backlog {
  std::int64_t tasks = 0;                    // tasks not finished yet
  std::optional<double> audio_seconds;       // their audio, when the broker knows it
  std::optional<std::uint64_t> audio_bytes;  // their stored files' size, when the broker knows it
};

struct TaskResult {
  TaskStatus status = TaskStatus::pending;
  std::optional<Transcription> transcription;  // set when status is success
  std::optional<std::string> error;            // set when status is failed
};

using TaskHandler = std::function<Transcription(const TaskRequest&)>;

struct WorkerOptions {
  int concurrency = 1;  // tasks processed at the same time by this process
  // Called with a task's request once its final outcome (SUCCESS or FAILED) is stored for good,
  // never before; e.g. to delete its audio. Must not throw. May be empty.
  std::function<void(const TaskRequest&)> on_finished;
};

class MessageBus {
 public:
  virtual ~MessageBus() = default;
  // Enqueues the task durably and returns its id. Throws sra::Error(unavailable) if the broker
  // cannot take it; no task exists then.
  virtual std::string create_task(const TaskRequest& request) = 0;
  // nullopt when no task has this id (including ids this bus could never have issued).
  virtual std::optional<TaskResult> get_task_result(const std::string& task_id) = 0;
  // Worker role: takes tasks and runs `handler` on them until `stop` is requested; then finishes
  // or releases the tasks in hand and returns.
  virtual void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                          std::stop_token stop) = 0;
  // Throws sra::Error(unavailable) saying what is wrong if the broker cannot serve now.
  virtual void check_ready() {}
  // The unfinished work in the broker (every producer's, not only this process's); nullopt if
  // this broker cannot count it. Throws sra::Error(unavailable).
  virtual std::optional<Backlog> backlog() { return std::nullopt; }
  // How many tasks run before this pending one under the bus's order; nullopt when the task is
  // not pending or the bus cannot tell.
  virtual std::optional<std::int64_t> queue_position(const std::string& /*task_id*/) {
    return std::nullopt;
  }
};

}  // namespace sra
