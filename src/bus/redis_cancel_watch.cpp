#include "bus/redis_cancel_watch.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "core/errors.h"

namespace sra::bus {

void watch_redis_cancel_flags(RunningTasks& running, const RedisUrl& url,
                              const std::function<std::string(const std::string&)>& hash_key,
                              std::stop_token stop) {
  RedisClient client(url);
  running.watch(
      [&](const std::vector<std::string>& ids) {
        std::vector<std::string> out;
        for (const auto& id : ids) {
          auto r = with_reconnect([&] { return client.command({"HGET", hash_key(id), "cancel"}); });
          if (r.str == "1") out.push_back(id);
        }
        return out;
      },
      1.0, stop);
}

void run_redis_worker(int concurrency, const std::function<void()>& work, RunningTasks& running,
                      const RedisUrl& url,
                      const std::function<std::string(const std::string&)>& hash_key,
                      std::stop_token stop, const std::function<void()>& maintenance) {
  std::vector<std::jthread> threads;
  for (int i = 0; i < std::max(1, concurrency); ++i) threads.emplace_back(work);
  threads.emplace_back([&] { watch_redis_cancel_flags(running, url, hash_key, stop); });
  maintenance();
}

std::optional<CancelOutcome> cancel_outcome_from_reply(const RedisReply& reply,
                                                       std::string* file_id) {
  if (reply.elements.size() != 2) throw internal_error("unexpected reply to the cancel script");
  const std::string& outcome = reply.elements[0].str;
  if (outcome == "cancelled") {
    if (file_id) *file_id = reply.elements[1].str;
    return CancelOutcome::cancelled;
  }
  if (outcome == "cancelling") return CancelOutcome::cancelling;
  if (outcome == "finished") return CancelOutcome::finished;
  return std::nullopt;
}

}  // namespace sra::bus
