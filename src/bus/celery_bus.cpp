#include "bus/celery_bus.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/celery_broker.h"
#include "bus/redis_client.h"
#include "bus/running_tasks.h"
#include "bus/task_runner.h"
#include "bus/timing.h"
#include "core/errors.h"
#include "core/log_context.h"
#include "core/text.h"
#include "core/uuid.h"

namespace sra {
namespace {

using bus::CeleryTask;
using bus::Outcome;
using bus::RedisClient;
using bus::RedisReply;
namespace json = boost::json;

// A Lua helper of the scripts below: the status of the meta stored at `key` ('' when none; a
// value that is not Celery's JSON counts as final, so it is never overwritten).
constexpr const char* kStoredStatusLua = R"lua(
local function stored_status(key)
  local cur = redis.call('GET', key)
  if not cur then return '' end
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and type(v['status']) == 'string' then return v['status'] end
  return 'SUCCESS'
end
)lua";

const std::string kStoreUnlessFinalScript = std::string(kStoredStatusLua) + R"lua(
local status = stored_status(KEYS[1])
if status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED' then return 0 end
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
)lua";

// Revokes a task that has not finished. KEYS: meta key, marker, progress key. ARGV: REVOKED
// meta, expiry. Returns 'cancelled' (not started), 'cancelling' (running: its progress is kept,
// or its meta is PROGRESS), 'finished' or 'unknown'.
const std::string kRevokeScript = std::string(kStoredStatusLua) + R"lua(
local status = stored_status(KEYS[1])
if status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED' then return 'finished' end
local running = status ~= '' or redis.call('EXISTS', KEYS[3]) == 1
if not running and redis.call('EXISTS', KEYS[2]) == 0 then return 'unknown' end
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
if running then return 'cancelling' end
return 'cancelled'
)lua";

// Removes a PROGRESS meta (the task waits for a retry). KEYS: meta key.
constexpr const char* kDropProgressScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and v['status'] == 'PROGRESS' then redis.call('DEL', KEYS[1]) end
end
return 1
)lua";

// Celery's custom state of a running task; its meta is {"progress", "segments"}. Written only
// with CELERY_BUS_PROGRESS_STATE: the Python project's API shows a task's Celery state as its
// status, and its contract knows only PENDING, SUCCESS and FAILED.
constexpr const char* kProgressState = "PROGRESS";

// KEYS: progress key, meta key. ARGV: progress JSON, expiry. Only while no final state is stored.
const std::string kCeleryProgressScript = std::string(kStoredStatusLua) + R"lua(
local status = stored_status(KEYS[2])
if status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED' then return 0 end
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
return 1
)lua";

bool is_final(const std::string& status) {
  return status == "SUCCESS" || status == "FAILURE" || status == "REVOKED";
}

struct CeleryOptions {
  std::string broker;
  std::string backend;
  std::string app_name;
  std::string queue = "celery";
  std::string task_name = bus::kSeedCeleryTask;
  long long result_expires = 86400;
  double visibility_timeout = 3600;
  int max_retries = 3;
  int max_deliveries = 5;
  double retry_delay = 1.0;
  bool progress_state = false;  // progress also as Celery's PROGRESS state (readers of .info)
};

// A few Redis connections to the result backend, shared by the threads of this process.
class BackendPool {
 public:
  explicit BackendPool(bus::RedisUrl url) : url_(std::move(url)) {}

  template <typename F>
  auto with(F f) {
    std::unique_ptr<RedisClient> client;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        client = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!client) client = std::make_unique<RedisClient>(url_);
    // A failing client reconnects on its next command; a second failure is dropped with it.
    auto result = bus::with_reconnect([&] { return f(*client); });
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(client));
    return result;
  }

 private:
  bus::RedisUrl url_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RedisClient>> idle_;
};

class CeleryBus final : public MessageBus {
 public:
  CeleryBus(CeleryOptions options, std::unique_ptr<bus::CeleryBroker> broker)
      : options_(std::move(options)),
        broker_(std::move(broker)),
        backend_(bus::parse_redis_url(options_.backend, "CELERY_BUS_BACKEND")) {}

  std::string create_task(const TaskRequest& request) override {
    CeleryTask task{make_uuid(), options_.task_name, request.file_id, request.options_json,
                    0,           request.request_id};
    // The marker tells "pending" from "never existed"; written first so that a fast worker's
    // result is never taken for an unknown task.
    backend_.with([&](RedisClient& c) {
      return c.command({"SET", marker(task.id), "1", "EX",
                        std::to_string(bus::unfinished_record_seconds(options_.result_expires))});
    });
    broker_->publish(task);
    return task.id;
  }

