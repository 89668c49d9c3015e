#include "bus/redis_lease_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "bus/timing.h"

namespace sra::bus {
namespace {

// KEYS: the queues in order, in flight, leases. ARGV: now, format, token, routing key.
constexpr const char* kTakeScript = R"lua(
local n = #KEYS - 2
for i = 1, n do
  local m = redis.call('RPOP', KEYS[i])
  if m then
    local token, held = ARGV[3], m
    if ARGV[2] == 'kombu' then
      local ok, msg = pcall(cjson.decode, m)
      token = nil
      if ok and type(msg) == 'table' and type(msg['properties']) == 'table' then
        token = msg['properties']['delivery_tag']
      end
      if type(token) ~= 'string' then return {m, ''} end
      held = '[' .. m .. ', "", "' .. ARGV[4] .. '"]'
    elseif token == '' then
      token = m
    end
    redis.call('HSET', KEYS[n + 1], token, held)
    redis.call('ZADD', KEYS[n + 2], ARGV[1], token)
    return {m, token}
  end
end
return false
)lua";

// KEYS: in flight, leases. ARGV: token.
constexpr const char* kAckScript = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
)lua";

// KEYS: in flight, leases, queue. ARGV: token, message ('' = what the lease held).
constexpr const char* kRequeueScript = R"lua(
local m = ARGV[2]
if m == '' then m = redis.call('HGET', KEYS[1], ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if m then redis.call('LPUSH', KEYS[3], m) end
return 1
)lua";

// KEYS: in flight, leases, queue. ARGV: cutoff, format. Deliveries whose worker stopped go back
// first (RPUSH: the next taken).
constexpr const char* kRestoreScript = R"lua(
local tokens = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, t in ipairs(tokens) do
  local held = redis.call('HGET', KEYS[1], t)
  redis.call('ZREM', KEYS[2], t)
  redis.call('HDEL', KEYS[1], t)
  if held then
    if ARGV[2] == 'kombu' then
      local triple = cjson.decode(held)
      local msg = triple[1]
      if type(msg['headers']) == 'table' then msg['headers']['redelivered'] = true end
      redis.call('RPUSH', triple[3], cjson.encode(msg))
    else
      redis.call('RPUSH', KEYS[3], held)
    end
  end
end
return #tokens
)lua";

const char* format_name(LeaseFormat f) {
  return f == LeaseFormat::kombu ? "kombu" : "plain";
}

}  // namespace

std::optional<Lease> RedisLeaseQueue::take(RedisClient& client, const std::string& token,
                                           const std::string& routing_key) const {
  std::vector<std::string> keys = keys_.queues;
  keys.push_back(keys_.in_flight);
  keys.push_back(keys_.leases);
  RedisReply r = client.eval(
      kTakeScript, keys, {seconds_text(now_seconds()), format_name(format_), token, routing_key});
  if (r.type != RedisReply::Type::array || r.elements.size() != 2) return std::nullopt;
  return Lease{r.elements[0].str, r.elements[1].str};
}

void RedisLeaseQueue::ack(RedisClient& client, const std::string& token) const {
  client.eval(kAckScript, {keys_.in_flight, keys_.leases}, {token});
}

void RedisLeaseQueue::requeue(RedisClient& client, const std::string& token,
                              const std::string& message) const {
  client.eval(kRequeueScript, {keys_.in_flight, keys_.leases, keys_.queues.front()},
              {token, message});
}

void RedisLeaseQueue::renew(RedisClient& client, const std::vector<std::string>& tokens) const {
  for (const auto& token : tokens) {
    client.command({"ZADD", keys_.leases, "XX", seconds_text(now_seconds()), token});
  }
}

long long RedisLeaseQueue::restore(RedisClient& client) const {
  return client
      .eval(kRestoreScript, {keys_.in_flight, keys_.leases, keys_.queues.front()},
            {seconds_text(now_seconds() - visibility_timeout_), format_name(format_)})
      .integer;
}

long long RedisLeaseQueue::leased(RedisClient& client) const {
  return client.command({"HLEN", keys_.in_flight}).integer;
}

double RedisLeaseQueue::maintenance_period() const {
  return std::clamp(visibility_timeout_ / 4, 0.2, 10.0);
}

void run_worker_loop(std::string_view what, std::stop_token stop, double poll_seconds,
                     const std::function<bool()>& step) {
  double backoff = 0.5;
  while (!stop.stop_requested()) {
    try {
      const bool took = step();
      backoff = 0.5;
      if (!took) sleep_unless_stopped(stop, poll_seconds);
    } catch (const std::exception& e) {
      spdlog::warn("{} worker: {}; retrying in {:.1f} s", what, e.what(), backoff);
      sleep_unless_stopped(stop, backoff);
      backoff = std::min(backoff * 2, 10.0);
    }
  }
}

void run_maintenance_loop(std::string_view what, std::stop_token stop, double period,
                          const std::function<void()>& step) {
  while (!stop.stop_requested()) {
    try {
      step();
    } catch (const std::exception& e) {
      spdlog::warn("{} maintenance: {}", what, e.what());
    }
    sleep_unless_stopped(stop, period);
  }
}

}  // namespace sra::bus
