#include "http/server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <thread>

#include "http/form.h"
#include "http/router.h"
#include "service/client_slots.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

}  // namespace

ServerOptions server_options_from(const Config& config) {
  ServerOptions o;
  o.host = config.get_string("HOST");
  o.port = static_cast<unsigned short>(config.get_int("PORT"));
  o.io_threads = static_cast<int>(config.get_int("HTTP_THREADS"));
  o.blocking_threads = static_cast<int>(config.get_int("HTTP_BLOCKING_THREADS"));
  o.header_timeout_seconds = config.get_double("HTTP_KEEP_ALIVE_SECONDS");
  o.body_timeout_seconds = config.get_double("HTTP_READ_TIMEOUT_SECONDS");
  o.min_upload_bytes_per_second = config.get_double("HTTP_MIN_UPLOAD_BYTES_PER_SECOND");
  o.max_connections = static_cast<int>(config.get_int("MAX_CONNECTIONS"));
  o.max_connections_per_client = static_cast<int>(config.get_int(
      "MAX_CONNECTIONS_PER_CLIENT", std::min(o.max_connections_per_client, o.max_connections)));
  if (o.max_connections_per_client > o.max_connections) {
    throw config_error(
        "MAX_CONNECTIONS_PER_CLIENT=" + std::to_string(o.max_connections_per_client) +
        " is more than MAX_CONNECTIONS=" + std::to_string(o.max_connections));
  }
  o.shutdown_grace_seconds = config.get_double("SHUTDOWN_GRACE_SECONDS");
  o.web_assets_dir = config.get_string("WEB_ASSETS_DIR", SRA_DEFAULT_WEB_ASSETS_DIR);
  o.wyoming = wyoming_options_from(config);
  return o;
}

// One connection's state as the server sees it, for shutdown and for making room. `stream` and
// `key_slot` are touched only on the connection's strand (`executor`); `stream` is null once the
// connection has ended. `idle_since` is read by the acceptor.
struct Connection {
  asio::any_io_executor executor;
  beast::tcp_stream* stream = nullptr;
  // Since when it waits for the next request's headers (steady clock ticks); -1 while busy.
  std::atomic<std::int64_t> idle_since{0};
  std::unique_ptr<ClientSlots::Slot> address_slot;  // its place among its address's connections
  std::unique_ptr<ClientSlots::Slot> key_slot;      // and among its API key's, once it has one
  std::atomic<bool> closing{false};                 // chosen to make room, and not yet closed

  bool idle() const { return idle_since.load() >= 0; }
  void set_idle(bool idle) {
    idle_since.store(idle ? std::chrono::steady_clock::now().time_since_epoch().count() : -1);
  }

  // Closes the socket (on the strand) if the connection still exists and, when `only_idle`,
  // is between requests.
  static void close(const std::shared_ptr<Connection>& c, bool only_idle) {
    asio::post(c->executor, [c, only_idle] {
      if (c->stream && (c->idle() || !only_idle)) {
        boost::system::error_code e;
        c->stream->socket().close(e);
      }
    });
  }
};

