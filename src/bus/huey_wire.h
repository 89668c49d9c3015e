// Huey 2.5's wire format on Redis, as RedisHuey(name=..., host=...) writes and reads it, so that
// the Python speech-recognition-api project's Huey bus and ours share one queue both ways:
//   huey.redis.<name>     list of pickled huey.registry.Message tuples (LPUSH, consumers RPOP)
//   huey.schedule.<name>  sorted set of pickled messages whose eta is in the future
//   huey.results.<name>   hash: task id -> pickled result, or huey.utils.Error(metadata);
//                         "r:<task id>" -> pickled (revoke_until, revoke_once): revoked
// <name> is cleaned as Huey cleans it (only a-z and 0-9 kept). Pure functions; thread-safe.
// Reading throws pickle::PickleError for bytes that are not such a message or result.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/pickle.h"

namespace sra::bus::huey {

// The largest task message a worker reads (a task carries a file id and a few options); the API
// refuses to queue a larger one, so that no accepted task is ever dropped by its worker.
inline constexpr std::size_t kMaxMessageBytes = 1u << 20;

// The task the Python project registers: its huey_task(file_id).
inline constexpr const char* kSeedTaskName =
    "speech_recognition_api.extra.huey_bus.huey_bus.huey_task";

struct Keys {
  std::string queue;     // huey.redis.<name>
  std::string schedule;  // huey.schedule.<name>
  std::string results;   // huey.results.<name>
};
Keys keys_for(const std::string& name);

// A task message: the fields of huey.registry.Message this service uses.
struct Message {
  std::string id;                             // the task id (a UUID)
  std::string name;                           // the task's registered name
  std::optional<double> eta;                  // run not before (Unix seconds), if set
  long long retries = 0;                      // Huey's retries left
  long long retry_delay = 0;                  // Huey's seconds between retries
  std::vector<std::string> args;              // positional arguments (str only)
  std::map<std::string, std::string> kwargs;  // keyword arguments (str values only)
  std::optional<double> expires_at;           // expires_resolved (Unix seconds), if set
  bool has_callbacks = false;                 // on_complete or on_error set (not run here)
};
Message read_message(std::string_view bytes);
std::string write_message(const Message& message);

// A stored result: a value (the dict the task returned) or an error.
struct StoredResult {
  bool error = false;
  std::string transcription;  // value: its "transcription"
  std::string details_json;   // value: our full result as JSON ("sra_result"), when we wrote it
  std::string message;        // error: metadata["error"]
  bool cancelled = false;     // error: cancelled through this service
};
StoredResult read_result(std::string_view bytes);
// {"transcription": text, "sra_result": details_json}
std::string write_success(const std::string& transcription, const std::string& details_json);
// huey.utils.Error({"error": ..., "retries": 0, "traceback": ..., "task_id": ..., "cancelled":
// ...})
std::string write_error(const std::string& task_id, const std::string& message, bool cancelled);

// The revoke key of a task, and the value that revokes it for good: (None, False).
std::string revoke_key(const std::string& task_id);
std::string write_revoke();
// True when the stored revoke value still revokes at `now` (Unix seconds).
bool revokes(std::string_view bytes, double now);

// Huey's sorted-set score for a time: time.mktime() of the naive UTC datetime, i.e. the UTC
// wall-clock read as local time (equal to Unix time where the zone is UTC).
double schedule_score(double unix_seconds);

}  // namespace sra::bus::huey
