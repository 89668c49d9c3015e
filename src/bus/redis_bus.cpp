#include "bus/redis_bus.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/redis_cancel_watch.h"
#include "bus/redis_client.h"
#include "bus/redis_lease_queue.h"
#include "bus/running_tasks.h"
#include "bus/task_runner.h"
#include "bus/timing.h"
#include "core/errors.h"
#include "core/log_context.h"
#include "core/uuid.h"

namespace sra {
namespace {

using bus::now_seconds;
using bus::RedisClient;
using bus::RedisReply;
using bus::seconds_text;
using bus::sleep_unless_stopped;

// KEYS: task hash, queue. ARGV: file id, options, now, record ttl, id, request id. An unfinished
// task's record lives long (bus::unfinished_record_seconds); its result's time to live starts when
// the result is stored (kFinishScript).
constexpr const char* kCreateScript = R"lua(
redis.call('HSET', KEYS[1], 'file_id', ARGV[1], 'options', ARGV[2], 'status', 'PENDING', 'created', ARGV[3],
           'deliveries', 0, 'retries', 0, 'request_id', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('LPUSH', KEYS[2], ARGV[5])
return 1
)lua";

// KEYS: task hash. A delivery starts: counted, and its record read (a missing one: expired or
// never created).
constexpr const char* kStartScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', '', '{}', '0', '0', '', '', ''} end
local n = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
return {redis.call('HGET', KEYS[1], 'status') or '', redis.call('HGET', KEYS[1], 'file_id') or '',
        redis.call('HGET', KEYS[1], 'options') or '{}', tostring(n),
        redis.call('HGET', KEYS[1], 'retries') or '0', redis.call('HGET', KEYS[1], 'request_id') or '',
        redis.call('HGET', KEYS[1], 'cancel') or '', ''}
)lua";

// KEYS: task hash, leases, in flight. ARGV: status, field, value, ttl, id, cancelled ('1' or
// '0'). Stores once, then releases the delivery.
constexpr const char* kFinishScript = R"lua(
local status = redis.call('HGET', KEYS[1], 'status')
local stored = 0
if status ~= 'SUCCESS' and status ~= 'FAILED' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[2], ARGV[3], 'cancelled', ARGV[6])
  redis.call('HDEL', KEYS[1], 'progress')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  stored = 1
end
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('HDEL', KEYS[3], ARGV[5])
return stored
)lua";

// KEYS: task hash. A delivery that ended for a retry: it counts as a retry, not a delivery.
constexpr const char* kRetryScript = R"lua(
redis.call('HDEL', KEYS[1], 'progress')
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
return 1
)lua";

// KEYS: task hash. ARGV: progress JSON. Only while the task has not finished.
constexpr const char* kRedisProgressScript = R"lua(
if redis.call('HGET', KEYS[1], 'status') ~= 'PENDING' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
return 1
)lua";

// KEYS: task hash, leases. ARGV: id, ttl, message. Returns {outcome, file id}: 'cancelled' (it
// waited in the queue: FAILED now, skipped when popped), 'cancelling' (a worker holds it: flagged
// for its watch), 'finished' or 'unknown'.
constexpr const char* kCancelScript = R"lua(
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', ''} end
if status == 'SUCCESS' or status == 'FAILED' then return {'finished', ''} end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return {'cancelling', ''}
end
redis.call('HSET', KEYS[1], 'status', 'FAILED', 'error', ARGV[3], 'cancelled', '1')
redis.call('HDEL', KEYS[1], 'progress')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {'cancelled', redis.call('HGET', KEYS[1], 'file_id') or ''}
)lua";

struct RedisBusOptions {
  bus::RedisUrl url;
  std::string name = "speech_recognition_api";
  double visibility_timeout = 60;
  long long result_expires = 86400;
  int max_retries = 3;
  int max_deliveries = 5;
  double retry_delay = 1.0;
  double poll_seconds = 0.1;
};

class RedisBus final : public MessageBus {
 public:
  explicit RedisBus(RedisBusOptions o)
      : o_(std::move(o)),
        prefix_("sra:" + o_.name + ":"),
        api_(o_.url),
        queue_({{prefix_ + "queue"}, prefix_ + "inflight", prefix_ + "leases"},
               bus::LeaseFormat::plain, o_.visibility_timeout) {}

