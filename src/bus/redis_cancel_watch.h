// The cancellation watch of the buses that keep a Redis hash per task (huey, redis): every second,
// the running tasks whose hash has the field `cancel` set to "1" get their tokens cancelled.
// Blocks until `stop`; run it on a thread of its own, with a connection of its own.
#pragma once

#include <functional>
#include <stop_token>
#include <string>

#include "bus/redis_client.h"
#include "bus/running_tasks.h"

namespace sra::bus {

void watch_redis_cancel_flags(RunningTasks& running, const RedisUrl& url,
                              const std::function<std::string(const std::string&)>& hash_key,
                              std::stop_token stop);

}  // namespace sra::bus
