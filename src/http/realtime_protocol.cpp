#include "http/realtime_protocol.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/languages.h"

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
      std::string code = string_at(*l, param + ".language", 64);
      if (!code.empty()) {
        auto known = language_code_for(code);
        if (!known) {
          bad(param + ".language",
              "Invalid value: '" + code + "'. Expected an ISO-639-1 language code Whisper knows.");
        }
        code = *known;
      }
      s.live.language = code;
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
  std::string type = "server_vad";
  if (const auto* ty = find(t, "type")) type = string_at(*ty, param + ".type", 64);
  if (type != "server_vad") {
    bad(param + ".type", "Invalid value: '" + type +
                             "'. Supported values are: 'server_vad' (or null for no turn "
                             "detection).");
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

std::string decode_base64_audio(std::string_view text) {
  static const std::array<signed char, 256> kValue = [] {
    std::array<signed char, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i)
      v[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return v;
  }();
  std::size_t end = text.size();
  int padding = 0;
  while (end > 0 && text[end - 1] == '=' && padding < 2) {
    --end;
    ++padding;
  }
  auto invalid = [] {
    bad("audio", "Invalid 'audio': expected base64-encoded audio bytes.", "invalid_value");
  };
  if (end % 4 == 1 || (padding && text.size() % 4 != 0)) invalid();
  std::string out;
  out.reserve(end / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < end; ++i) {
    const signed char v = kValue[static_cast<unsigned char>(text[i])];
    if (v < 0) invalid();
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace sra::http
