#include "http/metrics_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <thread>

#include "core/errors.h"
#include "service/metrics.h"

namespace sra::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxConnections = 16;
constexpr int kRequestSeconds = 5;  // to send a request, and to read the answer

bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::empty_body>& req) {
  bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
  res.keep_alive(false);
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    res.result(bhttp::status::method_not_allowed);
    res.set(bhttp::field::allow, "GET");
  } else if (path == "/metrics") {
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics().render();
  } else if (path == "/health") {
    res.set(bhttp::field::content_type, "application/json");
    res.body() = R"({"status":"ok"})";
  } else {
    res.result(bhttp::status::not_found);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = R"({"detail":"Not Found"})";
  }
  if (req.method() == bhttp::verb::head) {
    res.prepare_payload();
    res.body().clear();
    return res;
  }
  res.prepare_payload();
  return res;
}

}  // namespace

struct MetricsServer::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  // The connections open now, oldest first (touched only on the server's one thread); each
  // removes itself when it ends.
  struct Open {
    beast::tcp_stream* stream;
    bool closed = false;  // closed to make room
  };
  std::list<Open> open;
  std::thread thread;

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    auto self = open.insert(open.end(), Open{&stream});
    try {
      beast::flat_buffer buffer(8192);
      bhttp::request_parser<bhttp::empty_body> parser;
      parser.header_limit(8192);
      parser.body_limit(0);
      stream.expires_after(std::chrono::seconds(kRequestSeconds));
      co_await bhttp::async_read(stream, buffer, parser, asio::use_awaitable);
      auto res = answer(parser.get());
      stream.expires_after(std::chrono::seconds(kRequestSeconds));
      co_await bhttp::async_write(stream, res, asio::use_awaitable);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    } catch (const std::exception&) {
      // A client that sends garbage, too much or too slowly (or was made room for) is dropped.
    }
    open.erase(self);
  }

  asio::awaitable<void> accept_loop() {
    asio::steady_timer pause(ioc);
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {  // out of descriptors: back off instead of spinning
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::use_awaitable);
        continue;
      }
      // At the bound, the oldest connection makes room: a scraper is never kept out by sockets
      // that send nothing (each would otherwise hold its place for kRequestSeconds).
      std::size_t live = 0;
      for (const auto& o : open) live += o.closed ? 0 : 1;
      if (live >= kMaxConnections) {
        for (auto& o : open) {
          if (o.closed) continue;
          boost::system::error_code ignored;
          o.stream->socket().close(ignored);
          o.closed = true;
          break;
        }
      }
      asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
    }
  }
};

MetricsServer::MetricsServer(const std::string& host, unsigned short port)
    : impl_(std::make_unique<Impl>()) {
  try {
    tcp::endpoint endpoint(asio::ip::make_address(host), port);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    throw config_error("the metrics port " + host + ":" + std::to_string(port) +
                       " cannot be bound: " + e.what());
  }
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

MetricsServer::~MetricsServer() {
  impl_->ioc.stop();
  impl_->thread.join();
}

unsigned short MetricsServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace sra::http
