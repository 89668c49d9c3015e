// EmbeddedBus: the default message bus. Tasks live in a SQLite database on local disk, and
// workers are threads of the `serve` process (or of `worker` processes on the same machine, which
// share the database file).
//
// A task accepted by create_task() is durable (committed with a full sync) before its id is
// returned, so a crash or restart loses nothing: on start, tasks that were pending are taken up,
// and tasks whose worker died are taken again once their lease runs out (workers renew the
// lease of the tasks in hand every lease/3 seconds). A task whose handler keeps failing for a
// reason other than its input is retried with exponential backoff, then FAILED after
// max_attempts deliveries. Pending tasks run shortest audio first, except that a task waiting
// longer than age_bound_seconds goes before all younger ones (oldest first), so short jobs are
// not stuck behind long ones and no job waits forever. A running task's progress is stored in its
// row; cancel_task() fails a pending task at once and flags a running one, whose worker stops it.
// Safe for concurrent use from any thread and any number of processes.
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

struct EmbeddedBusOptions {
  std::string database_path = "./data/tasks.sqlite3";  // SQLite file holding tasks and results
  double lease_seconds = 30;       // a task whose worker stopped renewing returns after this
  int max_attempts = 3;            // deliveries before a failing task is FAILED for good
  double retry_delay_seconds = 2;  // first retry delay; doubles with each attempt
  double poll_seconds = 1;         // how often idle workers look for tasks of other processes
  double result_ttl_seconds = 7 * 86400;  // finished tasks are forgotten after this
  double age_bound_seconds = 300;  // a task pending this long runs before younger ones; 0: FIFO
  double cancel_poll_seconds = 1;  // how often workers look for cancellations of their tasks
};

EmbeddedBusOptions embedded_bus_options_from(const Config& config);
std::unique_ptr<MessageBus> make_embedded_bus(const EmbeddedBusOptions& options);

}  // namespace sra