// The whole answer to a connection refused before any request was read (its client holds its
// share of connections): written at once into the fresh socket's empty send buffer.
const std::string& too_many_connections() {
  static const std::string response = [] {
    const std::string body =
        R"json({"detail":"this client has too many connections open (MAX_CONNECTIONS_PER_CLIENT)"})json";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: speech-recognition-api\r\n"
           "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return response;
}

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, TranscriptionService& service, InferencePool& pool)
      : options_(std::move(options)),
        blocking_(static_cast<std::size_t>(options_.blocking_threads)),
        access_(service.parts().config()),
        api_{service, pool, blocking_, options_.web_assets_dir, access_, readiness_},
        acceptor_(ioc_),
        wyoming_acceptor_(ioc_),
        signals_(ioc_) {
    add_gauges(service, pool);
  }

  ~Impl() {
    for (const auto& name : gauges_) metrics().remove_gauge(name);
    blocking_.join();
  }

  // What /metrics reads from this server when scraped; removed with it.
  void add_gauges(TranscriptionService& service, InferencePool& pool) {
    auto add = [this](std::string name, std::string help, std::function<double()> read) {
      gauges_.push_back(name);
      metrics().add_gauge(std::move(name), std::move(help), std::move(read));
    };
    add("sra_http_open_connections", "connections open now",
        [this] { return static_cast<double>(open_connections_.load()); });
    MemoryBudget& uploads = service.upload_memory();
    add("sra_http_buffered_upload_bytes",
        "bytes reserved by uploads held in memory now (bounded by MAX_BUFFERED_UPLOAD_BYTES)",
        [&uploads] { return static_cast<double>(uploads.used()); });
    add("sra_inference_admitted", "sync and OpenAI transcriptions running or queued",
        [&pool] { return static_cast<double>(pool.admitted()); });
    add("sra_inference_capacity", "transcriptions that may run or wait at once (more get 503)",
        [&pool] {
          return static_cast<double>(pool.options().threads + pool.options().queue_size);
        });
    add("sra_wyoming_connections_open", "Wyoming connections open now",
        [this] { return static_cast<double>(wyoming_connections_.load()); });
    add("sra_realtime_sessions_open", "realtime WebSocket sessions open now",
        [&service] { return static_cast<double>(service.live_sessions()); });
    BacklogGate& backlog = service.backlog();
    add("sra_async_backlog_tasks", "unfinished async tasks, as the broker counts them",
        [&backlog] { return static_cast<double>(backlog.view().tasks); });
    add("sra_async_backlog_audio_seconds", "their audio (estimated for Celery and Huey)",
        [&backlog] { return backlog.view().audio_seconds; });
    add("sra_async_backlog_bytes", "their stored uploads (estimated for Celery and Huey)",
        [&backlog] { return static_cast<double>(backlog.view().audio_bytes); });
    add("sra_async_drain_rate", "async tasks finished per second (moving average)",
        [&backlog] { return backlog.view().drain_rate.value_or(0); });
  }

  unsigned short bind() {
    tcp::endpoint endpoint(asio::ip::make_address(options_.host), options_.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    if (options_.wyoming.port >= 0) {
      tcp::endpoint wyoming(asio::ip::make_address(options_.wyoming.host),
                            static_cast<unsigned short>(options_.wyoming.port));
      wyoming_acceptor_.open(wyoming.protocol());
      wyoming_acceptor_.set_option(asio::socket_base::reuse_address(true));
      wyoming_acceptor_.bind(wyoming);
      wyoming_acceptor_.listen(asio::socket_base::max_listen_connections);
    }
    return acceptor_.local_endpoint().port();
  }

  unsigned short wyoming_port() const {
    boost::system::error_code ec;
    if (!wyoming_acceptor_.is_open()) return 0;
    auto endpoint = wyoming_acceptor_.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
  }

  void run() {
    if (options_.handle_signals) {
      signals_.add(SIGINT);
      signals_.add(SIGTERM);
      signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec) {
          spdlog::info("signal {}: shutting down gracefully", sig);
          stop();
        }
      });
    }
    asio::co_spawn(ioc_, accept_loop(acceptor_, Protocol::http), asio::detached);
    if (wyoming_acceptor_.is_open()) {
      asio::co_spawn(ioc_, accept_loop(wyoming_acceptor_, Protocol::wyoming), asio::detached);
    }
    std::vector<std::thread> threads;
    for (int i = 1; i < options_.io_threads; ++i) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : threads) t.join();
  }

  void stop() {
    asio::post(ioc_, [this] {
      if (stopping_.exchange(true)) return;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      wyoming_acceptor_.close(ignored);
      signals_.cancel(ignored);
      std::lock_guard lock(connections_mutex_);
      for (auto& c : connections_) Connection::close(c, true);
      // Requests still in flight get a grace period, then their connections are closed too.
      auto timer =
          std::make_shared<asio::steady_timer>(ioc_, seconds(options_.shutdown_grace_seconds));
      timer->async_wait([this, timer](const boost::system::error_code& ec) {
        if (ec) return;
        std::lock_guard lock(connections_mutex_);
        for (auto& c : connections_) Connection::close(c, false);
      });
      grace_timer_ = timer;
      maybe_finish();
    });
  }

 private:
  // Once stopping and no connection is left, nothing keeps run() going but the grace timer.
  void maybe_finish() {
    if (stopping_ && connections_.empty() && grace_timer_) grace_timer_->cancel();
  }

  // At the bound, the connection idle the longest makes room (it is closed); false when every
  // connection is busy with a request. One is closed at a time: while it closes, true.
  bool close_longest_idle() {
    std::lock_guard lock(connections_mutex_);
    std::shared_ptr<Connection> oldest;
    std::int64_t oldest_since = INT64_MAX;
    for (const auto& c : connections_) {
      if (c->closing) return true;  // making room already
      const std::int64_t since = c->idle_since.load();
      if (since >= 0 && since < oldest_since) {
        oldest = c;
        oldest_since = since;
      }
    }
    if (!oldest) return false;
    oldest->closing = true;
    asio::post(oldest->executor, [c = oldest] {
      if (c->stream && c->idle()) {
        boost::system::error_code e;
        c->stream->socket().close(e);
      } else {
        c->closing = false;  // a request came meanwhile: it stays, another makes room
      }
    });
    return true;
  }

  // Refuses a connection whose address holds its share: 503 and closed, nothing read.
  template <typename Socket>
  static void refuse(Socket& socket) {
    metrics().refused.with({"connections"}).add();
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(too_many_connections()), ignored);
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
    socket.close(ignored);
  }

  enum class Protocol { http, wyoming };

  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Protocol protocol) {
    asio::steady_timer pause(ioc_);
    double backoff = 0.01;
    while (!stopping_) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc_),
                                                         asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) break;
        // Out of descriptors or memory: wait for some to be freed instead of spinning.
        spdlog::warn("accept failed: {}; pausing {:.0f} ms", ec.message(), backoff * 1000);
        pause.expires_after(seconds(backoff));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        backoff = std::min(backoff * 2, 1.0);
        continue;
      }
      backoff = 0.01;
      boost::system::error_code pec;
      auto peer = socket.remote_endpoint(pec);
      auto slot = addresses_.try_take(pec ? std::string("unknown") : peer.address().to_string());
      if (!slot) {
        if (protocol == Protocol::http) {
          refuse(socket);
        } else {
          metrics().refused.with({"connections"}).add();
          boost::system::error_code ignored;
          socket.close(ignored);
        }
        continue;
      }
      // At the bound, the connection idle the longest makes room for this one; while none is
      // idle, this one waits, and the next ones in the listen backlog.
      while (open_connections_.load() >= options_.max_connections && !stopping_) {
        pause.expires_after(close_longest_idle() ? std::chrono::milliseconds(1)
                                                 : std::chrono::milliseconds(20));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      open_connections_.fetch_add(1);
      auto executor = socket.get_executor();
      asio::co_spawn(executor, session(std::move(socket), std::move(slot), protocol),
                     asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket, std::unique_ptr<ClientSlots::Slot> slot,
                                Protocol protocol) {
    beast::tcp_stream stream(std::move(socket));
    auto connection = std::make_shared<Connection>();
    connection->executor = stream.get_executor();
    connection->stream = &stream;
    connection->address_slot = std::move(slot);
    {
      std::lock_guard lock(connections_mutex_);
      connections_.push_back(connection);
      if (stopping_) Connection::close(connection, true);
    }
    try {
      if (protocol == Protocol::http) {
        co_await serve_connection(stream, *connection);
      } else {
        wyoming_connections_.fetch_add(1);
        struct Count {
          std::atomic<int>& n;
          ~Count() { n.fetch_sub(1); }
        } count{wyoming_connections_};
        co_await serve_wyoming(api_, stream, options_.wyoming, connection->address_slot->client(),
                               [&connection](bool idle) { connection->set_idle(idle); });
      }
    } catch (const std::exception& e) {
      spdlog::debug("connection ended: {}", e.what());
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    connection->stream = nullptr;
    connection->address_slot.reset();
    connection->key_slot.reset();
    open_connections_.fetch_sub(1);
    std::lock_guard lock(connections_mutex_);
    connections_.remove(connection);
    // The strand is not the acceptor's; finishing is posted to the I/O context.
    asio::post(ioc_, [this] {
      std::lock_guard lock(connections_mutex_);
      maybe_finish();
    });
  }

  asio::awaitable<void> serve_connection(beast::tcp_stream& stream, Connection& connection) {
    beast::flat_buffer buffer;
    std::uint64_t body_limit = api_.service.limits().max_upload_bytes + kMultipartOverhead;
    while (!stopping_) {
      RequestParser parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(boost::none);  // BodyReader enforces the limit with a clear message
      connection.set_idle(true);
      stream.expires_after(seconds(options_.header_timeout_seconds));
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser,
                                                       asio::as_tuple(asio::use_awaitable));
      connection.set_idle(false);
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
        co_return;
      }
      if (ec) {
        // Malformed request line or headers: answer once, then close.
        Response res = detail_response(ec == bhttp::error::header_limit
                                           ? bhttp::status::request_header_fields_too_large
                                           : bhttp::status::bad_request,
                                       "Malformed HTTP request: " + ec.message());
        res.keep_alive(false);
        stream.expires_after(seconds(options_.body_timeout_seconds));
        co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        co_return;
      }
      auto started = std::chrono::steady_clock::now();
      BodyReader body(stream, buffer, parser,
                      {.timeout_seconds = options_.body_timeout_seconds,
                       .min_bytes_per_second = options_.min_upload_bytes_per_second},
                      body_limit);
      Exchange exchange{.body = body, .stream = stream};
      // An API key's connections are bounded as an address's are.
      exchange.claim_client = [this, &connection](const std::string& key) {
        if (connection.key_slot && connection.key_slot->client() == key) return true;
        connection.key_slot.reset();
        connection.key_slot = keys_.try_take(key);
        return connection.key_slot != nullptr;
      };
      Response res = co_await handle_request(api_, parser.get(), exchange);
      bool body_done = parser.is_done();
      if (exchange.responded) {
        spdlog::info(
            "{} {} 200 (streamed) {:.1f} ms", std::string(parser.get().method_string()),
            std::string(parser.get().target()),
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                .count());
        if (exchange.keep_alive && body_done && !stopping_) continue;
        co_return;
      }
      bool keep_alive =
          parser.get().keep_alive() && body_done && !stopping_ && !exchange.close_connection;
      res.set(bhttp::field::server, "speech-recognition-api");
      res.keep_alive(keep_alive);
      // A HEAD gets the GET's headers (its Content-Length included) and never a body: bytes after
      // the headers would be read as the next response on a kept-alive connection.
      if (parser.get().method() == bhttp::verb::head) res.body().clear();
      stream.expires_after(seconds(options_.body_timeout_seconds));
      boost::system::error_code wec;
      if (parser.get().method() == bhttp::verb::head) {
        bhttp::response_serializer<bhttp::string_body> head(res);
        std::tie(wec, std::ignore) =
            co_await bhttp::async_write_header(stream, head, asio::as_tuple(asio::use_awaitable));
      } else {
        std::tie(wec, std::ignore) =
            co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      }
      spdlog::info(
          "{} {} {} {:.1f} ms", std::string(parser.get().method_string()),
          std::string(parser.get().target()), res.result_int(),
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
              .count());
      if (wec) co_return;
      if (!keep_alive) {
        if (!body_done) co_await linger(stream);
        co_return;
      }
    }
  }

  // After answering a request whose body was not read (an early 413, say), keep reading and
  // discarding for a moment so that the client sees the response rather than a reset.
  asio::awaitable<void> linger(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::vector<char> sink(64 * 1024);
    std::size_t discarded = 0;
    stream.expires_after(std::chrono::seconds(2));
    while (discarded < 256 * 1024 * 1024) {
      auto [ec, n] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      discarded += n;
    }
  }

  ServerOptions options_;
  asio::io_context ioc_;
  asio::thread_pool blocking_;
  Access access_;
  CachedCheck readiness_;
  ApiContext api_;
  tcp::acceptor acceptor_;
  tcp::acceptor wyoming_acceptor_;  // open only when WYOMING_PORT is set
  asio::signal_set signals_;
  ClientSlots addresses_{ClientSlots::kUnbounded, options_.max_connections_per_client};
  ClientSlots keys_{ClientSlots::kUnbounded, options_.max_connections_per_client};
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_connections_{0};
  std::atomic<int> wyoming_connections_{0};
  std::mutex connections_mutex_;
  std::list<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<asio::steady_timer> grace_timer_;
  std::vector<std::string> gauges_;  // the names this server added to metrics()
};

HttpServer::HttpServer(ServerOptions options, TranscriptionService& service, InferencePool& pool)
    : impl_(std::make_unique<Impl>(std::move(options), service, pool)) {}
HttpServer::~HttpServer() = default;
unsigned short HttpServer::bind() {
  return impl_->bind();
}
unsigned short HttpServer::wyoming_port() const {
  return impl_->wyoming_port();
}
void HttpServer::run() {
  impl_->run();
}
void HttpServer::stop() {
  impl_->stop();
}

}  // namespace sra::http
