// libFuzzer harness: the Wyoming protocol's framing (http/wyoming_protocol.h), what every byte a
// Wyoming client sends reaches first. The input is fed to a reader with small limits in pieces
// whose sizes come from its first byte; each whole event is written back with wyoming_bytes() and
// read again. Properties: only sra::Error comes out; the reader never holds more than one header,
// data block and payload past what it was last fed; an event written back reads as the same
// type, data and payload; a payload of an audio-chunk goes through the PCM stream at the rate its
// data names (when in bounds) without crashing.
#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "audio/pcm_stream.h"
#include "core/errors.h"
#include "http/wyoming_protocol.h"

namespace {

constexpr sra::http::WyomingLimits kLimits{
    .max_header_bytes = 512, .max_data_bytes = 512, .max_payload_bytes = 4096};

// Equal JSON, doubles within a relative 1e-12 (Boost.JSON 1.81 parses some doubles to a
// neighbouring value of the one it wrote).
bool same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.is_object() && b.is_object()) {
    const auto &o = a.get_object(), &p = b.get_object();
    if (o.size() != p.size()) return false;
    for (const auto& [key, value] : o) {
      const auto* other = p.if_contains(key);
      if (!other || !same(value, *other)) return false;
    }
    return true;
  }
  if (a.is_array() && b.is_array()) {
    const auto &o = a.get_array(), &p = b.get_array();
    if (o.size() != p.size()) return false;
    for (std::size_t i = 0; i < o.size(); ++i) {
      if (!same(o[i], p[i])) return false;
    }
    return true;
  }
  return a == b;
}

void check_round_trip(const sra::http::WyomingEvent& event) {
  sra::http::WyomingEventReader again(sra::http::WyomingLimits{
      .max_header_bytes = 1 << 20, .max_data_bytes = 1 << 20, .max_payload_bytes = 1 << 20});
  again.feed(sra::http::wyoming_bytes(event.type, event.data, event.payload));
  auto back = again.next();
  if (!back || back->type != event.type || !same(back->data, event.data) ||
      back->payload != event.payload || again.buffered() != 0) {
    std::abort();
  }
}

void play(const sra::http::WyomingEvent& event) {
  if (event.type != "audio-chunk" || event.payload.empty()) return;
  const auto* rate = event.data.if_contains("rate");
  if (!rate || !rate->is_int64() || rate->as_int64() < 8000 || rate->as_int64() > 48000) return;
  sra::audio::PcmStream pcm(
      {.encoding = sra::audio::PcmEncoding::pcm16, .rate = static_cast<int>(rate->as_int64())});
  std::vector<float> samples;
  pcm.push(event.payload, samples);
  pcm.flush(samples);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  sra::http::WyomingEventReader reader(kLimits);
  try {
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
      std::string_view chunk = bytes.substr(at, piece);
      reader.feed(chunk);
      while (auto event = reader.next()) {
        check_round_trip(*event);
        play(*event);
      }
      if (reader.buffered() >
          kLimits.max_header_bytes + kLimits.max_data_bytes + kLimits.max_payload_bytes + piece) {
        std::abort();
      }
    }
  } catch (const sra::Error&) {
  }
  return 0;
}
