// RedisLeaseQueue: the reliable queue every Redis bus here is built on (Huey's, the redis bus's,
// and kombu's Redis transport under the Celery bus), and the loops of the workers that drain it.
//
// take() moves the next message from the queue into a lease in one atomic script: the message is
// kept in the in-flight hash under its token, the token in the lease set scored with the time the
// lease was last renewed. Its worker then acknowledges it (ack), puts it back (requeue), or dies:
// every worker's maintenance renews the leases of the deliveries it runs (renew) and puts back
// the deliveries whose lease was not renewed for the visibility timeout (restore). No crash can
// lose a message. The layouts differ only in their key names and in what a lease holds:
//   plain - the message as it was queued, under a token of the caller's (Huey: a new UUID per
//           delivery) or the message itself (the redis bus: a task id); restored to the queue;
//   kombu - kombu's [message, exchange, routing key] triple under the message's delivery tag,
//           restored to its routing key's list with headers.redelivered set, as kombu does, so
//           that Python Celery workers share the queue.
//
// A RedisLeaseQueue is immutable: safe from any thread, each with its own RedisClient.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "bus/redis_client.h"

namespace sra::bus {

enum class LeaseFormat { plain, kombu };

struct LeaseKeys {
  std::vector<std::string> queues;  // taken from in this order (kombu's priority lists)
  std::string in_flight;            // hash: token -> what the lease holds
  std::string leases;               // sorted set: token -> when the lease was last renewed
};

struct Lease {
  std::string message;  // as it was queued
  std::string token;    // empty for a kombu message without a delivery tag (not leased)
};

class RedisLeaseQueue {
 public:
  RedisLeaseQueue(LeaseKeys keys, LeaseFormat format, double visibility_timeout_seconds)
      : keys_(std::move(keys)), format_(format), visibility_timeout_(visibility_timeout_seconds) {}

  // The next message, leased; nullopt when the queues are empty. `token` (plain format) names the
  // lease; empty: the message itself does. `routing_key` (kombu) is where a restore sends it.
  std::optional<Lease> take(RedisClient& client, const std::string& token = "",
                            const std::string& routing_key = "") const;
  void ack(RedisClient& client, const std::string& token) const;
  // Ends the lease and queues `message` at the back (LPUSH: the next to be taken after the rest),
  // or, when `message` is empty, what the lease held.
  void requeue(RedisClient& client, const std::string& token,
               const std::string& message = "") const;
  // Renews the leases of deliveries that run here.
  void renew(RedisClient& client, const std::vector<std::string>& tokens) const;
  // Puts back deliveries whose lease was not renewed for the visibility timeout; how many.
  long long restore(RedisClient& client) const;
  // Messages held in leases now.
  long long leased(RedisClient& client) const;

  const LeaseKeys& keys() const { return keys_; }
  // How often maintenance should run: often enough to renew well within the timeout.
  double maintenance_period() const;

 private:
  LeaseKeys keys_;
  LeaseFormat format_;
  double visibility_timeout_;
};

// Runs `step` until `stop`. Each step takes and handles at most one message and says whether it
// took one; an idle worker waits `poll_seconds`, and a failed step (the broker gone, a damaged
// reply: any std::exception) is logged as `what` and retried after a backoff of 0.5 s doubling
// to 10 s.
void run_worker_loop(std::string_view what, std::stop_token stop, double poll_seconds,
                     const std::function<bool()>& step);

// Runs `step` every `period` seconds until `stop`, logging a failure as `what` and going on.
void run_maintenance_loop(std::string_view what, std::stop_token stop, double period,
                          const std::function<void()>& step);

}  // namespace sra::bus
