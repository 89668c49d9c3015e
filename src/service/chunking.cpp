#include "service/chunking.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>

#include "core/errors.h"
#include "core/text.h"

namespace sra {
namespace {

constexpr double kChunkSeconds = 30.0;  // one Whisper window

// The VAD of `auto`: faster-whisper's BatchedInferencePipeline cuts at silences of 160 ms.
vad::VadOptions auto_vad() {
  vad::VadOptions o;
  o.threshold = 0.5;
  o.min_silence_duration_ms = 160;
  o.speech_pad_ms = 400;
  return o;
}

// Speech longer than a chunk is split, leaving room for the padding on both sides.
void bound_speech(vad::VadOptions& o) {
  o.max_speech_duration_s = std::max(1.0, kChunkSeconds - 2 * o.speech_pad_ms / 1000.0);
}

// A member's value, a JSON number or (from a form's `name[member]` field) a string, checked by
// the option parser as every other number of a request is.
double member_number(const boost::json::value& v, const std::string& name, double min, double max,
                     bool integer) {
  if (!v.is_number() && !v.is_string()) throw invalid_field(name, "expected a number");
  OptionSpec spec = make_option(name, integer ? OptionType::integer : OptionType::number, "", "");
  spec.min = min;
  spec.max = max;
  return parse_option(spec, v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v))
      .number;
}

}  // namespace

const std::vector<OptionSpec>& chunking_option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    OptionSpec s = make_option(
        "chunking_strategy", OptionType::text, "`WHISPER_CHUNKING`",
        "`none` (sequential, OpenAI's long-form decoding), `auto` (speech cut at silences into "
        "chunks of at most 30 s, decoded together), `long` (`auto` past 30 s of audio) or a "
        "`server_vad` object with `threshold`, `prefix_padding_ms`, `silence_duration_ms`");
    s.max_items = 512;
    s.members = {"type", "threshold", "prefix_padding_ms", "silence_duration_ms"};
    s.check = [](std::string_view value) { parse_chunking(value, "chunking_strategy"); };
    return std::vector<OptionSpec>{s};
  }();
  return specs;
}

bool ChunkingChoice::applies_to(double seconds) const {
  switch (mode) {
    case Mode::none:
      return false;
    case Mode::automatic:
      return true;
    case Mode::long_only:
      return seconds > kChunkSeconds;
  }
  return false;
}

ChunkingChoice parse_chunking(std::string_view text, const std::string& field) {
  if (text.size() > 512) throw invalid_field(field, "is longer than 512 bytes");
  std::string t = strip(std::string(text));
  ChunkingChoice c;
  if (t.empty() || t.front() != '{') {
    for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (t == "none" || t == "off" || t == "false" || t == "null" || t.empty()) return c;
    c.vad = auto_vad();
    bound_speech(c.vad);
    if (t == "auto") {
      c.mode = ChunkingChoice::Mode::automatic;
    } else if (t == "long") {
      c.mode = ChunkingChoice::Mode::long_only;
    } else {
      throw invalid_field(field, "expected `none`, `auto`, `long` or a server_vad object, got '" +
                                     std::string(utf8_prefix(t, 40)) + "'");
    }
    return c;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(t, ec);
  if (ec || !v.is_object()) throw invalid_field(field, "is not a JSON object");
  const auto& o = v.as_object();
  const auto* type = o.if_contains("type");
  if (!type || !type->is_string() || type->get_string() != "server_vad") {
    throw invalid_field(field + "[type]", "must be 'server_vad'");
  }
  // OpenAI's defaults for server_vad.
  c.mode = ChunkingChoice::Mode::automatic;
  c.vad.threshold = 0.5;
  c.vad.speech_pad_ms = 300;
  c.vad.min_silence_duration_ms = 200;
  for (const auto& [key, value] : o) {
    const std::string name = field + "[" + std::string(key) + "]";
    if (key == "type") continue;
    if (key == "threshold") {
      c.vad.threshold = member_number(value, name, 0.01, 0.99, false);
    } else if (key == "prefix_padding_ms") {
      c.vad.speech_pad_ms = member_number(value, name, 0, 10000, true);
    } else if (key == "silence_duration_ms") {
      c.vad.min_silence_duration_ms = member_number(value, name, 0, 60000, true);
    } else {
      throw invalid_field(name,
                          "is not a member of a server_vad chunking strategy "
                          "(threshold, prefix_padding_ms, silence_duration_ms)");
    }
  }
  bound_speech(c.vad);
  return c;
}

std::vector<AudioSpan> plan_chunks(const std::vector<vad::SpeechSegment>& speech,
                                   std::int64_t max_samples) {
  std::vector<AudioSpan> spans;
  for (const auto& s : speech) {
    if (s.end <= s.start) continue;
    if (!spans.empty() && s.end - spans.back().start <= max_samples &&
        s.start >= spans.back().end) {
      spans.back().end = s.end;
    } else {
      spans.push_back({s.start, s.end});
    }
  }
  return spans;
}

}  // namespace sra
