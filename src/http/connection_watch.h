// Running a request's job while watching its connection: if the client goes away (the peer
// closes or resets the connection) while the job runs, the job's cancel token is cancelled, so an
// abandoned request stops within one window of work instead of holding an inference thread.
//
// Called from the connection's coroutine, on its strand, once the request body has been read and
// nothing else is reading from the socket. The token must outlive the call; the watch ends when
// the call returns. A client that sends more bytes (a pipelined request) is not watched further.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cerrno>
#include <memory>

#include "core/cancel.h"
#include "http/form.h"

namespace sra::http {

// True once the peer of `socket` has closed or reset the connection; false if it is open (with or
// without bytes waiting). Does not block or consume bytes.
inline bool peer_closed(boost::asio::ip::tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

namespace detail {
inline boost::asio::awaitable<void> watch_peer(boost::asio::ip::tcp::socket& socket,
                                               CancelToken* token,
                                               std::shared_ptr<std::atomic<bool>> watching) {
  namespace asio = boost::asio;
  auto [ec] = co_await socket.async_wait(asio::ip::tcp::socket::wait_read,
                                         asio::as_tuple(asio::use_awaitable));
  // Once the watch has ended, neither the socket nor the token may be touched.
  if (!watching->load()) co_return;
  if (ec || peer_closed(socket)) token->cancel("the client closed the connection");
}
}  // namespace detail

// Watches `stream`'s peer until the returned guard is destroyed; cancels `token` if it leaves.
class PeerWatch {
 public:
  PeerWatch(boost::beast::tcp_stream& stream, CancelToken& token)
      : stream_(stream), watching_(std::make_shared<std::atomic<bool>>(true)) {
    boost::asio::co_spawn(stream.get_executor(),
                          detail::watch_peer(stream.socket(), &token, watching_),
                          boost::asio::detached);
  }
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;
  ~PeerWatch() {
    watching_->store(false);
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  }

 private:
  boost::beast::tcp_stream& stream_;
  std::shared_ptr<std::atomic<bool>> watching_;
};

// Runs `f` on `pool` while the client of `stream` is watched (see above). `f` should capture by
// reference only: GCC 12 may destroy a non-trivial temporary of a co_await expression twice.
template <typename Executor, typename F>
auto run_while_connected(Executor pool, boost::beast::tcp_stream& stream, CancelToken& token, F f)
    -> boost::asio::awaitable<decltype(f())> {
  PeerWatch watch(stream, token);
  co_return co_await run_on(pool, std::move(f));
}

}  // namespace sra::http
