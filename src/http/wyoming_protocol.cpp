#include "http/wyoming_protocol.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/errors.h"

namespace sra::http {

namespace json = boost::json;

namespace {

constexpr std::string_view kProtocolVersion = "1.8.0";

json::object parse_object(std::string_view text, const char* what) {
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 32;
  json::value v = json::parse(text, ec, {}, options);
  if (ec)
    throw invalid_request(std::string("Wyoming event: the ") + what + " is not JSON (" +
                          ec.message() + ")");
  if (!v.is_object())
    throw invalid_request(std::string("Wyoming event: the ") + what + " is not a JSON object");
  return std::move(v.as_object());
}

// A length field of the header: absent or null is 0; otherwise an integer in [0, bound].
std::size_t length_field(const json::object& header, std::string_view name, std::size_t bound) {
  const json::value* v = header.if_contains(name);
  if (!v || v->is_null()) return 0;
  std::int64_t n = -1;
  if (v->is_int64())
    n = v->as_int64();
  else if (v->is_uint64() && v->as_uint64() <= bound)
    n = static_cast<std::int64_t>(v->as_uint64());
  if (n < 0 || static_cast<std::uint64_t>(n) > bound) {
    throw invalid_request("Wyoming event: " + std::string(name) + " must be an integer from 0 to " +
                          std::to_string(bound));
  }
  return static_cast<std::size_t>(n);
}

}  // namespace

std::optional<WyomingEvent> WyomingEventReader::next() {
  if (!pending_) {
    std::size_t newline = buffer_.find('\n');
    if (newline == std::string::npos) {
      if (buffer_.size() >= limits_.max_header_bytes) {
        throw invalid_request("Wyoming event: a header line is longer than " +
                              std::to_string(limits_.max_header_bytes) + " bytes");
      }
      return std::nullopt;
    }
    if (newline + 1 > limits_.max_header_bytes) {
      throw invalid_request("Wyoming event: a header line is longer than " +
                            std::to_string(limits_.max_header_bytes) + " bytes");
    }
    json::object header = parse_object(std::string_view(buffer_).substr(0, newline), "header");
    buffer_.erase(0, newline + 1);
    WyomingEvent event;
    const json::value* type = header.if_contains("type");
    if (!type || !type->is_string() || type->as_string().empty()) {
      throw invalid_request("Wyoming event: the header has no string `type`");
    }
    event.type = std::string(type->as_string());
    if (const json::value* data = header.if_contains("data"); data && !data->is_null()) {
      if (!data->is_object()) throw invalid_request("Wyoming event: `data` is not an object");
      event.data = data->as_object();
    }
    data_length_ = length_field(header, "data_length", limits_.max_data_bytes);
    payload_length_ = length_field(header, "payload_length", limits_.max_payload_bytes);
    pending_ = std::move(event);
  }
  if (buffer_.size() < data_length_ + payload_length_) return std::nullopt;
  WyomingEvent event = std::move(*pending_);
  pending_.reset();
  if (data_length_ > 0) {
    json::object more = parse_object(std::string_view(buffer_).substr(0, data_length_), "data");
    for (auto& [key, value] : more) event.data[key] = std::move(value);
  }
  event.payload.assign(buffer_, data_length_, payload_length_);
  buffer_.erase(0, data_length_ + payload_length_);
  data_length_ = payload_length_ = 0;
  return event;
}

std::string wyoming_bytes(std::string_view type, const json::object& data,
                          std::string_view payload) {
  json::object header{{"type", type}, {"version", kProtocolVersion}};
  if (!data.empty()) header["data"] = data;
  if (!payload.empty()) header["payload_length"] = payload.size();
  std::string out = json::serialize(header);
  out += '\n';
  out.append(payload);
  return out;
}

}  // namespace sra::http
