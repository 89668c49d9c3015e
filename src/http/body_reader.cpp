#include "http/body_reader.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <chrono>

#include "core/errors.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

asio::awaitable<std::optional<std::string_view>> BodyReader::next() {
  if (!continue_sent_) {
    continue_sent_ = true;
    auto expect = parser_.get()[bhttp::field::expect];
    if (!parser_.is_done() && beast::iequals(expect, "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(timeout_seconds_)));
      co_await bhttp::async_write(stream_, cont, asio::use_awaitable);
    }
  }
  while (!parser_.is_done()) {
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_seconds_)));
    auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, parser_,
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == beast::error::timeout)
      throw request_timeout("timed out waiting for the request body");
    if (ec) throw invalid_request("the request body could not be read: " + ec.message());
    std::size_t got = chunk_.size() - parser_.get().body().size;
    if (got == 0) continue;
    bytes_read_ += got;
    if (pace_.min_bytes_per_second > 0) {
      double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      double owed = (elapsed - pace_.grace_seconds) * pace_.min_bytes_per_second;
      if (owed > 0 && static_cast<double>(bytes_read_) < owed && !parser_.is_done()) {
        throw request_timeout("the request body arrives slower than " +
                              std::to_string(static_cast<long>(pace_.min_bytes_per_second)) +
                              " bytes/s (HTTP_MIN_UPLOAD_BYTES_PER_SECOND)");
      }
    }
    if (bytes_read_ > limit_) {
      throw too_large("request body is larger than the limit of " + std::to_string(limit_) +
                      " bytes");
    }
    co_return std::string_view(chunk_.data(), got);
  }
  co_return std::nullopt;
}

}  // namespace sra::http
