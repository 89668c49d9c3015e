// RedisClient: one connection to a Redis server (hiredis), with commands as argument vectors and
// replies as plain values. Used by one thread at a time; a failed connection throws
// sra::Error(unavailable) naming the server, and the next command reconnects.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace sra::bus {

// redis://[[user]:password@]host[:port][/db]
struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
  std::string text;  // the URL without its password, for messages
};
// Throws sra::Error(config) naming `variable` for a URL it cannot read.
RedisUrl parse_redis_url(const std::string& url, const std::string& variable);

struct RedisReply {
  enum class Type { nil, string, integer, array, status, error } type = Type::nil;
  std::string str;
  long long integer = 0;
  std::vector<RedisReply> elements;
  bool is_nil() const { return type == Type::nil; }
};

// Runs `f` and, if it fails for the connection (a server restarted since the last command), once
// more: a RedisClient reconnects on the command after a failure.
template <typename F>
auto with_reconnect(F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception&) {
    return f();
  }
}

class RedisClient {
 public:
  explicit RedisClient(RedisUrl url, double timeout_seconds = 5);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command; a Redis error reply throws sra::Error(unavailable) with its text.
  RedisReply command(const std::vector<std::string>& argv);
  // EVALSHA with EVAL fallback: loads `script` on first use.
  RedisReply eval(const std::string& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args);
  const RedisUrl& url() const { return url_; }

 private:
  void connect();
  void drop();

  RedisUrl url_;
  double timeout_seconds_;
  redisContext* context_ = nullptr;
};

}  // namespace sra::bus
