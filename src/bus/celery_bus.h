// CeleryBus: the `celery` message bus. Tasks travel in Celery's own protocol (v2, as kombu writes
// it) over Redis (`redis://`) or RabbitMQ (`amqp://`), and results are stored as Celery's Redis
// result backend stores them (SETEX + PUBLISH celery-task-meta-<id>), so Python programs using
// Celery (the seed's own code, Flower, AsyncResult) work with our API and workers unchanged.
//
// Reads the seed's CELERY_BUS_BROKER, CELERY_BUS_BACKEND (redis://, default: the broker when it
// is Redis) and CELERY_BUS_NAME, and CELERY_BUS_QUEUE (default "celery"), CELERY_BUS_TASK_NAME
// (default the seed's task), CELERY_BUS_RESULT_EXPIRES (seconds, default 86400),
// CELERY_BUS_VISIBILITY_TIMEOUT (Redis: seconds before an unacknowledged task is delivered again,
// default 3600; workers keep extending it for the tasks they run), CELERY_BUS_MAX_RETRIES
// (infrastructure failures, default 3) and CELERY_BUS_MAX_DELIVERIES (deliveries that never
// finished, e.g. a task that kills its worker, default 5).
//
// At least once: a task is acknowledged only after its result is stored; a task whose result is
// already stored is acknowledged without running again, so each result is stored once. Celery's
// states map to the seed's: SUCCESS, FAILURE -> FAILED with the error, anything else PENDING.
// Safe for concurrent use; run_worker reconnects with backoff when the broker goes away.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

std::unique_ptr<MessageBus> make_celery_bus(const Config& config);

}  // namespace sra
