#include "bus/redis_cancel_watch.h"

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

}  // namespace sra::bus
