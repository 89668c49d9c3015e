// HueyBus: the `huey` (alias `redis`) message bus, the seed's Huey role: a lightweight reliable
// queue on Redis alone. A task id is moved from the queue to a lease set atomically; workers
// extend the leases of the tasks they run, and any worker puts tasks whose lease ran out back on
// the queue (a worker killed mid-task); results are kept with an expiry.
//
// Reads the seed's HUEY_BUS_REDIS_HOST (a host, host:port or redis:// URL; default 127.0.0.1) and
// HUEY_BUS_NAME (default speech_recognition_api, the key prefix), and
// HUEY_BUS_VISIBILITY_TIMEOUT (default 60 s), HUEY_BUS_RESULT_EXPIRES (default 86400 s),
// HUEY_BUS_MAX_RETRIES (default 3), HUEY_BUS_MAX_DELIVERIES (default 5). Same promises as the
// other buses: at least once, input errors FAILED once, infrastructure errors retried with
// backoff. Safe for concurrent use.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

std::unique_ptr<MessageBus> make_huey_bus(const Config& config);

}  // namespace sra
