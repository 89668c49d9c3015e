// The Wyoming protocol's framing (Home Assistant's voice protocol, PyPI `wyoming`): an event is a
// JSON header line (`type`, optional `data`, `data_length`, `payload_length`, `version`) ending in
// "\n", then `data_length` bytes of a JSON object merged into `data`, then `payload_length` bytes
// of payload (raw audio for `audio-chunk`).
//
// WyomingEventReader takes bytes as they arrive and gives whole events; every length is bounded
// (WyomingLimits) and anything malformed throws sra::Error(invalid_request), so a hostile peer
// costs at most one header, one data block and one payload of memory. It never reads past what
// it was given. One reader per connection, used by one thread at a time. wyoming_bytes() writes
// an event the way every version of the protocol reads it (data inline in the header line).
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sra::http {

struct WyomingEvent {
  std::string type;          // "describe", "audio-chunk", ...
  boost::json::object data;  // the header's `data` merged with the data block's
  std::string payload;       // the payload bytes (empty when none)
};

struct WyomingLimits {
  std::size_t max_header_bytes = 16 * 1024;  // one header line, its "\n" included
  std::size_t max_data_bytes = 64 * 1024;    // one data block
  std::size_t max_payload_bytes = 1 << 20;   // one payload (an audio chunk)
};

class WyomingEventReader {
 public:
  explicit WyomingEventReader(WyomingLimits limits = {}) : limits_(limits) {}

  // Takes the next bytes of the stream.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole event, or nullopt until more bytes come. Throws sra::Error(invalid_request)
  // when the bytes cannot be the start of a valid event (a header too long, not a JSON object,
  // without a string `type`, a length out of bounds, data that is not an object).
  std::optional<WyomingEvent> next();
  // Bytes held and not yet part of an event given out.
  std::size_t buffered() const { return buffer_.size(); }

 private:
  WyomingLimits limits_;
  std::string buffer_;
  // The event whose header has been read, waiting for its data block and payload.
  std::optional<WyomingEvent> pending_;
  std::size_t data_length_ = 0;
  std::size_t payload_length_ = 0;
};

// The bytes of `type` with `data` and `payload` on the wire.
std::string wyoming_bytes(std::string_view type, const boost::json::object& data = {},
                          std::string_view payload = {});

}  // namespace sra::http