  std::optional<TaskResult> get_task_result(const std::string& task_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    // The meta (a final state); else the progress our worker keeps (a task any producer sent);
    // else our marker (a task our API sent, still queued).
    auto [meta, progress, known] = backend_.with([&](RedisClient& c) {
      auto r = c.command({"GET", meta_key(task_id)});
      RedisReply p;
      bool exists = !r.is_nil();
      if (!exists) {
        p = c.command({"GET", progress_key(task_id)});
        exists = !p.is_nil() || c.command({"EXISTS", marker(task_id)}).integer == 1;
      }
      return std::tuple{r, p, exists};
    });
    if (meta.is_nil()) {
      if (!known) return std::nullopt;
      TaskResult pending;
      if (!progress.is_nil()) {
        try {
          pending.progress = task_progress_from_json(json::parse(progress.str));
        } catch (const std::exception& e) {
          spdlog::warn("celery: the progress of task {} cannot be read: {}", task_id, e.what());
        }
      }
      return pending;
    }
    TaskResult result;
    try {
      auto v = json::parse(meta.str).as_object();
      std::string status(v.at("status").as_string());
      if (status == "SUCCESS") {
        result.status = TaskStatus::success;
        const auto& r = v.at("result");
        if (auto* details =
                r.is_object() ? r.as_object().if_contains("transcription_details") : nullptr) {
          result.transcription = transcription_from_json(*details);
        } else {
          Transcription t;
          if (auto* text = r.is_object() ? r.as_object().if_contains("transcription") : nullptr) {
            t.text = std::string(text->as_string());
          }
          result.transcription = t;
        }
      } else if (status == "FAILURE" || status == "REVOKED") {
        result.status = TaskStatus::failed;
        result.error = error_text(v.at("result"));
        result.cancelled = status == "REVOKED";
      } else if (status == kProgressState) {
        result.progress = task_progress_from_json(v.at("result"));
      }
    } catch (const std::exception& e) {
      throw internal_error(std::string("stored Celery result is not valid: ") + e.what());
    }
    return result;
  }

