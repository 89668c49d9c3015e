// RedisClient: one connection to a Redis server over TCP or TLS (Boost.Asio + OpenSSL, RESP 2),
// with commands as argument vectors and replies as plain values. Every connect, write and read
// has a deadline. Used by one thread at a time; a failed connection throws
// sra::Error(unavailable) naming the server (never its password), and the next command
// reconnects.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/resp_reader.h"
#include "bus/tls_options.h"

namespace sra::bus {

// redis://[[user]:password@]host[:port][/db][?ssl_...] or rediss://... (TLS, default port 6379).
struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // Redis 6 ACL user; empty: the default user
  std::string password;  // empty: no AUTH
  int db = 0;
  TlsOptions tls;
  std::string text;  // the URL without its credentials, for messages
};
// Throws sra::Error(config) naming `variable` for a URL it cannot read; the message carries the
// URL with its password masked.
RedisUrl parse_redis_url(const std::string& url, const std::string& variable);
// True for the schemes parse_redis_url() reads.
bool is_redis_url(const std::string& url);

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
  class Connection;
  void connect();
  RedisReply round_trip(const std::vector<std::string>& argv);

  RedisUrl url_;
  double timeout_seconds_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace sra::bus
