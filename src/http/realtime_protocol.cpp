#include "http/realtime_protocol.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cctype>
#include <cmath>

#include "core/languages.h"
#include "core/text.h"

namespace sra::http {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxPromptBytes = 8192;
constexpr std::size_t kMaxNameBytes = 256;

[[noreturn]] void bad(const std::string& param, const std::string& message,
                      const std::string& code = "invalid_value") {
  throw RealtimeProtocolError({.code = code, .message = message, .param = param});
}

const json::object& object_at(const json::value& v, const std::string& param) {
  if (!v.is_object())
    bad(param, "Invalid type for '" + param + "': expected an object.", "invalid_type");
  return v.as_object();
}

std::string string_at(const json::value& v, const std::string& param, std::size_t max_bytes) {
  if (!v.is_string())
    bad(param, "Invalid type for '" + param + "': expected a string.", "invalid_type");
  const json::string& s = v.as_string();
  if (s.size() > max_bytes) {
    bad(param, "'" + param + "' is too long: at most " + std::to_string(max_bytes) + " bytes.",
        "string_above_max_length");
  }
  return std::string(s);
}

double number_at(const json::value& v, const std::string& param, double min, double max) {
  double x = 0;
  if (v.is_double()) {
    x = v.as_double();
  } else if (v.is_int64()) {
    x = static_cast<double>(v.as_int64());
  } else if (v.is_uint64()) {
    x = static_cast<double>(v.as_uint64());
  } else {
    bad(param, "Invalid type for '" + param + "': expected a number.", "invalid_type");
  }
  if (!std::isfinite(x) || x < min || x > max) {
    auto text = [](double d) {
      std::string s = std::to_string(d);
      s.erase(s.find_last_not_of('0') + 1);
      if (!s.empty() && s.back() == '.') s.pop_back();
      return s;
    };
    bad(param, "Invalid value for '" + param + "': it must be between " + text(min) + " and " +
                   text(max) + ".");
  }
  return x;
}

int integer_at(const json::value& v, const std::string& param, int min, int max) {
  double x = number_at(v, param, min, max);
  if (x != std::floor(x))
    bad(param, "Invalid type for '" + param + "': expected an integer.", "invalid_type");
  return static_cast<int>(x);
}

const json::value* find(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

void apply_model(const json::value& v, const std::string& param, RealtimeSession& s,
                 const std::vector<std::string>& served) {
  if (v.is_null()) return;
  std::string model = string_at(v, param, kMaxNameBytes);
  if (std::find(served.begin(), served.end(), model) == served.end()) {
    bad(param, "The model '" + model + "' does not exist or is not served here.",
        "model_not_found");
  }
  s.model = model;
  s.live.model = model;
}

void apply_transcription(const json::value& v, const std::string& param, RealtimeSession& s,
                         const std::vector<std::string>& served) {
  if (v.is_null()) return;  // "off" is not a transcription session's state: settings stay
  const json::object& t = object_at(v, param);
  if (const auto* m = find(t, "model")) apply_model(*m, param + ".model", s, served);
  if (const auto* l = find(t, "language")) {
    if (l->is_null()) {
      s.live.language.clear();
    } else {
      // One language, or a comma-separated list that detection chooses among ("en,de").
      std::string codes;
      for (std::string item : split_list(string_at(*l, param + ".language", 512))) {
        for (auto& c : item) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto known = language_code_for(item);
        if (!known) {
          bad(param + ".language", "Invalid value: '" + std::string(utf8_prefix(item, 40)) +
                                       "'. Expected an ISO-639-1 language code Whisper knows.");
        }
        codes += (codes.empty() ? "" : ",") + *known;
      }
      s.live.language = codes;
    }
  }
  if (const auto* p = find(t, "prompt")) {
    s.live.prompt = p->is_null() ? "" : string_at(*p, param + ".prompt", kMaxPromptBytes);
  }
}

void apply_turn_detection(const json::value& v, const std::string& param, RealtimeSession& s) {
  if (v.is_null()) {
    s.live.turn.server_vad = false;
    return;
  }
  const json::object& t = object_at(v, param);
  TurnDetection td = s.live.turn.server_vad ? s.live.turn : TurnDetection{};
  // An update that names no type keeps the session's.
  std::string type = td.semantic ? "semantic_vad" : "server_vad";
  if (const auto* ty = find(t, "type")) type = string_at(*ty, param + ".type", 64);
  if (type != "server_vad" && type != "semantic_vad") {
    bad(param + ".type", "Invalid value: '" + type +
                             "'. Supported values are: 'server_vad', 'semantic_vad' (or null for "
                             "no turn detection).");
  }
  td.semantic = type == "semantic_vad";
  if (td.semantic) {
    if (const auto* e = find(t, "eagerness")) {
      const std::string eagerness = string_at(*e, param + ".eagerness", 16);
      if (eagerness == "low") {
        td.eagerness = Eagerness::low;
      } else if (eagerness == "medium") {
        td.eagerness = Eagerness::medium;
      } else if (eagerness == "high") {
        td.eagerness = Eagerness::high;
      } else if (eagerness == "auto") {
        td.eagerness = Eagerness::automatic;
      } else {
        bad(param + ".eagerness", "Invalid value: '" + eagerness +
                                      "'. Supported values are: 'low', 'medium', 'high', and "
                                      "'auto'.");
      }
    }
  }
  // Responses are not a transcription session's: OpenAI's flags are taken and have no effect.
  for (const char* flag : {"create_response", "interrupt_response"}) {
    if (const auto* x = find(t, flag); x && !x->is_bool()) {
      bad(param + "." + flag, "Invalid type for '" + param + "." + flag + "': expected a boolean.",
          "invalid_type");
    }
  }
  if (const auto* x = find(t, "threshold")) {
    td.threshold = static_cast<float>(number_at(*x, param + ".threshold", 0, 1));
  }
  if (const auto* x = find(t, "prefix_padding_ms")) {
    td.prefix_padding_ms = integer_at(*x, param + ".prefix_padding_ms", 0, 10000);
  }
  if (const auto* x = find(t, "silence_duration_ms")) {
    td.silence_duration_ms = integer_at(*x, param + ".silence_duration_ms", 0, 10000);
  }
  td.server_vad = true;
  s.live.turn = td;
}

audio::PcmFormat format_of(const json::value& v, const std::string& param) {
  const json::object& f = object_at(v, param);
  std::string type = "audio/pcm";
  if (const auto* ty = find(f, "type")) type = string_at(*ty, param + ".type", 64);
  if (type == "audio/pcmu") return {audio::PcmEncoding::mulaw, 8000};
  if (type == "audio/pcma") return {audio::PcmEncoding::alaw, 8000};
  if (type != "audio/pcm") {
    bad(param + ".type", "Invalid value: '" + type +
                             "'. Supported values are: 'audio/pcm', 'audio/pcmu', "
                             "'audio/pcma'.");
  }
  int rate = 24000;
  if (const auto* r = find(f, "rate")) {
    rate = integer_at(*r, param + ".rate", 0, 1 << 30);
    if (rate != 24000 && rate != 16000) {
      bad(param + ".rate", "Invalid value: " + std::to_string(rate) +
                               ". Supported rates are 24000 (as OpenAI) and 16000.");
    }
  }
  return {audio::PcmEncoding::pcm16, rate};
}

json::value format_json(const audio::PcmFormat& f) {
  switch (f.encoding) {
    case audio::PcmEncoding::mulaw:
      return json::object{{"type", "audio/pcmu"}};
    case audio::PcmEncoding::alaw:
      return json::object{{"type", "audio/pcma"}};
    default:
      return json::object{{"type", "audio/pcm"}, {"rate", f.rate}};
  }
}

json::value turn_detection_json(const TurnDetection& td) {
  if (!td.server_vad) return nullptr;
  if (td.semantic) {
    const char* eagerness = td.eagerness == Eagerness::low      ? "low"
                            : td.eagerness == Eagerness::medium ? "medium"
                            : td.eagerness == Eagerness::high   ? "high"
                                                                : "auto";
    return json::object{{"type", "semantic_vad"},
                        {"eagerness", eagerness},
                        {"create_response", true},
                        {"interrupt_response", true}};
  }
  return json::object{{"type", "server_vad"},
                      {"threshold", std::round(td.threshold * 1000) / 1000},
                      {"prefix_padding_ms", td.prefix_padding_ms},
                      {"silence_duration_ms", td.silence_duration_ms}};
}

json::value transcription_json(const RealtimeSession& s) {
  json::value language =
      s.live.language.empty() ? json::value(nullptr) : json::value(s.live.language);
  return json::object{{"model", s.model}, {"language", language}, {"prompt", s.live.prompt}};
}

}  // namespace

void apply_session_update(const json::value& session, RealtimeSession& state,
                          const std::vector<std::string>& served) {
  const json::object& o = object_at(session, "session");
  RealtimeSession next = state;
  if (const auto* t = find(o, "type")) {
    std::string type = string_at(*t, "session.type", 64);
    if (type != "transcription") {
      bad("session.type", "Invalid value: '" + type +
                              "'. This server holds transcription sessions only: 'transcription'.");
    }
  }
  if (const auto* a = find(o, "audio")) {
    const json::object& audio = object_at(*a, "session.audio");
    if (const auto* in = find(audio, "input")) {
      const json::object& input = object_at(*in, "session.audio.input");
      if (const auto* f = find(input, "format")) {
        next.format = format_of(*f, "session.audio.input.format");
      }
      if (const auto* t = find(input, "transcription")) {
        apply_transcription(*t, "session.audio.input.transcription", next, served);
      }
      if (const auto* td = find(input, "turn_detection")) {
        apply_turn_detection(*td, "session.audio.input.turn_detection", next);
      }
      // noise_reduction is accepted and not applied: the session echoes it as null.
    }
  }
  state = std::move(next);
}

void apply_transcription_session_update(const json::value& session, RealtimeSession& state,
                                        const std::vector<std::string>& served) {
  const json::object& o = object_at(session, "session");
  RealtimeSession next = state;
  if (const auto* f = find(o, "input_audio_format")) {
    std::string name = string_at(*f, "session.input_audio_format", 64);
    if (name == "pcm16") {
      next.format = {audio::PcmEncoding::pcm16, 24000};
    } else if (name == "g711_ulaw") {
      next.format = {audio::PcmEncoding::mulaw, 8000};
    } else if (name == "g711_alaw") {
      next.format = {audio::PcmEncoding::alaw, 8000};
    } else {
      bad("session.input_audio_format",
          "Invalid value: '" + name +
              "'. Supported values are: 'pcm16', 'g711_ulaw', 'g711_alaw'.");
    }
  }
  if (const auto* t = find(o, "input_audio_transcription")) {
    apply_transcription(*t, "session.input_audio_transcription", next, served);
  }
  if (const auto* td = find(o, "turn_detection")) {
    apply_turn_detection(*td, "session.turn_detection", next);
  }
  state = std::move(next);
}

json::object session_json(const RealtimeSession& s) {
  return json::object{
      {"type", "transcription"},
      {"object", "realtime.transcription_session"},
      {"id", s.id},
      {"audio",
       json::object{{"input", json::object{{"format", format_json(s.format)},
                                           {"transcription", transcription_json(s)},
                                           {"turn_detection", turn_detection_json(s.live.turn)},
                                           {"noise_reduction", nullptr}}}}},
      {"include", json::array{}}};
}

json::object beta_session_json(const RealtimeSession& s) {
  const char* format = s.format.encoding == audio::PcmEncoding::mulaw  ? "g711_ulaw"
                       : s.format.encoding == audio::PcmEncoding::alaw ? "g711_alaw"
                                                                       : "pcm16";
  return json::object{{"object", "realtime.transcription_session"},
                      {"id", s.id},
                      {"input_audio_format", format},
                      {"input_audio_transcription", transcription_json(s)},
                      {"turn_detection", turn_detection_json(s.live.turn)},
                      {"input_audio_noise_reduction", nullptr},
                      {"include", json::array{}}};
}

json::object live_event_json(const LiveEvent& e, const std::string& event_id) {
  json::object o{{"event_id", event_id}, {"item_id", e.item_id}};
  switch (e.kind) {
    case LiveEvent::Kind::speech_started:
      o["type"] = "input_audio_buffer.speech_started";
      o["audio_start_ms"] = e.audio_ms;
      break;
    case LiveEvent::Kind::speech_stopped:
      o["type"] = "input_audio_buffer.speech_stopped";
      o["audio_end_ms"] = e.audio_ms;
      break;
    case LiveEvent::Kind::committed:
      o["type"] = "input_audio_buffer.committed";
      o["previous_item_id"] =
          e.previous_item_id.empty() ? json::value(nullptr) : json::value(e.previous_item_id);
      break;
    case LiveEvent::Kind::delta:
      o["type"] = "conversation.item.input_audio_transcription.delta";
      o["content_index"] = 0;
      o["delta"] = e.text;
      break;
    case LiveEvent::Kind::completed:
      o["type"] = "conversation.item.input_audio_transcription.completed";
      o["content_index"] = 0;
      o["transcript"] = e.text;
      o["usage"] = json::object{{"type", "duration"}, {"seconds", e.seconds}};
      break;
    case LiveEvent::Kind::failed:
      o["type"] = "conversation.item.input_audio_transcription.failed";
      o["content_index"] = 0;
      o["error"] = json::object{{"type", "transcription_error"},
                                {"code", "transcription_failed"},
                                {"message", e.text},
                                {"param", nullptr}};
      break;
  }
  return o;
}

json::object error_event_json(const RealtimeError& error, const std::string& event_id,
                              const std::string& client_event_id) {
  auto or_null = [](const std::string& s) {
    return s.empty() ? json::value(nullptr) : json::value(s);
  };
  return json::object{{"type", "error"},
                      {"event_id", event_id},
                      {"error", json::object{{"type", error.type},
                                             {"code", or_null(error.code)},
                                             {"message", error.message},
                                             {"param", or_null(error.param)},
                                             {"event_id", or_null(client_event_id)}}}};
}

namespace {

const std::array<signed char, 256>& base64_values() {
  static const std::array<signed char, 256> kValue = [] {
    std::array<signed char, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i)
      v[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return v;
  }();
  return kValue;
}

[[noreturn]] void not_base64() {
  bad("audio", "Invalid 'audio': expected base64-encoded audio bytes.", "invalid_value");
}

}  // namespace

void Base64Decoder::feed(std::string_view piece) {
  const auto& value = base64_values();
  for (char c : piece) {
    if (c == '=') {
      if (++padding_ > 2) not_base64();
      continue;
    }
    const signed char v = value[static_cast<unsigned char>(c)];
    if (v < 0 || padding_ > 0) not_base64();  // padding only at the end
    ++digits_;
    acc_ = (acc_ << 6) | static_cast<std::uint32_t>(v);
    bits_ += 6;
    if (bits_ >= 8) {
      bits_ -= 8;
      if (out_.size() >= max_bytes_) {
        throw RealtimeProtocolError({.code = "audio_too_large",
                                     .message = "An append may carry at most " +
                                                std::to_string(max_bytes_ / (1024 * 1024)) +
                                                " MiB of audio; send it in smaller pieces.",
                                     .param = "audio"});
      }
      out_.push_back(static_cast<char>((acc_ >> bits_) & 0xFF));
    }
  }
}

std::string Base64Decoder::finish() {
  if (digits_ % 4 == 1 || (padding_ && (digits_ + padding_) % 4 != 0)) not_base64();
  return std::move(out_);
}

std::string decode_base64_audio(std::string_view text) {
  Base64Decoder decoder(text.size());
  decoder.feed(text);
  return decoder.finish();
}

namespace {

// The SAX handler of scan_large_event(): the top-level object's "type" and "event_id" strings,
// its "audio" string decoded as it streams; other members only as small scalars.
class LargeEventHandler {
 public:
  static constexpr std::size_t max_object_size = 64;
  static constexpr std::size_t max_array_size = 0;
  static constexpr std::size_t max_key_size = 64;
  static constexpr std::size_t max_string_size = std::size_t(-1);

