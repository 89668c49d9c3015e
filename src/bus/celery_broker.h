// The transports of the Celery bus: kombu's Redis transport and AMQP (RabbitMQ). A broker
// publishes task messages and, for workers, delivers them to a handler and acknowledges or
// requeues each as the handler says. Internal to the Celery bus.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "bus/celery_protocol.h"

namespace sra::bus {

enum class Outcome {
  ack,      // done (result stored): remove the message
  requeue,  // try again later: publish it again with retries + 1, remove this delivery
  release,  // the handler could not finish (backend down): give the delivery back as it is
};

using DeliveryHandler = std::function<Outcome(const CeleryTask&)>;

class CeleryBroker {
 public:
  virtual ~CeleryBroker() = default;
  // Durably enqueues the task; thread-safe. Throws sra::Error(unavailable).
  virtual void publish(const CeleryTask& task) = 0;
  // Delivers tasks to `handler` on `concurrency` threads until `stop`; reconnects with backoff.
  virtual void consume(int concurrency, const DeliveryHandler& handler, std::stop_token stop) = 0;
  // Throws sra::Error(unavailable) if the broker cannot be reached.
  virtual void check_ready() = 0;
  // Messages of the queue not yet acknowledged, as the broker counts them (RabbitMQ: those not
  // yet delivered). Throws sra::Error(unavailable).
  virtual std::int64_t unfinished() = 0;
};

struct RedisBrokerOptions {
  std::string url;                   // redis://...
  std::string queue = "celery";      // queue name (kombu's priority lists derive from it)
  double visibility_timeout = 3600;  // seconds before an unacknowledged delivery is restored
  double poll_seconds = 0.1;         // how often idle workers look for work
};
std::unique_ptr<CeleryBroker> make_redis_broker(const RedisBrokerOptions& options);

struct AmqpBrokerOptions {
  std::string url;               // amqp://user:password@host:port/vhost
  std::string queue = "celery";  // queue name, bound to the direct exchange of the same name
};
std::unique_ptr<CeleryBroker> make_amqp_broker(const AmqpBrokerOptions& options);

}  // namespace sra::bus