  std::string create_task(const TaskRequest& request) override {
    std::string id = make_uuid();
    std::lock_guard lock(api_mutex_);
    bus::with_reconnect([&] {
      return api_.eval(kCreateScript, {task_key(id), queue_.keys().queues.front()},
                       {request.file_id, request.options_json.empty() ? "{}" : request.options_json,
                        seconds_text(now_seconds()),
                        std::to_string(bus::unfinished_record_seconds(o_.result_expires)), id,
                        request.request_id});
    });
    return id;
  }

  std::optional<TaskResult> get_task_result(const std::string& task_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    RedisReply r;
    {
      std::lock_guard lock(api_mutex_);
      r = bus::with_reconnect([&] { return api_.command({"HGETALL", task_key(task_id)}); });
    }
    if (r.elements.empty()) return std::nullopt;
    std::map<std::string, std::string> fields;
    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
      fields[r.elements[i].str] = r.elements[i + 1].str;
    TaskResult result;
    if (fields["status"] == "SUCCESS") {
      result.status = TaskStatus::success;
      result.transcription = transcription_from_json(boost::json::parse(fields["result"]));
    } else if (fields["status"] == "FAILED") {
      result.status = TaskStatus::failed;
      result.error = fields["error"];
      result.cancelled = fields["cancelled"] == "1";
    } else if (auto p = fields.find("progress"); p != fields.end()) {
      result.progress = task_progress_from_json(boost::json::parse(p->second));
    }
    return result;
  }

