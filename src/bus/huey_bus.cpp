#include "bus/huey_bus.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include "bus/huey_wire.h"
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
namespace huey = bus::huey;

// KEYS: task record, queue. ARGV: message, file id, request id, created, record ttl.
constexpr const char* kCreateScript = R"lua(
redis.call('HSET', KEYS[1], 'file_id', ARGV[2], 'request_id', ARGV[3], 'created', ARGV[4],
           'deliveries', 0, 'retries', 0)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
)lua";

// KEYS: results, task record. ARGV: id, revoke key. Marks the task running unless it has a result.
constexpr const char* kStartScript = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'done'} end
local n = redis.call('HINCRBY', KEYS[2], 'deliveries', 1)
redis.call('HSET', KEYS[2], 'running', '1')
return {'start', redis.call('HGET', KEYS[1], ARGV[2]) or '', tostring(n),
        redis.call('HGET', KEYS[2], 'retries') or '0', redis.call('HGET', KEYS[2], 'cancel') or '',
        redis.call('HGET', KEYS[2], 'request_id') or ''}
)lua";

// KEYS: results, task record, in flight, leases. ARGV: id, value, ttl, token, revoke key.
// Stores the result once (the first stored wins), then releases the delivery.
constexpr const char* kFinishScript = R"lua(
local stored = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[5])
redis.call('HDEL', KEYS[2], 'progress', 'running')
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[4])
return stored
)lua";

// KEYS: task record. A delivery that ended for a retry: it counts as a retry, not a delivery.
constexpr const char* kRetryScript = R"lua(
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
redis.call('HDEL', KEYS[1], 'progress', 'running')
return 1
)lua";

// KEYS: in flight, leases, schedule. ARGV: token, score. A message whose eta is ahead waits in
// Huey's schedule.
constexpr const char* kScheduleScript = R"lua(
local m = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if m then redis.call('ZADD', KEYS[3], ARGV[2], m) end
return 1
)lua";

// KEYS: schedule, queue. ARGV: score now. What a Huey consumer's scheduler does: due messages
// move to the queue.
constexpr const char* kDueScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, m in ipairs(due) do
  if redis.call('ZREM', KEYS[1], m) == 1 then redis.call('LPUSH', KEYS[2], m) end
end
return #due
)lua";

// KEYS: results, task record. ARGV: id, progress JSON. Only while no result is stored.
constexpr const char* kHueyProgressScript = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'progress', ARGV[2])
return 1
)lua";

// KEYS: results, task record. ARGV: id, revoke key, revoke value, error value, ttl.
constexpr const char* kCancelScript = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'finished', ''} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'unknown', ''} end
if redis.call('HGET', KEYS[2], 'running') == '1' then
  redis.call('HSET', KEYS[2], 'cancel', '1')
  return {'cancelling', ''}
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], 'cancel', '1')
redis.call('HDEL', KEYS[2], 'progress')
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {'cancelled', redis.call('HGET', KEYS[2], 'file_id') or ''}
)lua";

struct HueyOptions {
  bus::RedisUrl url;
  std::string name = "huey_message_bus";
  std::string task_name = huey::kSeedTaskName;
  double visibility_timeout = 60;
  long long result_expires = 86400;
  int max_retries = 3;
  int max_deliveries = 5;
  double retry_delay = 1.0;
  double poll_seconds = 0.1;
};

class HueyBus final : public MessageBus {
 public:
  explicit HueyBus(HueyOptions o)
      : o_(std::move(o)),
        keys_(huey::keys_for(o_.name)),
        ours_("huey.sra." + keys_.queue.substr(std::string("huey.redis.").size()) + "."),
        api_(o_.url),
        queue_({{keys_.queue}, ours_ + "inflight", ours_ + "leases"}, bus::LeaseFormat::plain,
               o_.visibility_timeout) {}