  explicit LargeEventHandler(std::size_t max_audio_bytes) : decoder_(max_audio_bytes) {}

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code& ec) { return refuse(ec); }
  bool on_array_end(std::size_t, boost::system::error_code& ec) { return refuse(ec); }
  bool on_object_begin(boost::system::error_code& ec) {
    return ++depth_ == 1 ? true : refuse(ec);  // nothing nested in a large event
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    --depth_;
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code& ec) {
    key_.append(s.data(), s.size());
    member_ = key_ == "type"       ? Member::type
              : key_ == "event_id" ? Member::event_id
              : key_ == "audio"    ? Member::audio
                                   : Member::other;
    key_.clear();
    if (member_ != Member::other) {
      // A member named twice: which one counts is the parser's choice, so none does.
      const auto bit = 1u << static_cast<unsigned>(member_);
      if (seen_ & bit) return refuse(ec);
      seen_ |= bit;
    }
    if (member_ == Member::audio) event_.has_audio = true;
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t n, boost::system::error_code& ec) {
    return take(s, n, ec);
  }
  bool on_string(json::string_view s, std::size_t n, boost::system::error_code& ec) {
    return take(s, n, ec);
  }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }

  ScannedEvent result() {
    if (event_.has_audio) event_.audio = decoder_.finish();
    return std::move(event_);
  }

