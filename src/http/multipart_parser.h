// A streaming parser of multipart/form-data bodies (RFC 7578 / RFC 2046).
//
// Feed it the body in pieces of any size, as they arrive; it calls the handler for each part's
// headers, for the part's bytes (in pieces, never buffering a whole part) and at each part's end.
// Memory use is bounded by the header limit plus the boundary length, whatever the body size.
// A malformed body throws sra::Error(invalid_request) saying what is wrong. One parser per body;
// used by one thread at a time.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sra::http {

struct PartHeaders {
  std::string name;                     // the form field name (Content-Disposition: name)
  std::optional<std::string> filename;  // set for file fields
  std::string content_type;             // Content-Type of the part, if given
};

class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual void on_part_begin(const PartHeaders& headers) = 0;
  virtual void on_part_data(std::string_view bytes) = 0;
  virtual void on_part_end() = 0;
};

// The boundary parameter of a Content-Type header value, or nullopt if the value is not
// multipart/form-data with a valid boundary.
std::optional<std::string> multipart_boundary(std::string_view content_type);

class MultipartParser {
 public:
  MultipartParser(std::string boundary, MultipartHandler& handler,
                  std::size_t max_header_bytes = 16 * 1024);

  void feed(std::string_view bytes);
  // Call once the body has ended; throws if the closing boundary was not seen.
  void finish();
  bool done() const { return state_ == State::epilogue; }

 private:
  enum class State { preamble, after_boundary, headers, body, epilogue };
  void parse_headers(std::string_view block);
  bool step();

  std::string dash_boundary_;  // "--" + boundary
  std::string delimiter_;      // "\r\n--" + boundary
  MultipartHandler& handler_;
  std::size_t max_header_bytes_;
  State state_ = State::preamble;
  std::string pending_;
  bool first_boundary_ = true;
};

}  // namespace sra::http
