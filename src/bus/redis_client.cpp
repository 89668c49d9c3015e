#include "bus/redis_client.h"

#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <optional>

#include "core/errors.h"
#include "core/text.h"

namespace sra::bus {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return to_hex({reinterpret_cast<const char*>(digest), sizeof digest});
}

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

bool is_redis_url(const std::string& url) {
  return url.rfind("redis://", 0) == 0 || url.rfind("rediss://", 0) == 0;
}

RedisUrl parse_redis_url(const std::string& url, const std::string& variable) {
  RedisUrl out;
  std::string rest;
  if (url.rfind("redis://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("rediss://", 0) == 0) {
    rest = url.substr(9);
    out.tls.enabled = true;
  } else {
    throw config_error(variable + "=" + redact_url(url) + " is not a redis:// or rediss:// URL");
  }
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    auto colon = auth.find(':');
    if (colon == std::string::npos) {
      out.password = percent_decode(auth);  // redis-py reads "redis://secret@host" so too
    } else {
      out.user = percent_decode(auth.substr(0, colon));
      out.password = percent_decode(auth.substr(colon + 1));
    }
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        std::size_t used = 0;
        out.db = std::stoi(db, &used);
        if (used != db.size() || out.db < 0) throw std::invalid_argument(db);
      } catch (...) {
        throw config_error(variable + "=" + redact_url(url) + ": the database must be a number");
      }
    }
  }
  std::string port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    auto close = rest.find(']');
    if (close == std::string::npos)
      throw config_error(variable + "=" + redact_url(url) + ": unclosed '[' in the host");
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    port = rest.substr(colon + 1);
    if (colon > 0) out.host = rest.substr(0, colon);
  } else if (!rest.empty()) {
    out.host = rest;
  }
  if (!port.empty()) {
    try {
      std::size_t used = 0;
      out.port = std::stoi(port, &used);
      if (used != port.size() || out.port < 1 || out.port > 65535)
        throw std::invalid_argument(port);
    } catch (...) {
      throw config_error(variable + "=" + redact_url(url) + ": the port must be a number");
    }
  }
  read_tls_parameters(parse_url_query(query), variable, out.tls);
  out.text = std::string(out.tls.enabled ? "rediss://" : "redis://") + out.host + ":" +
             std::to_string(out.port) + "/" + std::to_string(out.db);
  return out;
}