  void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                  std::stop_token stop) override {
    on_finished_ = options.on_finished;
    worker_options_ = options;
    std::jthread watch([this](std::stop_token watch_stop) {
      running_.watch([this](const auto& ids) { return revoked_among(ids); }, 1.0, watch_stop);
    });
    broker_->consume(
        options.concurrency, [&](const CeleryTask& task) { return handle(task, handler, stop); },
        stop);
  }

  std::optional<Backlog> backlog() override { return Backlog{broker_->unfinished(), {}, {}}; }

  // REVOKED in the result backend, as Celery stores a revoked task: readers see it at once, a
  // worker skips the message when it comes, and the worker running it stops (its watch).
  std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                           std::string* /*file_id*/) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::string meta = bus::result_meta(task_id, "REVOKED", revoked_result(), "");
    auto r = backend_.with([&](RedisClient& c) {
      return c.eval(kRevokeScript, {meta_key(task_id), marker(task_id), progress_key(task_id)},
                    {meta, std::to_string(options_.result_expires)});
    });
    if (r.str == "cancelled") return CancelOutcome::cancelled;  // its audio goes with the message
    if (r.str == "cancelling") return CancelOutcome::cancelling;
    if (r.str == "finished") return CancelOutcome::finished;
    return std::nullopt;
  }

  void check_ready() override {
    broker_->check_ready();
    backend_.with([](RedisClient& c) { return c.command({"PING"}); });
  }

 private:
  static std::string marker(const std::string& id) { return "sra-celery-task-" + id; }
  static std::string progress_key(const std::string& id) { return "sra-celery-progress-" + id; }
  static std::string meta_key(const std::string& id) { return "celery-task-meta-" + id; }

  static json::value revoked_result() {
    return bus::exception_result("TaskRevokedError", bus::kCancelledMessage, "celery.exceptions");
  }

  // The status of the stored meta of task `id`; empty when none.
  std::string stored_status(const std::string& id) {
    auto r = backend_.with([&](RedisClient& c) { return c.command({"GET", meta_key(id)}); });
    if (r.is_nil()) return "";
    try {
      return std::string(json::parse(r.str).as_object().at("status").as_string());
    } catch (const std::exception&) {
      return "SUCCESS";  // not ours to overwrite
    }
  }

  // Of the running tasks `ids`, those revoked (cancel_task).
  std::vector<std::string> revoked_among(const std::vector<std::string>& ids) {
    std::vector<std::string> keys{"MGET"};
    for (const auto& id : ids) keys.push_back(meta_key(id));
    auto r = backend_.with([&](RedisClient& c) { return c.command(keys); });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ids.size() && i < r.elements.size(); ++i) {
      if (r.elements[i].is_nil()) continue;
      try {
        if (json::parse(r.elements[i].str).as_object().at("status").as_string() == "REVOKED")
          out.push_back(ids[i]);
      } catch (const std::exception&) {
      }
    }
    return out;
  }

  static std::string error_text(const json::value& r) {
    if (r.is_object()) {
      const auto& o = r.as_object();
      std::string type =
          o.if_contains("exc_type") ? std::string(o.at("exc_type").as_string()) : "Error";
      std::string message;
      if (auto* m = o.if_contains("exc_message")) {
        if (m->is_array()) {
          for (const auto& part : m->as_array()) {
            message += (message.empty() ? "" : ", ") +
                       (part.is_string() ? std::string(part.as_string()) : json::serialize(part));
          }
        } else if (m->is_string()) {
          message = std::string(m->as_string());
        }
      }
      return message.empty() ? type : message;
    }
    return json::serialize(r);
  }

  bool store(const std::string& id, const std::string& status, const json::value& result,
             const std::string& traceback) {
    std::string meta = bus::result_meta(id, status, result, traceback);
    auto r = backend_.with([&](RedisClient& c) {
      return c.eval(kStoreUnlessFinalScript, {meta_key(id)},
                    {meta, std::to_string(options_.result_expires)});
    });
    return r.integer == 1;
  }

  Outcome fail(const CeleryTask& task, const std::string& type, const std::string& message) {
    spdlog::warn("task {}: FAILURE: {}", task.id, message);
    store(task.id, "FAILURE", bus::exception_result(type, message), type + ": " + message);
    return Outcome::ack;
  }

  Outcome handle(const CeleryTask& task, const TaskHandler& handler, std::stop_token stop) {
    if (task.name != options_.task_name) {
      return fail(task, "NotRegistered",
                  "Task of kind '" + task.name + "' is not registered with this worker");
    }
    TaskRequest request{task.file_id, task.options_json.empty() ? "{}" : task.options_json, 0, 0,
                        task.request_id};
    LogScope scope({.request_id = task.request_id});  // the submission's id on its lines
    // A delivery whose result is stored already (the worker died before acknowledging, or the
    // task was revoked while it waited): done.
    if (std::string status = stored_status(task.id); is_final(status)) {
      spdlog::info("task {}: {} already stored; acknowledging the delivery", task.id, status);
      if (on_finished_) on_finished_(request);
      return Outcome::ack;
    }
    std::string counter = "sra-celery-deliveries-" + task.id;
    long long deliveries = backend_.with([&](RedisClient& c) {
      auto n = c.command({"INCR", counter});
      c.command({"EXPIRE", counter, std::to_string(options_.result_expires)});
      return n.integer;
    });
    if (deliveries > options_.max_deliveries) {
      bus::announce_given_up(
          worker_options_, task.id, request,
          "gave up after " + std::to_string(deliveries - 1) + " deliveries that never finished");
      fail(task, "WorkerLostError",
           "gave up after " + std::to_string(deliveries - 1) + " deliveries that never finished");
      if (on_finished_) on_finished_(request);  // its audio, as after any task
      return Outcome::ack;
    }
    spdlog::info("task {}: started (delivery {}, retries {})", task.id, deliveries, task.retries);
    // Progress where the Python project's reader does not look (its status stays PENDING), and
    // as Celery's PROGRESS state only when asked for.
    auto write_progress = [&](const TaskProgress& progress) {
      json::value value = to_json(progress);
      backend_.with([&](RedisClient& c) {
        return c.eval(kCeleryProgressScript, {progress_key(task.id), meta_key(task.id)},
                      {json::serialize(value), std::to_string(options_.result_expires)});
      });
      if (options_.progress_state) store(task.id, kProgressState, value, "");
    };
    auto control = running_.start(task.id, write_progress);
    write_progress(TaskProgress{});  // from the start: a reader sees it runs
    bus::RetryPolicy policy{options_.max_retries, options_.retry_delay, 30};
    bus::TaskOutcome outcome = bus::run_delivery(handler, request, *control, task.retries, policy);
    bus::announce_final(worker_options_, task.id, request, outcome);
    switch (outcome.kind) {
      case bus::TaskOutcome::Kind::success:
        store(task.id, "SUCCESS",
              json::object{{"transcription", outcome.transcription->text},
                           {"transcription_details", to_json(*outcome.transcription)}},
              "");
        spdlog::info("task {}: SUCCESS", task.id);
        break;
      case bus::TaskOutcome::Kind::failed:
        fail(task, outcome.input_error ? "ValueError" : "RuntimeError", outcome.error);
        break;
      case bus::TaskOutcome::Kind::cancelled:
        store(task.id, "REVOKED", revoked_result(), "");  // stored by cancel_task already
        spdlog::info("task {}: cancelled", task.id);
        break;
      case bus::TaskOutcome::Kind::retry:
        spdlog::warn("task {}: {}; retrying in {:.1f} s", task.id, outcome.error,
                     outcome.retry_delay);
        // PENDING again (a PROGRESS meta is removed unless a final state won the race).
        backend_.with([&](RedisClient& c) {
          c.command({"DEL", progress_key(task.id)});
          return c.eval(kDropProgressScript, {meta_key(task.id)}, {});
        });
        bus::sleep_unless_stopped(stop, outcome.retry_delay);
        // This delivery ended properly: it does not count towards the crash limit.
        backend_.with([&](RedisClient& c) { return c.command({"DECR", counter}); });
        return Outcome::requeue;
    }
    backend_.with([&](RedisClient& c) { return c.command({"DEL", progress_key(task.id)}); });
    if (on_finished_) on_finished_(request);
    return Outcome::ack;
  }

  CeleryOptions options_;
  std::function<void(const TaskRequest&)> on_finished_;
  WorkerOptions worker_options_;  // set by run_worker, before any task runs
  std::unique_ptr<bus::CeleryBroker> broker_;
  BackendPool backend_;
  bus::RunningTasks running_;
};

}  // namespace

