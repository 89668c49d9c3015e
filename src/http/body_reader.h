// BodyReader: pulls a request body off the connection piece by piece, for handlers that stream.
//
// The first call to next() answers `Expect: 100-continue` if the client asked, so a handler that
// refuses a request without reading its body never invites the upload. Each piece is valid until
// the next call. Enforces a limit on the body's total size (sra::Error(too_large)) and a timeout
// between pieces. Used by the one coroutine that owns the connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace sra::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

class BodyReader {
 public:
  BodyReader(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
             RequestParser& parser, double timeout_seconds, std::uint64_t limit)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        timeout_seconds_(timeout_seconds),
        limit_(limit),
        chunk_(64 * 1024) {}

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
  std::uint64_t limit_;
  std::vector<char> chunk_;
  std::uint64_t bytes_read_ = 0;
  bool continue_sent_ = false;
};

}  // namespace sra::http
