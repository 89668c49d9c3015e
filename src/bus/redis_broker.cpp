// kombu's Redis transport, done reliably: a message is taken from the queue and recorded as
// unacknowledged (kombu's `unacked` hash and `unacked_index` sorted set) in one atomic script,
// so no crash can lose it; workers keep extending the deliveries they run, and any worker puts
// deliveries older than the visibility timeout back on the queue, as kombu does.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "bus/celery_broker.h"
#include "bus/redis_client.h"
#include "bus/timing.h"
#include "core/errors.h"
#include "core/uuid.h"

namespace sra::bus {
namespace {

constexpr const char* kSep = "\x06\x16";

// KEYS: the queue's priority lists in order, unacked, unacked_index. ARGV: now, queue.
constexpr const char* kPopScript = R"lua(
local n = #KEYS - 2
for i = 1, n do
  local m = redis.call('RPOP', KEYS[i])
  if m then
    local ok, msg = pcall(cjson.decode, m)
    local tag = nil
    if ok and type(msg) == 'table' and type(msg['properties']) == 'table' then
      tag = msg['properties']['delivery_tag']
    end
    if type(tag) ~= 'string' then return {m, ''} end
    redis.call('HSET', KEYS[n + 1], tag, '[' .. m .. ', "", "' .. ARGV[2] .. '"]')
    redis.call('ZADD', KEYS[n + 2], ARGV[1], tag)
    return {m, tag}
  end
end
return false
)lua";

// KEYS: unacked, unacked_index. ARGV: tag.
constexpr const char* kAckScript = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
)lua";

// KEYS: queue, unacked, unacked_index. ARGV: new message, tag.
constexpr const char* kRequeueScript = R"lua(
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
)lua";

// KEYS: unacked, unacked_index. ARGV: cutoff time.
constexpr const char* kRestoreScript = R"lua(
local tags = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, tag in ipairs(tags) do
  local p = redis.call('HGET', KEYS[1], tag)
  redis.call('ZREM', KEYS[2], tag)
  redis.call('HDEL', KEYS[1], tag)
  if p then
    local triple = cjson.decode(p)
    local msg = triple[1]
    if type(msg['headers']) == 'table' then msg['headers']['redelivered'] = true end
    redis.call('RPUSH', triple[3], cjson.encode(msg))
  end
end
return #tags
)lua";

class RedisBroker final : public CeleryBroker {
 public:
  explicit RedisBroker(RedisBrokerOptions options)
      : options_(std::move(options)),
        url_(parse_redis_url(options_.url, "CELERY_BUS_BROKER")),
        publisher_(url_) {
    queues_.push_back(options_.queue);
    for (int pri : {3, 6, 9}) queues_.push_back(options_.queue + kSep + std::to_string(pri));
  }

  void publish(const CeleryTask& task) override {
    std::string envelope = redis_envelope(task, options_.queue, make_uuid());
    std::lock_guard lock(publish_mutex_);
    with_reconnect([&] {
      publisher_.command({"SADD", "_kombu.binding." + options_.queue,
                          options_.queue + kSep + kSep + options_.queue});
      return publisher_.command({"LPUSH", options_.queue, envelope});
    });
  }

  void check_ready() override {
    std::lock_guard lock(publish_mutex_);
    with_reconnect([&] { return publisher_.command({"PING"}); });
  }

  std::int64_t unfinished() override {
    std::lock_guard lock(publish_mutex_);
    std::int64_t count = 0;
    for (const auto& list : queues_) {
      count += with_reconnect([&] { return publisher_.command({"LLEN", list}); }).integer;
    }
    return count + with_reconnect([&] { return publisher_.command({"HLEN", "unacked"}); }).integer;
  }

  void consume(int concurrency, const DeliveryHandler& handler, std::stop_token stop) override {
    std::vector<std::jthread> threads;
    for (int i = 0; i < std::max(1, concurrency); ++i) {
      threads.emplace_back([this, &handler, stop] { worker_loop(handler, stop); });
    }
    maintenance_loop(stop);
  }