std::unique_ptr<MessageBus> make_celery_bus(const Config& config) {
  CeleryOptions o;
  o.broker = config.get_string("CELERY_BUS_BROKER");
  bool redis_broker = bus::is_redis_url(o.broker);
  bool amqp_broker = o.broker.rfind("amqp://", 0) == 0 || o.broker.rfind("amqps://", 0) == 0 ||
                     o.broker.rfind("pyamqp://", 0) == 0;
  if (!redis_broker && !amqp_broker) {
    throw config_error("CELERY_BUS_BROKER=" + redact_url(o.broker) +
                       " must be a redis://, rediss://, amqp:// or amqps:// URL");
  }
  o.backend = config.get_string("CELERY_BUS_BACKEND", redis_broker ? o.broker : "");
  if (o.backend.empty())
    throw config_error(
        "CELERY_BUS_BACKEND must be set (a redis:// or rediss:// URL) with an AMQP broker");
  bus::parse_redis_url(o.backend, "CELERY_BUS_BACKEND");
  o.app_name = config.get_string("CELERY_BUS_NAME");
  o.queue = config.get_string("CELERY_BUS_QUEUE");
  o.task_name = config.get_string("CELERY_BUS_TASK_NAME");
  o.result_expires = config.get_int("CELERY_BUS_RESULT_EXPIRES");
  o.visibility_timeout = config.get_double("CELERY_BUS_VISIBILITY_TIMEOUT");
  o.max_retries = static_cast<int>(config.get_int("CELERY_BUS_MAX_RETRIES"));
  o.max_deliveries = static_cast<int>(config.get_int("CELERY_BUS_MAX_DELIVERIES"));
  o.retry_delay = config.get_double("CELERY_BUS_RETRY_DELAY_SECONDS");
  o.progress_state = config.get_bool("CELERY_BUS_PROGRESS_STATE");
  std::unique_ptr<bus::CeleryBroker> broker;
  if (redis_broker) {
    broker = bus::make_redis_broker(
        {o.broker, o.queue, o.visibility_timeout, config.get_double("CELERY_BUS_POLL_SECONDS")});
  } else {
    std::string url = o.broker;
    if (url.rfind("pyamqp://", 0) == 0) url = "amqp://" + url.substr(9);
    broker = bus::make_amqp_broker({url, o.queue});
  }
  return std::make_unique<CeleryBus>(std::move(o), std::move(broker));
}

}  // namespace sra
