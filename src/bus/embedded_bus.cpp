#include "bus/embedded_bus.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "bus/running_tasks.h"
#include "bus/sqlite_db.h"
#include "bus/task_runner.h"
#include "bus/timing.h"
#include "core/errors.h"
#include "core/log_context.h"
#include "core/uuid.h"

namespace sra {
namespace {

using bus::now_seconds;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  file_id TEXT NOT NULL,
  options TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED')),
  result TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  lease_until REAL,
  not_before REAL NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  audio_seconds REAL NOT NULL DEFAULT 0,
  audio_bytes INTEGER NOT NULL DEFAULT 0,
  request_id TEXT NOT NULL DEFAULT '',
  progress TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at);
)sql";

struct ClaimedTask {
  std::string id;
  TaskRequest request;
  std::int64_t attempts = 0;
  bool cancel_requested = false;  // cancelled while an earlier delivery ran
};

class EmbeddedBus final : public MessageBus {
 public:
  explicit EmbeddedBus(EmbeddedBusOptions options) : options_(std::move(options)) {
    auto parent = std::filesystem::path(options_.database_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      throw config_error("EMBEDDED_BUS_DATABASE_PATH=" + options_.database_path +
                         ": cannot create its folder: " + ec.message());
    }
    api_db_ = std::make_unique<SqliteDb>(options_.database_path);
    api_db_->exec(kSchema);
    add_missing_columns(*api_db_);
  }

  std::string create_task(const TaskRequest& request) override {
    std::string id = make_uuid();
    double now = now_seconds();
    {
      std::lock_guard lock(api_mutex_);
      api_db_
          ->prepare(
              "INSERT INTO tasks (id, file_id, options, status, created_at, updated_at, "
              "audio_seconds, audio_bytes, request_id) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?)")
          .bind(1, id)
          .bind(2, request.file_id)
          .bind(3, request.options_json.empty() ? std::string("{}") : request.options_json)
          .bind(4, now)
          .bind(5, now)
          .bind(6, request.audio_seconds)
          .bind(7, static_cast<std::int64_t>(request.audio_bytes))
          .bind(8, request.request_id)
          .step();
    }
    wakeup_.notify_one();
    return id;
  }

  std::optional<TaskResult> get_task_result(const std::string& task_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::lock_guard lock(api_mutex_);
    auto row = api_db_->prepare(
        "SELECT status, result, error, progress, cancelled FROM tasks WHERE id = ?");
    row.bind(1, task_id);
    if (!row.step()) return std::nullopt;
    TaskResult result;
    std::string status = row.column_text(0);
    if (status == "RUNNING") {
      auto progress = row.column_optional_text(3);
      result.progress =
          progress ? task_progress_from_json(boost::json::parse(*progress)) : TaskProgress{};
    }
    if (status == "SUCCESS") {
      result.status = TaskStatus::success;
      if (auto text = row.column_optional_text(1)) {
        result.transcription = transcription_from_json(boost::json::parse(*text));
      }
    } else if (status == "FAILED") {
      result.status = TaskStatus::failed;
      result.error = row.column_optional_text(2).value_or("unknown error");
      result.cancelled = row.column_int(4) != 0;
    }
    return result;
  }

