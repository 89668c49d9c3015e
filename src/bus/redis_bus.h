// The `redis` message bus: this service's own reliable queue on Redis alone (no Python peer reads
// it; `huey` is the bus the Python project's Huey workers share). A task id is moved from the
// queue to a lease set atomically; workers extend the leases of the tasks they run, and any worker
// puts tasks whose lease ran out back on the queue (a worker killed mid-task); results are kept
// with an expiry, progress and cancellation as the other buses.
//
// Reads REDIS_BUS_URL (redis:// or rediss://, default redis://127.0.0.1:6379/0), REDIS_BUS_NAME
// (default speech_recognition_api, the key prefix), REDIS_BUS_VISIBILITY_TIMEOUT (default 60 s),
// REDIS_BUS_RESULT_EXPIRES (default 86400 s), REDIS_BUS_MAX_RETRIES (default 3),
// REDIS_BUS_MAX_DELIVERIES (default 5), REDIS_BUS_RETRY_DELAY_SECONDS (default 1). Same promises
// as the other buses: at least once, input errors FAILED once, infrastructure errors retried with
// backoff. Safe for concurrent use.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

std::unique_ptr<MessageBus> make_redis_bus(const Config& config);

}  // namespace sra
