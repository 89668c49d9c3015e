// HueyBus: the `huey` message bus, Huey 2.5's own format on Redis (bus/huey_wire.h), so that the
// Python speech-recognition-api project's HueyMessageBus and `huey_consumer` share the queue with
// this service both ways: its API's tasks run on our workers, ours on its consumers, and each API
// reads the other's results.
//
// Reads the Python project's HUEY_BUS_REDIS_HOST (a host, host:port[/db], or a redis:// or
// rediss:// URL; default localhost) and HUEY_BUS_NAME (default huey_message_bus), and
// HUEY_BUS_TASK_NAME (default the Python project's task), HUEY_BUS_VISIBILITY_TIMEOUT (60 s),
// HUEY_BUS_RESULT_EXPIRES (86400 s, for this service's own task records),
// HUEY_BUS_MAX_RETRIES (3), HUEY_BUS_MAX_DELIVERIES (5), HUEY_BUS_RETRY_DELAY_SECONDS (1).
//
// Delivery: our workers take a message and lease it in keys of their own beside Huey's
// (huey.sra.<name>.*), so a message whose worker died is put back on the queue: at least once
// among our workers. Python consumers take messages with Huey's plain BRPOP: at most once there,
// as in Huey itself. Results are stored once (the first stored wins). Progress and cancellation
// live in our own task records; a cancelled task is also revoked the way Huey revokes, so a
// Python consumer skips it too. Safe for concurrent use.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

std::unique_ptr<MessageBus> make_huey_bus(const Config& config);

}  // namespace sra