  std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                           std::string* file_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::lock_guard lock(api_mutex_);
    auto r = bus::with_reconnect([&] {
      return api_.eval(kCancelScript, {task_key(task_id), queue_.keys().leases},
                       {task_id, std::to_string(o_.result_expires), bus::kCancelledMessage});
    });
    return bus::cancel_outcome_from_reply(r, file_id);
  }

  void check_ready() override {
    std::lock_guard lock(api_mutex_);
    bus::with_reconnect([&] { return api_.command({"PING"}); });
  }

  // Queued tasks plus those a worker holds (the leases).
  std::optional<Backlog> backlog() override {
    std::lock_guard lock(api_mutex_);
    auto queued = bus::with_reconnect([&] {
                    return api_.command({"LLEN", queue_.keys().queues.front()});
                  }).integer;
    auto held = bus::with_reconnect([&] { return queue_.leased(api_); });
    return Backlog{queued + held, {}, {}};
  }

  void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                  std::stop_token stop) override {
    bus::run_redis_worker(
        options.concurrency, [&] { worker_loop(options, handler, stop); }, running_, o_.url,
        [this](const std::string& id) { return task_key(id); }, stop,
        [&] { maintenance_loop(stop); });
  }

 private:
  std::string task_key(const std::string& id) const { return prefix_ + "task:" + id; }

  void worker_loop(const WorkerOptions& options, const TaskHandler& handler, std::stop_token stop) {
    RedisClient client(o_.url);
    bus::run_worker_loop("redis bus", stop, o_.poll_seconds, [&] {
      std::optional<bus::Lease> lease = queue_.take(client);  // the task id is the token
      if (!lease) return false;
      run_task(client, lease->token, options, handler, stop);
      return true;
    });
  }

  void run_task(RedisClient& client, const std::string& id, const WorkerOptions& options,
                const TaskHandler& handler, std::stop_token stop) {
    RedisReply r = client.eval(kStartScript, {task_key(id)}, {});
    const std::string& status = r.elements[0].str;
    TaskRequest request{r.elements[1].str, r.elements[2].str, 0, 0, r.elements[5].str};
    const std::optional<long long> deliveries = bus::count_from(r.elements[3].str);
    const std::optional<long long> retries = bus::count_from(r.elements[4].str);
    const bool cancel_requested = r.elements[6].str == "1";
    LogScope scope({.request_id = request.request_id});  // the submission's id on its lines
    if (status.empty() || status == "SUCCESS" || status == "FAILED") {
      // Expired or never created, or done before (a repeated delivery): nothing to do.
      queue_.ack(client, id);
      return;
    }
    if (!deliveries || !retries) {
      finish(client, id, "FAILED", "error",
             "the task's record is damaged: its delivery counts are not numbers");
      if (options.on_finished) options.on_finished(request);
      return;
    }
    if (*deliveries > o_.max_deliveries) {
      bus::announce_given_up(
          options, id, request,
          "gave up after " + std::to_string(*deliveries - 1) + " deliveries that never finished");
      finish(
          client, id, "FAILED", "error",
          "gave up after " + std::to_string(*deliveries - 1) + " deliveries that never finished");
      if (options.on_finished) options.on_finished(request);  // its audio, as after any task
      return;
    }
    spdlog::info("task {}: started (delivery {}, retries {})", id, *deliveries, *retries);
    auto write_progress = [&](const TaskProgress& progress) {
      client.eval(kRedisProgressScript, {task_key(id)},
                  {boost::json::serialize(to_json(progress))});
    };
    // Registered while it runs, whatever happens after: its lease is renewed, its cancellation
    // watched.
    auto control = running_.start(id, write_progress);
    if (cancel_requested) control->cancel_token().cancel(bus::kCancelledMessage);
    write_progress(TaskProgress{});  // a reader sees that it runs
    bus::RetryPolicy policy{o_.max_retries, o_.retry_delay, 30};
    bus::TaskOutcome outcome =
        bus::run_delivery(handler, request, *control, static_cast<int>(*retries), policy);
    bus::announce_final(options, id, request, outcome);
    switch (outcome.kind) {
      case bus::TaskOutcome::Kind::success:
        finish(client, id, "SUCCESS", "result",
               boost::json::serialize(to_json(*outcome.transcription)));
        spdlog::info("task {}: SUCCESS", id);
        break;
      case bus::TaskOutcome::Kind::failed:
        finish(client, id, "FAILED", "error", outcome.error);
        break;
      case bus::TaskOutcome::Kind::cancelled:
        finish(client, id, "FAILED", "error", outcome.error, true);
        spdlog::info("task {}: cancelled", id);
        break;
      case bus::TaskOutcome::Kind::retry:
        spdlog::warn("task {}: {}; retrying in {:.1f} s", id, outcome.error, outcome.retry_delay);
        sleep_unless_stopped(stop, outcome.retry_delay);
        client.eval(kRetryScript, {task_key(id)}, {});
        queue_.requeue(client, id);
        return;
    }
    if (options.on_finished) options.on_finished(request);
  }

  void finish(RedisClient& client, const std::string& id, const char* status, const char* field,
              const std::string& value, bool cancelled = false) {
    if (std::string(status) == "FAILED" && !cancelled)
      spdlog::warn("task {}: FAILED: {}", id, value);
    client.eval(
        kFinishScript, {task_key(id), queue_.keys().leases, queue_.keys().in_flight},
        {status, field, value, std::to_string(o_.result_expires), id, cancelled ? "1" : "0"});
  }

  void maintenance_loop(std::stop_token stop) {
    RedisClient client(o_.url);
    bus::run_maintenance_loop("redis bus", stop, queue_.maintenance_period(), [&] {
      queue_.renew(client, running_.ids());
      if (long long restored = queue_.restore(client); restored > 0) {
        spdlog::warn("redis bus: {} task(s) whose worker stopped put back on the queue", restored);
      }
    });
  }

  RedisBusOptions o_;
  std::string prefix_;
  std::mutex api_mutex_;
  RedisClient api_;
  bus::RedisLeaseQueue queue_;  // task ids; the id is its delivery's token
  bus::RunningTasks running_;
};

}  // namespace

std::unique_ptr<MessageBus> make_redis_bus(const Config& config) {
  RedisBusOptions o;
  o.url = bus::parse_redis_url(config.get_string("REDIS_BUS_URL"), "REDIS_BUS_URL");
  o.name = config.get_string("REDIS_BUS_NAME");
  o.visibility_timeout = config.get_double("REDIS_BUS_VISIBILITY_TIMEOUT");
  o.result_expires = config.get_int("REDIS_BUS_RESULT_EXPIRES");
  o.max_retries = static_cast<int>(config.get_int("REDIS_BUS_MAX_RETRIES"));
  o.max_deliveries = static_cast<int>(config.get_int("REDIS_BUS_MAX_DELIVERIES"));
  o.retry_delay = config.get_double("REDIS_BUS_RETRY_DELAY_SECONDS");
  return std::make_unique<RedisBus>(std::move(o));
}

}  // namespace sra