 private:
  enum class Member { type, event_id, audio, other };

  bool refuse(boost::system::error_code& ec) {
    ec = json::error::extra_data;  // any code: the caller reports the shape
    return false;
  }

  bool take(json::string_view s, std::size_t total, boost::system::error_code& ec) {
    if (member_ == Member::audio) {
      decoder_.feed(std::string_view(s.data(), s.size()));
      return true;
    }
    if (total > kMaxNameBytes) return refuse(ec);  // only the audio may be large
    if (member_ == Member::type) event_.type.append(s.data(), s.size());
    if (member_ == Member::event_id) event_.event_id.append(s.data(), s.size());
    return true;
  }

  int depth_ = 0;
  unsigned seen_ = 0;  // the members named so far, a bit each
  std::string key_;
  Member member_ = Member::other;
  Base64Decoder decoder_;
  ScannedEvent event_;
};

}  // namespace

ScannedEvent scan_large_event(std::string_view text, std::size_t max_audio_bytes) {
  json::basic_parser<LargeEventHandler> parser(json::parse_options{}, max_audio_bytes);
  boost::system::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  if (ec) {
    throw RealtimeProtocolError(
        {.code = "invalid_event",
         .message = "A message over 64 KiB must be an input_audio_buffer.append event: an object "
                    "of 'type', 'event_id' and the base64 'audio', nothing nested."});
  }
  return parser.handler().result();
}

}  // namespace sra::http