// One TCP or TLS connection with a deadline on each operation: the operation runs on a private
// io_context for at most the timeout, then the socket is closed and the caller gets an error.
class RedisClient::Connection {
 public:
  Connection(const RedisUrl& url, double timeout_seconds)
      : timeout_(std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000))),
        tcp_(io_),
        what_("Redis at " + url.text) {
    tcp::resolver resolver(io_);
    tcp::resolver::results_type endpoints;
    run(
        [&](auto done) {
          resolver.async_resolve(url.host, std::to_string(url.port),
                                 [done, &endpoints](const boost::system::error_code& ec,
                                                    tcp::resolver::results_type results) mutable {
                                   endpoints = std::move(results);
                                   done(ec, 0);
                                 });
        },
        "is unreachable (resolving its host)", [&] { resolver.cancel(); });
    if (url.tls.enabled) {
      ssl_.emplace(asio::ssl::context::tls_client);
      ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
      boost::system::error_code ec;
      if (!url.tls.ca_file.empty()) {
        ssl_->load_verify_file(url.tls.ca_file, ec);
        if (ec) throw unavailable(what_ + ": cannot read the CA file " + url.tls.ca_file);
      } else {
        ssl_->set_default_verify_paths();
      }
      if (!url.tls.cert_file.empty()) {
        ssl_->use_certificate_chain_file(url.tls.cert_file, ec);
        if (ec) throw unavailable(what_ + ": cannot read the certificate " + url.tls.cert_file);
        ssl_->use_private_key_file(url.tls.key_file.empty() ? url.tls.cert_file : url.tls.key_file,
                                   asio::ssl::context::pem, ec);
        if (ec) throw unavailable(what_ + ": cannot read the private key");
      }
      ssl_->set_verify_mode(url.tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
      if (url.tls.verify_hostname)
        ssl_->set_verify_callback(asio::ssl::host_name_verification(url.host));
      tls_.emplace(io_, *ssl_);
      if (!is_ip_address(url.host))
        SSL_set_tlsext_host_name(tls_->native_handle(), url.host.c_str());
    }
    run(
        [&](auto done) {
          asio::async_connect(socket(), endpoints,
                              [done](const boost::system::error_code& ec,
                                     const tcp::endpoint&) mutable { done(ec, 0); });
        },
        "is unreachable");
    socket().set_option(tcp::no_delay(true));
    if (tls_) {
      run(
          [&](auto done) {
            tls_->async_handshake(
                asio::ssl::stream_base::client,
                [done](const boost::system::error_code& ec) mutable { done(ec, 0); });
          },
          "refused the TLS handshake");
    }
  }

  ~Connection() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }

  void write(const std::string& bytes) {
    run(
        [&](auto done) {
          auto handler = [done](const boost::system::error_code& ec, std::size_t n) mutable {
            done(ec, n);
          };
          if (tls_) {
            asio::async_write(*tls_, asio::buffer(bytes), handler);
          } else {
            asio::async_write(tcp_, asio::buffer(bytes), handler);
          }
        },
        "failed (sending)");
  }

  RedisReply read_reply() {
    RedisReply reply;
    for (;;) {
      if (!in_.empty()) {
        std::size_t used = parse_resp_reply(in_, reply);
        if (used > 0) {
          in_.erase(0, used);
          return reply;
        }
      }
      std::size_t n = run(
          [&](auto done) {
            auto handler = [done](const boost::system::error_code& ec, std::size_t got) mutable {
              done(ec, got);
            };
            if (tls_) {
              tls_->async_read_some(asio::buffer(chunk_), handler);
            } else {
              tcp_.async_read_some(asio::buffer(chunk_), handler);
            }
          },
          "failed (reading its reply)");
      in_.append(chunk_.data(), n);
    }
  }

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : tcp_; }

  // Starts an operation with start(done) and runs it to its end or the deadline; past the
  // deadline `cancel` (default: closing the socket) makes the operation end at once.
  template <typename Start>
  std::size_t run(Start start, const std::string& what,
                  const std::function<void()>& cancel = nullptr) {
    boost::system::error_code result = asio::error::would_block;
    std::size_t transferred = 0;
    start([&result, &transferred](const boost::system::error_code& ec, std::size_t n) {
      result = ec;
      transferred = n;
    });
    io_.restart();
    io_.run_for(timeout_);
    if (result == asio::error::would_block) {
      if (cancel) {
        cancel();
      } else {
        boost::system::error_code ignored;
        socket().close(ignored);
      }
      io_.restart();
      io_.run();  // the cancelled operation ends before its locals go
      throw unavailable(what_ + " " + what + ": no answer within " +
                        std::to_string(timeout_.count() / 1000.0).substr(0, 4) + " s");
    }
    if (result) throw unavailable(what_ + " " + what + ": " + result.message());
    return transferred;
  }

  std::chrono::milliseconds timeout_;
  asio::io_context io_;
  tcp::socket tcp_;
  std::optional<asio::ssl::context> ssl_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  std::string what_;
  std::string in_;
  std::array<char, 64 * 1024> chunk_{};
};

RedisClient::RedisClient(RedisUrl url, double timeout_seconds)
    : url_(std::move(url)), timeout_seconds_(timeout_seconds) {}

RedisClient::~RedisClient() = default;

void RedisClient::connect() {
  connection_ = std::make_unique<Connection>(url_, timeout_seconds_);
  try {
    if (!url_.password.empty()) {
      if (url_.user.empty()) {
        command({"AUTH", url_.password});
      } else {
        command({"AUTH", url_.user, url_.password});
      }
    }
    if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
  } catch (...) {
    connection_.reset();  // never keep a connection that is not authenticated or on the wrong db
    throw;
  }
}

RedisReply RedisClient::round_trip(const std::vector<std::string>& argv) {
  if (!connection_) connect();
  try {
    connection_->write(encode_resp_command(argv));
    return connection_->read_reply();
  } catch (...) {
    connection_.reset();  // a half-read reply leaves the stream unusable
    throw;
  }
}

RedisReply RedisClient::command(const std::vector<std::string>& argv) {
  RedisReply reply = round_trip(argv);
  if (reply.type == RedisReply::Type::error) {
    throw unavailable("Redis at " + url_.text + " answered " + argv[0] + " with: " + reply.str);
  }
  return reply;
}

RedisReply RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  std::vector<std::string> argv{"EVALSHA", sha1_hex(script), std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  RedisReply reply = round_trip(argv);
  // NOSCRIPT is the error code Redis puts first: the script cache does not hold it (yet).
  if (reply.type == RedisReply::Type::error && reply.str.rfind("NOSCRIPT", 0) == 0) {
    argv[0] = "EVAL";
    argv[1] = script;
    reply = round_trip(argv);
  }
  if (reply.type == RedisReply::Type::error) {
    throw unavailable("Redis at " + url_.text + " answered EVAL with: " + reply.str);
  }
  return reply;
}

}  // namespace sra::bus