  std::string create_task(const TaskRequest& request) override {
    huey::Message m;
    m.id = make_uuid();
    m.name = o_.task_name;
    m.args = {request.file_id};
    if (!request.options_json.empty() && request.options_json != "{}")
      m.kwargs["options"] = request.options_json;  // a Python consumer's huey_task refuses these
    std::string message = huey::write_message(m);
    if (message.size() > huey::kMaxMessageBytes) {
      throw too_large("the task's options make a Huey message of " +
                      std::to_string(message.size()) + " bytes; a worker reads at most " +
                      std::to_string(huey::kMaxMessageBytes));
    }
    std::lock_guard lock(api_mutex_);
    bus::with_reconnect([&] {
      return api_.eval(kCreateScript, {task_key(m.id), keys_.queue},
                       {message, request.file_id, request.request_id, seconds_text(now_seconds()),
                        std::to_string(bus::unfinished_record_seconds(o_.result_expires))});
    });
    return m.id;
  }

  // A stored result is SUCCESS or FAILED; no result yet is PENDING, as the Python project's bus
  // says (Huey keeps no index of queued tasks to tell an unknown id from a queued one).
  std::optional<TaskResult> get_task_result(const std::string& task_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    RedisReply stored, progress;
    {
      std::lock_guard lock(api_mutex_);
      stored = bus::with_reconnect([&] { return api_.command({"HGET", keys_.results, task_id}); });
      if (stored.is_nil()) {
        progress = bus::with_reconnect([&] {
          return api_.command({"HGET", task_key(task_id), "progress"});
        });
      }
    }
    TaskResult result;
    if (!stored.is_nil()) return result_from(task_id, stored.str);
    if (!progress.is_nil())
      result.progress = task_progress_from_json(boost::json::parse(progress.str));
    return result;
  }

