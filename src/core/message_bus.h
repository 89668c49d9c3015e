// MessageBus: the extension point that carries async tasks from the API to workers and their
// results back (the seed's MessageBus interface: create_task / get_task_result, plus the worker
// side that the seed left to Celery and Huey).
//
// A MessageBus is safe for concurrent use from several threads. Delivery is at least once: a
// task is acknowledged only after its result is stored, so a worker that dies mid-task leaves the
// task to another. The handler decides the outcome: a returned Transcription is SUCCESS; an
// sra::Error whose is_permanent() is true makes the task FAILED at once; any other exception is
// retried, up to a bus-specific limit, then FAILED.
//
// While a task runs, its handler reports progress through TaskControl (stored by the bus, at most
// about once a second, and read back by get_task_result) and stops when the token TaskControl
// hands it is cancelled: cancel_task() (DELETE /async/v1/transcribe/{id}) marks the task, and the
// worker that runs it learns of it within about a second.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/transcription.h"

namespace sra {

enum class TaskStatus { pending, success, failed };
const char* to_string(TaskStatus status);  // "PENDING", "SUCCESS", "FAILED"

struct TaskRequest {
  std::string file_id;            // where the audio waits in the FileStorage
  std::string options_json;       // per-request options as a JSON object ("{}" when none)
  double audio_seconds = 0;       // the audio's estimated duration (queue accounting; 0: unknown)
  std::uint64_t audio_bytes = 0;  // the stored file's size (queue accounting; 0: unknown)
  std::string request_id = {};    // X-Request-Id of the submission, for the worker's log lines
};

// The work waiting for (or held by) workers, as the broker counts it.
struct Backlog {
  std::int64_t tasks = 0;                    // tasks not finished yet
  std::optional<double> audio_seconds;       // their audio, when the broker knows it
  std::optional<std::uint64_t> audio_bytes;  // their stored files' size, when the broker knows it
};

// How far a running task is.
struct TaskProgress {
  double fraction = 0;            // audio seconds done / the audio's duration, 0..1
  std::vector<Segment> segments;  // the segments final so far, in order
};

// {"progress": fraction, "segments": [...]}, the shape buses store and the API returns.
boost::json::value to_json(const TaskProgress& p);
// Throws sra::Error(internal) if `v` is not of the shape to_json writes.
TaskProgress task_progress_from_json(const boost::json::value& v);

struct TaskResult {
  TaskStatus status = TaskStatus::pending;
  std::optional<Transcription> transcription;  // set when status is success
  std::optional<std::string> error;            // set when status is failed
  bool cancelled = false;                      // failed because cancel_task() was called
  std::optional<TaskProgress> progress;        // pending: set once a worker runs it
};

// What cancel_task() did.
enum class CancelOutcome {
  cancelled,   // the task had not started: it is FAILED (cancelled) now and never runs
  cancelling,  // a worker runs it: it stops within about a second, then is FAILED (cancelled)
  finished,    // it had finished already (SUCCESS or FAILED): nothing changed
};

// Given by a bus to the handler of the task it runs, on the handler's thread.
class TaskControl {
 public:
  virtual ~TaskControl() = default;
  // Cancelled when the task is cancelled (cancel_task); the handler's job must check it.
  virtual CancelToken& cancel_token() = 0;
  // `segment` is final; the audio is `audio_seconds` long. The bus keeps the progress (stored at
  // most about once a second); never throws.
  virtual void segment_done(const Segment& segment, double audio_seconds) = 0;
};

using TaskHandler = std::function<Transcription(const TaskRequest&, TaskControl&)>;

struct WorkerOptions {
  int concurrency = 1;  // tasks processed at the same time by this process
  // Called with a task's request once its final outcome (SUCCESS or FAILED) is stored for good,
  // never before; e.g. to delete its audio. Must not throw. May be empty.
  std::function<void(const TaskRequest&)> on_finished;
  // Called with a task's final outcome (SUCCESS, FAILED or cancelled; never a retry) before the
  // bus stores it, on the thread that ran it, while the task is still held: what must happen at
  // least once per outcome (a webhook) happens here, for a worker that dies meanwhile leaves the
  // task to another, which runs it again. Must not throw. May be empty.
  std::function<void(const std::string& task_id, const TaskRequest&, const TaskResult&)>
      before_final;
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
  // Cancels a task that has not finished (see CancelOutcome); nullopt when no task has this id.
  // `file_id` is set to the task's audio when the outcome is `cancelled` and the bus knows it
  // (the caller may delete the audio). Throws sra::Error(unavailable), or
  // sra::Error(unsupported) from a bus that cannot cancel.
  virtual std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                                   std::string* file_id);
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