  std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                           std::string* file_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::lock_guard lock(api_mutex_);
    // Not started (or waiting for a retry): FAILED now; no worker claims it any more.
    auto pending = api_db_->prepare(
        "UPDATE tasks SET status = 'FAILED', error = ?, cancelled = 1, progress = NULL, "
        "updated_at = ? WHERE id = ? AND status = 'PENDING' RETURNING file_id");
    pending.bind(1, std::string_view(bus::kCancelledMessage))
        .bind(2, now_seconds())
        .bind(3, task_id);
    if (pending.step()) {
      if (file_id) *file_id = pending.column_text(0);
      while (pending.step()) {
      }
      return CancelOutcome::cancelled;
    }
    auto running = api_db_->prepare(
        "UPDATE tasks SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'");
    running.bind(1, task_id).step();
    if (api_db_->changes() > 0) return CancelOutcome::cancelling;
    auto row = api_db_->prepare("SELECT status FROM tasks WHERE id = ?");
    row.bind(1, task_id);
    if (!row.step()) return std::nullopt;
    return CancelOutcome::finished;
  }

  void check_ready() override {
    std::lock_guard lock(api_mutex_);
    api_db_->exec("SELECT count(*) FROM tasks");
  }

  std::optional<Backlog> backlog() override {
    std::lock_guard lock(api_mutex_);
    auto st = api_db_->prepare(
        "SELECT count(*), total(audio_seconds), total(audio_bytes) FROM tasks "
        "WHERE status IN ('PENDING', 'RUNNING')");
    st.step();
    return Backlog{st.column_int(0), st.column_double(1),
                   static_cast<std::uint64_t>(st.column_int(2))};
  }

  std::optional<std::int64_t> queue_position(const std::string& task_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::lock_guard lock(api_mutex_);
    // The pending tasks claim() would take before this one (see its ORDER BY).
    auto st = api_db_->prepare(
        "SELECT count(o.id), count(me.id) FROM tasks me LEFT JOIN tasks o ON o.status = 'PENDING' "
        "AND o.id != me.id AND (CASE WHEN o.created_at < ?2 "
        "THEN (me.created_at >= ?2 OR o.created_at < me.created_at) "
        "ELSE (me.created_at >= ?2 AND (o.audio_seconds < me.audio_seconds OR "
        "(o.audio_seconds = me.audio_seconds AND o.created_at < me.created_at))) END) "
        "WHERE me.id = ?1 AND me.status = 'PENDING'");
    st.bind(1, task_id).bind(2, aged_before(now_seconds()));
    if (!st.step() || st.column_int(1) == 0) return std::nullopt;
    return st.column_int(0);
  }

  void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                  std::stop_token stop) override {
    std::string process_token = make_uuid();
    std::stop_callback on_stop(stop, [this] { wakeup_.notify_all(); });
    on_finished_ = options.on_finished;
    worker_options_ = options;
    std::vector<std::jthread> threads;
    for (int i = 0; i < std::max(1, options.concurrency); ++i) {
      std::string owner = process_token + "/" + std::to_string(i);
      threads.emplace_back([this, owner, &handler, stop] { worker_loop(owner, handler, stop); });
    }
    threads.emplace_back([this, stop] { watch_cancellations(stop); });
    maintenance_loop(process_token, stop);
    threads.clear();  // joins: each thread finishes the task in hand first
  }

 private:
  // Tasks created before this time are past the age bound (every task when the bound is 0).
  double aged_before(double now) const {
    return options_.age_bound_seconds > 0 ? now - options_.age_bound_seconds : now + 1;
  }

  // Databases created by an earlier version lack the accounting columns.
  static void add_missing_columns(SqliteDb& db) {
    std::set<std::string> columns;
    auto st = db.prepare("SELECT name FROM pragma_table_info('tasks')");
    while (st.step()) columns.insert(st.column_text(0));
    if (!columns.contains("audio_seconds"))
      db.exec("ALTER TABLE tasks ADD COLUMN audio_seconds REAL NOT NULL DEFAULT 0");
    if (!columns.contains("audio_bytes"))
      db.exec("ALTER TABLE tasks ADD COLUMN audio_bytes INTEGER NOT NULL DEFAULT 0");
    if (!columns.contains("request_id"))
      db.exec("ALTER TABLE tasks ADD COLUMN request_id TEXT NOT NULL DEFAULT ''");
    if (!columns.contains("progress")) db.exec("ALTER TABLE tasks ADD COLUMN progress TEXT");
    if (!columns.contains("cancel_requested"))
      db.exec("ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0");
    if (!columns.contains("cancelled"))
      db.exec("ALTER TABLE tasks ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0");
  }

  void worker_loop(const std::string& owner, const TaskHandler& handler, std::stop_token stop) {
    std::unique_ptr<SqliteDb> db;
    while (!stop.stop_requested()) {
      try {
        if (!db) db = std::make_unique<SqliteDb>(options_.database_path);
        if (auto task = claim(*db, owner)) {
          process(*db, owner, *task, handler);
          continue;
        }
      } catch (const std::exception& e) {
        spdlog::error("embedded bus worker: {}", e.what());
        db.reset();
      }
      std::unique_lock lock(wait_mutex_);
      wakeup_.wait_for(lock, std::chrono::duration<double>(options_.poll_seconds));
    }
  }

  std::optional<ClaimedTask> claim(SqliteDb& db, const std::string& owner) {
    double now = now_seconds();
    auto st = db.prepare(
        "UPDATE tasks SET status = 'RUNNING', attempts = attempts + 1, owner = ?1, "
        "lease_until = ?2, updated_at = ?3 "
        "WHERE id = (SELECT id FROM tasks WHERE (status = 'PENDING' AND not_before <= ?3) "
        "OR (status = 'RUNNING' AND lease_until < ?3) "
        // The order: tasks past the age bound first, oldest first; then shortest audio first.
        "ORDER BY created_at >= ?4, CASE WHEN created_at < ?4 THEN created_at "
        "ELSE audio_seconds END, created_at LIMIT 1) "
        "RETURNING id, file_id, options, attempts, audio_seconds, audio_bytes, request_id, "
        "cancel_requested");
    st.bind(1, owner).bind(2, now + options_.lease_seconds).bind(3, now).bind(4, aged_before(now));
    if (!st.step()) return std::nullopt;
    ClaimedTask task{st.column_text(0),
                     {st.column_text(1), st.column_text(2), st.column_double(4),
                      static_cast<std::uint64_t>(st.column_int(5)), st.column_text(6)},
                     st.column_int(3),
                     st.column_int(7) != 0};
    while (st.step()) {
    }
    return task;
  }

  void process(SqliteDb& db, const std::string& owner, const ClaimedTask& task,
               const TaskHandler& handler) {
    LogScope scope({.request_id = task.request.request_id});  // the submission's id on its lines
    if (task.attempts > options_.max_attempts) {
      spdlog::error("task {}: delivered {} times without a result; marking FAILED", task.id,
                    task.attempts - 1);
      bus::announce_given_up(worker_options_, task.id, task.request,
                             "gave up after " + std::to_string(task.attempts - 1) +
                                 " deliveries: the worker stopped while processing it each time");
      finish(db, owner, task.id, std::nullopt,
             "gave up after " + std::to_string(task.attempts - 1) +
                 " deliveries: the worker stopped while processing it each time");
      if (on_finished_) on_finished_(task.request);  // its audio, as after any task
      return;
    }
    spdlog::info("task {}: started (delivery {})", task.id, task.attempts);
    // Registered while it runs, and only then: its lease is renewed, its cancellation watched.
    auto control = running_.start(task.id, [&](const TaskProgress& progress) {
      db.prepare("UPDATE tasks SET progress = ? WHERE id = ? AND owner = ? AND status = 'RUNNING'")
          .bind(1, boost::json::serialize(to_json(progress)))
          .bind(2, task.id)
          .bind(3, owner)
          .step();
    });
    if (task.cancel_requested) control->cancel_token().cancel(bus::kCancelledMessage);
    bus::RetryPolicy policy{options_.max_attempts - 1, options_.retry_delay_seconds, 3600};
    bus::TaskOutcome outcome =
        bus::run_delivery(handler, task.request, *control, task.attempts - 1, policy);
    bus::announce_final(worker_options_, task.id, task.request, outcome);
    switch (outcome.kind) {
      case bus::TaskOutcome::Kind::success:
        finish(db, owner, task.id, boost::json::serialize(to_json(*outcome.transcription)),
               std::nullopt);
        spdlog::info("task {}: SUCCESS", task.id);
        break;
      case bus::TaskOutcome::Kind::failed:
        finish(db, owner, task.id, std::nullopt, outcome.error);
        spdlog::warn("task {}: FAILED: {}", task.id, outcome.error);
        break;
      case bus::TaskOutcome::Kind::cancelled:
        finish(db, owner, task.id, std::nullopt, outcome.error, true);
        spdlog::info("task {}: cancelled", task.id);
        break;
      case bus::TaskOutcome::Kind::retry:
        db.prepare(
              "UPDATE tasks SET status = 'PENDING', owner = NULL, lease_until = NULL, error = ?, "
              "progress = NULL, not_before = ?, updated_at = ? WHERE id = ? AND owner = ?")
            .bind(1, outcome.error)
            .bind(2, now_seconds() + outcome.retry_delay)
            .bind(3, now_seconds())
            .bind(4, task.id)
            .bind(5, owner)
            .step();
        spdlog::warn("task {}: attempt {} failed, retrying in {:.1f} s: {}", task.id, task.attempts,
                     outcome.retry_delay, outcome.error);
        return;
    }
    if (on_finished_) on_finished_(task.request);
  }

  void finish(SqliteDb& db, const std::string& owner, const std::string& id,
              const std::optional<std::string>& result, const std::optional<std::string>& error,
              bool cancelled = false) {
    auto st = db.prepare(
        "UPDATE tasks SET status = ?, result = ?, error = ?, owner = NULL, lease_until = NULL, "
        "progress = NULL, cancelled = ?, updated_at = ? WHERE id = ? AND owner = ? AND "
        "status = 'RUNNING'");
    st.bind(1, std::string_view(result ? "SUCCESS" : "FAILED"));
    result ? st.bind(2, *result) : st.bind_null(2);
    error ? st.bind(3, *error) : st.bind_null(3);
    st.bind(4, static_cast<std::int64_t>(cancelled ? 1 : 0));
    st.bind(5, now_seconds()).bind(6, id).bind(7, owner).step();
    if (db.changes() == 0) {
      spdlog::warn("task {}: lease was lost before the result was stored; another delivery wins",
                   id);
    }
  }

  // Cancels the tokens of this process's tasks whose cancellation is stored, until stopped.
  void watch_cancellations(std::stop_token stop) {
    std::unique_ptr<SqliteDb> db;
    running_.watch(
        [&](const std::vector<std::string>& ids) {
          if (!db) db = std::make_unique<SqliteDb>(options_.database_path);
          std::vector<std::string> cancelled;
          for (const auto& id : ids) {
            auto st = db->prepare(
                "SELECT 1 FROM tasks WHERE id = ? AND status = 'RUNNING' AND cancel_requested = 1");
            st.bind(1, id);
            if (st.step()) cancelled.push_back(id);
          }
          return cancelled;
        },
        options_.cancel_poll_seconds, stop);
  }

  // Renews the leases of this process's tasks and forgets old results, until stopped.
  void maintenance_loop(const std::string& process_token, std::stop_token stop) {
    std::unique_ptr<SqliteDb> db;
    auto period = std::chrono::duration<double>(options_.lease_seconds / 3);
    while (!stop.stop_requested()) {
      try {
        if (!db) db = std::make_unique<SqliteDb>(options_.database_path);
        double now = now_seconds();
        // Only the tasks a thread of this process is running now: a row whose result could not
        // be stored is left to expire and run again, not kept alive by a lease nobody holds.
        for (const auto& id : running_.ids()) {
          db->prepare(
                "UPDATE tasks SET lease_until = ? WHERE id = ? AND status = 'RUNNING' AND "
                "owner LIKE ?")
              .bind(1, now + options_.lease_seconds)
              .bind(2, id)
              .bind(3, process_token + "/%")
              .step();
        }
        db->prepare("DELETE FROM tasks WHERE status IN ('SUCCESS', 'FAILED') AND updated_at < ?")
            .bind(1, now - options_.result_ttl_seconds)
            .step();
      } catch (const std::exception& e) {
        spdlog::error("embedded bus maintenance: {}", e.what());
        db.reset();
      }
      bus::sleep_unless_stopped(stop, period.count());
    }
  }

  EmbeddedBusOptions options_;
  std::mutex api_mutex_;
  std::unique_ptr<SqliteDb> api_db_;
  std::mutex wait_mutex_;
  std::condition_variable wakeup_;
  std::function<void(const TaskRequest&)> on_finished_;
  WorkerOptions worker_options_;  // set by run_worker, before any task runs
  bus::RunningTasks running_;     // the tasks this process's threads are running
};

}  // namespace

EmbeddedBusOptions embedded_bus_options_from(const Config& config) {
  EmbeddedBusOptions o;
  o.database_path = config.get_string("EMBEDDED_BUS_DATABASE_PATH");
  o.lease_seconds = config.get_double("EMBEDDED_BUS_LEASE_SECONDS");
  o.max_attempts = static_cast<int>(config.get_int("EMBEDDED_BUS_MAX_ATTEMPTS"));
  o.retry_delay_seconds = config.get_double("EMBEDDED_BUS_RETRY_DELAY_SECONDS");
  o.poll_seconds = config.get_double("EMBEDDED_BUS_POLL_SECONDS");
  o.result_ttl_seconds = config.get_double("EMBEDDED_BUS_RESULT_TTL_SECONDS");
  o.age_bound_seconds = config.get_double("EMBEDDED_BUS_AGE_BOUND_SECONDS");
  return o;
}

std::unique_ptr<MessageBus> make_embedded_bus(const EmbeddedBusOptions& options) {
  return std::make_unique<EmbeddedBus>(options);
}

}  // namespace sra
