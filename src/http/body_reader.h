// BodyReader: pulls a request body off the connection piece by piece, for handlers that stream.
//
// The first call to next() answers `Expect: 100-continue` if the client asked, so a handler that
// refuses a request without reading its body never invites the upload. Each piece is valid until
// the next call. Enforces a limit on the body's total size (sra::Error(too_large)), a timeout
// between pieces and, after a grace period, a minimum average upload rate
// (sra::Error(request_timeout)), so that a client trickling bytes cannot hold a connection (and
// its place in the inference queue) for long. Used by the one coroutine that owns the connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace sra::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

class BodyReader {
 public:
  struct Pace {
    double timeout_seconds = 60;      // longest wait for the next piece
    double min_bytes_per_second = 0;  // slowest average upload accepted after the grace period
    double grace_seconds = 10;        // time before the average rate is enforced
  };

  BodyReader(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
             RequestParser& parser, Pace pace, std::uint64_t limit)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        timeout_seconds_(pace.timeout_seconds),
        pace_(pace),
        limit_(limit),
        chunk_(64 * 1024),
        started_(std::chrono::steady_clock::now()) {}

  // The next piece of the body, or nullopt once it has all been read.
  boost::asio::awaitable<std::optional<std::string_view>> next();

  bool complete() const { return parser_.is_done(); }
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t limit() const { return limit_; }

 private:
  boost::beast::tcp_stream& stream_;
  boost::beast::flat_buffer& buffer_;
  RequestParser& parser_;
  double timeout_seconds_;
  Pace pace_;
  std::uint64_t limit_;
  std::vector<char> chunk_;
  std::uint64_t bytes_read_ = 0;
  bool continue_sent_ = false;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace sra::http
