// Cancellation for the buses that keep a Redis hash per task (huey, redis): the watch that, every
// second, cancels the tokens of the running tasks whose hash has the field `cancel` set to "1"
// (blocks until `stop`; run it on a thread of its own, with a connection of its own), and the
// reading of their cancel scripts' replies.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "bus/redis_client.h"
#include "bus/running_tasks.h"
#include "core/message_bus.h"

namespace sra::bus {

// The worker role of these buses: `concurrency` threads (at least one) run `work`, one more runs
// watch_redis_cancel_flags() for the tasks in `running`, and the calling thread runs
// `maintenance`; returns once all of them have returned (each on `stop`).
void run_redis_worker(int concurrency, const std::function<void()>& work, RunningTasks& running,
                      const RedisUrl& url,
                      const std::function<std::string(const std::string&)>& hash_key,
                      std::stop_token stop, const std::function<void()>& maintenance);

void watch_redis_cancel_flags(RunningTasks& running, const RedisUrl& url,
                              const std::function<std::string(const std::string&)>& hash_key,
                              std::stop_token stop);

// A cancel script's reply {outcome, file id} ("cancelled", "cancelling", "finished" or "unknown")
// as MessageBus::cancel_task() answers; `file_id` is set for "cancelled". Throws
// sra::Error(internal) for a reply of another shape.
std::optional<CancelOutcome> cancel_outcome_from_reply(const RedisReply& reply,
                                                       std::string* file_id);

}  // namespace sra::bus
