// kombu's Redis transport, done reliably: a RedisLeaseQueue in kombu's layout (the message taken
// and recorded as unacknowledged in `unacked` and `unacked_index` in one atomic script, so no
// crash can lose it; workers renew the deliveries they run, and any worker puts deliveries older
// than the visibility timeout back on the queue, as kombu does).
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
#include "bus/redis_lease_queue.h"
#include "bus/timing.h"
#include "core/errors.h"
#include "core/uuid.h"

namespace sra::bus {
namespace {

constexpr const char* kSep = "\x06\x16";

class RedisBroker final : public CeleryBroker {
 public:
  explicit RedisBroker(RedisBrokerOptions options)
      : options_(std::move(options)),
        url_(parse_redis_url(options_.url, "CELERY_BUS_BROKER")),
        publisher_(url_),
        queue_(lease_keys(options_.queue), LeaseFormat::kombu, options_.visibility_timeout) {}

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
    for (const auto& list : queue_.keys().queues) {
      count += with_reconnect([&] { return publisher_.command({"LLEN", list}); }).integer;
    }
    return count + with_reconnect([&] { return queue_.leased(publisher_); });
  }

  void consume(int concurrency, const DeliveryHandler& handler, std::stop_token stop) override {
    std::vector<std::jthread> threads;
    for (int i = 0; i < std::max(1, concurrency); ++i) {
      threads.emplace_back([this, &handler, stop] { worker_loop(handler, stop); });
    }
    maintenance_loop(stop);
  }

 private:
  // kombu's keys: the queue and its priority lists, `unacked` and `unacked_index`.
  static LeaseKeys lease_keys(const std::string& queue) {
    LeaseKeys keys{{queue}, "unacked", "unacked_index"};
    for (int pri : {3, 6, 9}) keys.queues.push_back(queue + kSep + std::to_string(pri));
    return keys;
  }

  void worker_loop(const DeliveryHandler& handler, std::stop_token stop) {
    RedisClient client(url_);
    run_worker_loop("celery", stop, options_.poll_seconds, [&] {
      std::optional<Lease> lease = queue_.take(client, "", options_.queue);
      if (!lease) return false;
      CeleryTask task;
      try {
        task = parse_redis_envelope(lease->message, nullptr);
      } catch (const std::exception& e) {
        spdlog::error("celery: dropping a message that is not a Celery task: {}", e.what());
        if (!lease->token.empty()) queue_.ack(client, lease->token);
        return true;
      }
      // While the handler runs the delivery is kept alive; whatever happens next (even a lost
      // connection before the acknowledgement), it is no longer extended, so that the
      // visibility timeout can hand it to another worker.
      Outcome outcome;
      {
        InFlight guard(*this, lease->token);
        outcome = handler(task);
      }
      if (outcome == Outcome::ack) {
        queue_.ack(client, lease->token);
      } else if (outcome == Outcome::requeue) {
        CeleryTask again = task;
        ++again.retries;
        queue_.requeue(client, lease->token, redis_envelope(again, options_.queue, make_uuid()));
      }  // Outcome::release: left leased, restored after the visibility timeout.
      return true;
    });
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

  // Renews this process's deliveries and restores those whose worker died.
  void maintenance_loop(std::stop_token stop) {
    RedisClient client(url_);
    run_maintenance_loop("celery", stop, queue_.maintenance_period(), [&] {
      std::vector<std::string> tags;
      {
        std::lock_guard lock(inflight_mutex_);
        tags.assign(inflight_.begin(), inflight_.end());
      }
      queue_.renew(client, tags);
      if (long long restored = queue_.restore(client); restored > 0) {
        spdlog::warn(
            "celery: {} unacknowledged task(s) restored to the queue after the visibility timeout",
            restored);
      }
    });
  }

  RedisBrokerOptions options_;
  RedisUrl url_;
  std::mutex publish_mutex_;
  RedisClient publisher_;
  RedisLeaseQueue queue_;
  std::mutex inflight_mutex_;
  std::set<std::string> inflight_;
};

}  // namespace

std::unique_ptr<CeleryBroker> make_redis_broker(const RedisBrokerOptions& options) {
  return std::make_unique<RedisBroker>(options);
}

}  // namespace sra::bus