  std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                           std::string* file_id) override {
    if (!is_uuid(task_id)) return std::nullopt;
    std::string error = huey::write_error(task_id, bus::kCancelledMessage, true);
    std::lock_guard lock(api_mutex_);
    auto r = bus::with_reconnect([&] {
      return api_.eval(kCancelScript, {keys_.results, task_key(task_id)},
                       {task_id, huey::revoke_key(task_id), huey::write_revoke(), error,
                        std::to_string(o_.result_expires)});
    });
    return bus::cancel_outcome_from_reply(r, file_id);
  }

  void check_ready() override {
    std::lock_guard lock(api_mutex_);
    bus::with_reconnect([&] { return api_.command({"PING"}); });
  }

  // Queued, scheduled and held (leased by our workers) messages.
  std::optional<Backlog> backlog() override {
    std::lock_guard lock(api_mutex_);
    auto count = [&](const char* cmd, const std::string& key) {
      return bus::with_reconnect([&] { return api_.command({cmd, key}); }).integer;
    };
    return Backlog{count("LLEN", keys_.queue) + count("ZCARD", keys_.schedule) +
                       bus::with_reconnect([&] { return queue_.leased(api_); }),
                   {},
                   {}};
  }

  void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                  std::stop_token stop) override {
    bus::run_redis_worker(
        options.concurrency, [&] { worker_loop(options, handler, stop); }, running_, o_.url,
        [this](const std::string& id) { return task_key(id); }, stop,
        [&] { maintenance_loop(stop); });
  }

 private:
  std::string task_key(const std::string& id) const { return ours_ + "task." + id; }

  TaskResult result_from(const std::string& task_id, const std::string& bytes) {
    TaskResult result;
    try {
      huey::StoredResult r = huey::read_result(bytes);
      if (r.error) {
        result.status = TaskStatus::failed;
        result.error = r.message;
        result.cancelled = r.cancelled;
        return result;
      }
      result.status = TaskStatus::success;
      if (!r.details_json.empty()) {
        result.transcription = transcription_from_json(boost::json::parse(r.details_json));
      } else {
        Transcription t;
        t.text = r.transcription;
        result.transcription = std::move(t);
      }
    } catch (const std::exception& e) {  // a hostile or foreign value in the results hash
      spdlog::warn("huey: the result of task {} cannot be read: {}", task_id, e.what());
      result.status = TaskStatus::failed;
      result.error = std::string("the stored result cannot be read: ") + e.what();
    }
    return result;
  }

  void worker_loop(const WorkerOptions& options, const TaskHandler& handler, std::stop_token stop) {
    RedisClient client(o_.url);
    bus::run_worker_loop("huey", stop, o_.poll_seconds, [&] {
      std::optional<bus::Lease> lease = queue_.take(client, make_uuid());
      if (!lease) return false;
      run_message(client, lease->token, lease->message, options, handler, stop);
      return true;
    });
  }

  void run_message(RedisClient& client, const std::string& token, const std::string& bytes,
                   const WorkerOptions& options, const TaskHandler& handler, std::stop_token stop) {
    huey::Message m;
    try {
      m = huey::read_message(bytes);
    } catch (const std::exception& e) {
      spdlog::error("huey: a message on {} was refused and dropped: {}", keys_.queue, e.what());
      queue_.ack(client, token);
      return;
    }
    const double now = now_seconds();
    if (m.eta && *m.eta > now) {  // not yet: into Huey's schedule, as its consumer does
      client.eval(kScheduleScript, {queue_.keys().in_flight, queue_.keys().leases, keys_.schedule},
                  {token, seconds_text(huey::schedule_score(*m.eta))});
      return;
    }
    RedisReply start =
        client.eval(kStartScript, {keys_.results, task_key(m.id)}, {m.id, huey::revoke_key(m.id)});
    auto drop = [&] {
      queue_.ack(client, token);
      client.command({"HDEL", task_key(m.id), "running"});
    };
    if (start.elements.empty() || start.elements[0].str != "start") {  // finished before
      drop();
      return;
    }
    const std::string& revoke = start.elements[1].str;
    const std::optional<long long> deliveries = bus::count_from(start.elements[2].str);
    const std::optional<long long> retries = bus::count_from(start.elements[3].str);
    bool cancel_requested = start.elements[4].str == "1";
    TaskRequest request;
    request.request_id = start.elements[5].str;
    LogScope scope({.request_id = request.request_id});
    if (!revoke.empty()) {
      bool revoked = true;
      try {
        revoked = huey::revokes(revoke, now);
      } catch (const std::exception& e) {
        spdlog::warn("huey: task {}: unreadable revocation, taken as revoked: {}", m.id, e.what());
      }
      if (revoked) {
        spdlog::info("task {}: revoked, not run", m.id);
        drop();
        return;
      }
    }
    if (m.expires_at && *m.expires_at < now) {
      spdlog::info("task {}: expired, not run", m.id);
      drop();
      return;
    }
    auto fail = [&](const std::string& why) {
      finish(client, m.id, token, huey::write_error(m.id, why, false));
      spdlog::warn("task {}: FAILED: {}", m.id, why);
    };
    if (m.name != o_.task_name) {
      fail("unknown task " + m.name + " (this worker runs " + o_.task_name + ")");
      return;
    }
    auto options_kw = m.kwargs.find("options");
    if (m.args.size() != 1 || m.kwargs.size() > (options_kw == m.kwargs.end() ? 0u : 1u)) {
      fail(o_.task_name + " takes one argument, the file id");
      return;
    }
    request.file_id = m.args[0];
    request.options_json = options_kw == m.kwargs.end() ? "{}" : options_kw->second;
    if (!deliveries || !retries) {
      fail("the task's record is damaged: its delivery counts are not numbers");
      if (options.on_finished) options.on_finished(request);
      return;
    }
    if (*deliveries > o_.max_deliveries) {
      bus::announce_given_up(
          options, m.id, request,
          "gave up after " + std::to_string(*deliveries - 1) + " deliveries that never finished");
      fail("gave up after " + std::to_string(*deliveries - 1) + " deliveries that never finished");
      if (options.on_finished) options.on_finished(request);  // its audio, as after any task
      return;
    }
    spdlog::info("task {}: started (delivery {}, retries {})", m.id, *deliveries, *retries);
    auto write_progress = [&](const TaskProgress& progress) {
      client.eval(kHueyProgressScript, {keys_.results, task_key(m.id)},
                  {m.id, boost::json::serialize(to_json(progress))});
    };
    auto control = running_.start(m.id, write_progress);
    {
      std::lock_guard lock(tokens_mutex_);
      tokens_[m.id] = token;
    }
    struct Forget {
      HueyBus* bus;
      std::string id;
      ~Forget() {
        std::lock_guard lock(bus->tokens_mutex_);
        bus->tokens_.erase(id);
      }
    } forget{this, m.id};
    if (cancel_requested) control->cancel_token().cancel(bus::kCancelledMessage);
    write_progress(TaskProgress{});  // a reader sees that it runs
    bus::RetryPolicy policy{o_.max_retries, o_.retry_delay, 30};
    bus::TaskOutcome outcome =
        bus::run_delivery(handler, request, *control, static_cast<int>(*retries), policy);
    bus::announce_final(options, m.id, request, outcome);
    switch (outcome.kind) {
      case bus::TaskOutcome::Kind::success: {
        const Transcription& t = *outcome.transcription;
        finish(client, m.id, token,
               huey::write_success(t.text, boost::json::serialize(to_json(t))));
        spdlog::info("task {}: SUCCESS", m.id);
        break;
      }
      case bus::TaskOutcome::Kind::failed:
        fail(outcome.error);
        break;
      case bus::TaskOutcome::Kind::cancelled:
        finish(client, m.id, token, huey::write_error(m.id, outcome.error, true));
        spdlog::info("task {}: cancelled", m.id);
        break;
      case bus::TaskOutcome::Kind::retry:
        spdlog::warn("task {}: {}; retrying in {:.1f} s", m.id, outcome.error, outcome.retry_delay);
        sleep_unless_stopped(stop, outcome.retry_delay);
        client.eval(kRetryScript, {task_key(m.id)}, {});
        queue_.requeue(client, token);
        return;
    }
    if (options.on_finished) options.on_finished(request);
  }

  void finish(RedisClient& client, const std::string& id, const std::string& token,
              const std::string& value) {
    client.eval(kFinishScript,
                {keys_.results, task_key(id), queue_.keys().in_flight, queue_.keys().leases},
                {id, value, std::to_string(o_.result_expires), token, huey::revoke_key(id)});
  }

  // Renews this process's leases, puts back deliveries whose worker stopped, and moves due
  // scheduled messages to the queue.
  void maintenance_loop(std::stop_token stop) {
    RedisClient client(o_.url);
    bus::run_maintenance_loop("huey", stop, queue_.maintenance_period(), [&] {
      std::vector<std::string> tokens;
      {
        std::lock_guard lock(tokens_mutex_);
        for (const auto& [id, token] : tokens_) tokens.push_back(token);
      }
      queue_.renew(client, tokens);
      if (long long restored = queue_.restore(client); restored > 0) {
        spdlog::warn("huey: {} task(s) whose worker stopped put back on the queue", restored);
      }
      client.eval(kDueScript, {keys_.schedule, keys_.queue},
                  {seconds_text(huey::schedule_score(now_seconds()))});
    });
  }

  HueyOptions o_;
  huey::Keys keys_;
  std::string ours_;  // prefix of this service's own keys beside Huey's
  std::mutex api_mutex_;
  RedisClient api_;
  bus::RedisLeaseQueue queue_;  // Huey's queue, leased by our workers
  bus::RunningTasks running_;
  std::mutex tokens_mutex_;
  std::map<std::string, std::string> tokens_;  // task id -> lease token, while it runs here
};

}  // namespace

std::unique_ptr<MessageBus> make_huey_bus(const Config& config) {
  HueyOptions o;
  std::string host = config.get_string("HUEY_BUS_REDIS_HOST");
  std::string url = bus::is_redis_url(host) ? host : "redis://" + host;
  o.url = bus::parse_redis_url(url, "HUEY_BUS_REDIS_HOST");
  o.name = config.get_string("HUEY_BUS_NAME");
  o.task_name = config.get_string("HUEY_BUS_TASK_NAME");
  o.visibility_timeout = config.get_double("HUEY_BUS_VISIBILITY_TIMEOUT");
  o.result_expires = config.get_int("HUEY_BUS_RESULT_EXPIRES");
  o.max_retries = static_cast<int>(config.get_int("HUEY_BUS_MAX_RETRIES"));
  o.max_deliveries = static_cast<int>(config.get_int("HUEY_BUS_MAX_DELIVERIES"));
  o.retry_delay = config.get_double("HUEY_BUS_RETRY_DELAY_SECONDS");
  return std::make_unique<HueyBus>(std::move(o));
}

}  // namespace sra