 private:
  void worker_loop(const DeliveryHandler& handler, std::stop_token stop) {
    RedisClient client(url_);
    double backoff = 0.5;
    while (!stop.stop_requested()) {
      try {
        std::vector<std::string> keys = queues_;
        keys.push_back("unacked");
        keys.push_back("unacked_index");
        RedisReply r = client.eval(kPopScript, keys, {seconds_text(now_seconds()), options_.queue});
        backoff = 0.5;
        if (r.type != RedisReply::Type::array || r.elements.size() != 2) {
          sleep_unless_stopped(stop, options_.poll_seconds);
          continue;
        }
        const std::string& message = r.elements[0].str;
        const std::string& tag = r.elements[1].str;
        CeleryTask task;
        try {
          task = parse_redis_envelope(message, nullptr);
        } catch (const std::exception& e) {
          spdlog::error("celery: dropping a message that is not a Celery task: {}", e.what());
          if (!tag.empty()) client.eval(kAckScript, {"unacked", "unacked_index"}, {tag});
          continue;
        }
        // While the handler runs the delivery is kept alive; whatever happens next (even a lost
        // connection before the acknowledgement), it is no longer extended, so that the
        // visibility timeout can hand it to another worker.
        Outcome outcome;
        {
          InFlight guard(*this, tag);
          outcome = handler(task);
        }
        if (outcome == Outcome::ack) {
          client.eval(kAckScript, {"unacked", "unacked_index"}, {tag});
        } else if (outcome == Outcome::release) {
          // Left unacknowledged: restored after the visibility timeout.
        } else {
          CeleryTask again = task;
          ++again.retries;
          client.eval(kRequeueScript, {options_.queue, "unacked", "unacked_index"},
                      {redis_envelope(again, options_.queue, make_uuid()), tag});
        }
      } catch (const std::exception& e) {
        spdlog::warn("celery worker: {}; retrying in {:.1f} s", e.what(), backoff);
        sleep_unless_stopped(stop, backoff);
        backoff = std::min(backoff * 2, 10.0);
      }
    }
  }

  struct InFlight {
    InFlight(RedisBroker& b, std::string t) : broker(b), tag(std::move(t)) {
      broker.track(tag, true);
    }
    ~InFlight() { broker.track(tag, false); }
    RedisBroker& broker;
    std::string tag;
  };

  void track(const std::string& tag, bool running) {
    std::lock_guard lock(inflight_mutex_);
    if (running) {
      inflight_.insert(tag);
    } else {
      inflight_.erase(tag);
    }
  }

  // Extends this process's deliveries and restores those whose worker died.
  void maintenance_loop(std::stop_token stop) {
    RedisClient client(url_);
    const double period = std::clamp(options_.visibility_timeout / 4, 0.2, 10.0);
    while (!stop.stop_requested()) {
      try {
        std::vector<std::string> tags;
        {
          std::lock_guard lock(inflight_mutex_);
          tags.assign(inflight_.begin(), inflight_.end());
        }
        for (const auto& tag : tags)
          client.command({"ZADD", "unacked_index", "XX", seconds_text(now_seconds()), tag});
        RedisReply restored =
            client.eval(kRestoreScript, {"unacked", "unacked_index"},
                        {seconds_text(now_seconds() - options_.visibility_timeout)});
        if (restored.integer > 0) {
          spdlog::warn(
              "celery: {} unacknowledged task(s) restored to the queue after the visibility "
              "timeout",
              restored.integer);
        }
      } catch (const std::exception& e) {
        spdlog::warn("celery maintenance: {}", e.what());
      }
      sleep_unless_stopped(stop, period);
    }
  }

  RedisBrokerOptions options_;
  RedisUrl url_;
  std::vector<std::string> queues_;
  std::mutex publish_mutex_;
  RedisClient publisher_;
  std::mutex inflight_mutex_;
  std::set<std::string> inflight_;
};

}  // namespace

std::unique_ptr<CeleryBroker> make_redis_broker(const RedisBrokerOptions& options) {
  return std::make_unique<RedisBroker>(options);
}

}  // namespace sra::bus
