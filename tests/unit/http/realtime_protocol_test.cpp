#include "http/realtime_protocol.h"

#include <gtest/gtest.h>

namespace sra::http {
namespace {

namespace json = boost::json;

const std::vector<std::string> kServed{"whisper-1", "base"};

RealtimeError error_of(const std::string& session_json, bool beta = false) {
  RealtimeSession s;
  try {
    if (beta) {
      apply_transcription_session_update(json::parse(session_json), s, kServed);
    } else {
      apply_session_update(json::parse(session_json), s, kServed);
    }
  } catch (const RealtimeProtocolError& e) {
    return e.error();
  }
  ADD_FAILURE() << "accepted: " << session_json;
  return {};
}

TEST(RealtimeProtocol, GaSessionUpdate) {
  RealtimeSession s;
  s.id = "sess_1";
  apply_session_update(json::parse(R"({"type": "transcription", "audio": {"input": {
      "format": {"type": "audio/pcm", "rate": 16000},
      "transcription": {"model": "base", "language": "en", "prompt": "JFK"},
      "turn_detection": {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200,
                         "silence_duration_ms": 700, "create_response": true},
      "noise_reduction": {"type": "near_field"}}}})"),
                       s, kServed);
  EXPECT_EQ(s.format, (audio::PcmFormat{audio::PcmEncoding::pcm16, 16000}));
  EXPECT_EQ(s.model, "base");
  EXPECT_EQ(s.live.model, "base");
  EXPECT_EQ(s.live.language, "en");
  EXPECT_EQ(s.live.prompt, "JFK");
  EXPECT_TRUE(s.live.turn.server_vad);
  EXPECT_FLOAT_EQ(s.live.turn.threshold, 0.6f);
  EXPECT_EQ(s.live.turn.prefix_padding_ms, 200);
  EXPECT_EQ(s.live.turn.silence_duration_ms, 700);
  json::object o = session_json(s);
  EXPECT_EQ(o.at("type"), "transcription");
  EXPECT_EQ(o.at("id"), "sess_1");
  const auto& input = o.at("audio").at("input");
  EXPECT_EQ(input.at("format").at("rate"), 16000);
  EXPECT_EQ(input.at("transcription").at("model"), "base");
  EXPECT_EQ(input.at("turn_detection").at("silence_duration_ms"), 700);
  EXPECT_TRUE(input.at("noise_reduction").is_null());  // not applied, and said so

  // A later update changes only what it names; null turn detection means client commits.
  apply_session_update(json::parse(R"({"audio": {"input": {"turn_detection": null,
      "transcription": {"language": "english"}}}})"),
                       s, kServed);
  EXPECT_FALSE(s.live.turn.server_vad);
  EXPECT_EQ(s.live.language, "en");  // a name is taken as OpenAI takes it
  EXPECT_EQ(s.model, "base");
  // A list lets detection choose among those languages only; each is checked and normalised.
  apply_session_update(json::parse(R"({"audio": {"input": {
      "transcription": {"language": "en, German"}}}})"),
                       s, kServed);
  EXPECT_EQ(s.live.language, "en,de");
  // semantic_vad with its eagerness; an update that names no type keeps it.
  apply_session_update(json::parse(R"({"audio": {"input": {"turn_detection":
      {"type": "semantic_vad", "eagerness": "high"}}}})"),
                       s, kServed);
  EXPECT_TRUE(s.live.turn.server_vad && s.live.turn.semantic);
  EXPECT_EQ(s.live.turn.eagerness, Eagerness::high);
  apply_session_update(json::parse(R"({"audio": {"input": {"turn_detection":
      {"eagerness": "low"}}}})"),
                       s, kServed);
  EXPECT_TRUE(s.live.turn.semantic);
  EXPECT_EQ(s.live.turn.eagerness, Eagerness::low);
  EXPECT_EQ(session_json(s).at("audio").at("input").at("turn_detection").at("type"),
            "semantic_vad");
  apply_session_update(json::parse(R"({"audio": {"input": {"turn_detection":
      {"type": "server_vad"}}}})"),
                       s, kServed);
  EXPECT_FALSE(s.live.turn.semantic);
  apply_session_update(json::parse(R"({"audio": {"input": {"turn_detection": null}}})"), s,
                       kServed);
  EXPECT_TRUE(session_json(s).at("audio").at("input").at("turn_detection").is_null());
  apply_session_update(json::parse(R"({"audio": {"input": {"format": {"type": "audio/pcmu"}}}})"),
                       s, kServed);
  EXPECT_EQ(s.format, (audio::PcmFormat{audio::PcmEncoding::mulaw, 8000}));
}

TEST(RealtimeProtocol, BetaTranscriptionSessionUpdate) {
  RealtimeSession s;
  apply_transcription_session_update(json::parse(R"({"input_audio_format": "g711_alaw",
                      "input_audio_transcription": {"model": "whisper-1"},
                      "turn_detection": {"type": "server_vad", "threshold": 0.3}})"),
                                     s, kServed);
  EXPECT_EQ(s.format, (audio::PcmFormat{audio::PcmEncoding::alaw, 8000}));
  EXPECT_FLOAT_EQ(s.live.turn.threshold, 0.3f);
  json::object o = beta_session_json(s);
  EXPECT_EQ(o.at("input_audio_format"), "g711_alaw");
  EXPECT_EQ(o.at("input_audio_transcription").at("model"), "whisper-1");
  EXPECT_EQ(error_of(R"({"input_audio_format": "opus"})", true).param,
            "session.input_audio_format");
}

TEST(RealtimeProtocol, BadValuesNameTheirField) {
  struct Case {
    const char* session;
    const char* param;
    const char* code;
  };
  const Case cases[] = {
      {R"([])", "session", "invalid_type"},
      {R"({"type": "realtime"})", "session.type", "invalid_value"},
      {R"({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}}})",
       "session.audio.input.format.rate", "invalid_value"},
      {R"({"audio": {"input": {"format": {"type": "audio/opus"}}}})",
       "session.audio.input.format.type", "invalid_value"},
      {R"({"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}})",
       "session.audio.input.transcription.model", "model_not_found"},
      {R"({"audio": {"input": {"transcription": {"language": "xx"}}}})",
       "session.audio.input.transcription.language", "invalid_value"},
      {R"({"audio": {"input": {"transcription": {"prompt": 5}}}})",
       "session.audio.input.transcription.prompt", "invalid_type"},
      {R"({"audio": {"input": {"turn_detection": {"type": "smart_vad"}}}})",
       "session.audio.input.turn_detection.type", "invalid_value"},
      {R"({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}})",
       "session.audio.input.turn_detection.eagerness", "invalid_value"},
      {R"({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "interrupt_response": 1}}}})",
       "session.audio.input.turn_detection.interrupt_response", "invalid_type"},
      {R"({"audio": {"input": {"turn_detection": {"threshold": 1.5}}}})",
       "session.audio.input.turn_detection.threshold", "invalid_value"},
      {R"({"audio": {"input": {"turn_detection": {"silence_duration_ms": 1e12}}}})",
       "session.audio.input.turn_detection.silence_duration_ms", "invalid_value"},
      {R"({"audio": {"input": {"turn_detection": {"prefix_padding_ms": 2.5}}}})",
       "session.audio.input.turn_detection.prefix_padding_ms", "invalid_type"},
  };
  for (const auto& c : cases) {
    RealtimeError e = error_of(c.session);
    EXPECT_EQ(e.param, c.param) << c.session;
    EXPECT_EQ(e.code, c.code) << c.session;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(e.message.empty());
  }
  // A refused update changes nothing, not even the fields before the bad one.
  RealtimeSession s;
  EXPECT_THROW(apply_session_update(json::parse(R"({"audio": {"input": {
      "transcription": {"language": "de"}, "turn_detection": {"threshold": -1}}}})"),
                                    s, kServed),
               RealtimeProtocolError);
  EXPECT_EQ(s.live.language, "");
}

TEST(RealtimeProtocol, Base64IsStrict) {
  EXPECT_EQ(decode_base64_audio("AAECAw=="), std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(decode_base64_audio("AAECAw"), std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(decode_base64_audio(""), "");
  for (const char* bad : {"AAE CAw==", "AAECA", "AA=ECAw=", "not base64!", "AAECAw==="}) {
    try {
      decode_base64_audio(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const RealtimeProtocolError& e) {
      EXPECT_EQ(e.error().param, "audio");
    }
  }
}

TEST(RealtimeProtocol, EventsInOpenAIsShape) {
  json::object delta = live_event_json(
      {.kind = LiveEvent::Kind::delta, .item_id = "item_1", .text = " fellow"}, "event_9");
  EXPECT_EQ(delta.at("type"), "conversation.item.input_audio_transcription.delta");
  EXPECT_EQ(delta.at("event_id"), "event_9");
  EXPECT_EQ(delta.at("item_id"), "item_1");
  EXPECT_EQ(delta.at("content_index"), 0);
  EXPECT_EQ(delta.at("delta"), " fellow");
  json::object done = live_event_json(
      {.kind = LiveEvent::Kind::completed, .item_id = "item_1", .text = "Hi.", .seconds = 1.5},
      "e");
  EXPECT_EQ(done.at("transcript"), "Hi.");
  EXPECT_EQ(done.at("usage").at("type"), "duration");
  EXPECT_EQ(done.at("usage").at("seconds"), 1.5);
  json::object committed =
      live_event_json({.kind = LiveEvent::Kind::committed, .item_id = "item_2"}, "e");
  EXPECT_TRUE(committed.at("previous_item_id").is_null());
  json::object started = live_event_json(
      {.kind = LiveEvent::Kind::speech_started, .item_id = "i", .audio_ms = 1200}, "e");
  EXPECT_EQ(started.at("audio_start_ms"), 1200);
  json::object error = error_event_json({.code = "invalid_value", .message = "m", .param = "audio"},
                                        "e", "evt_client");
  EXPECT_EQ(error.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(error.at("error").at("event_id"), "evt_client");
}

TEST(RealtimeProtocol, Base64InPiecesDecodesAsTheWhole) {
  const std::string text = "SGVsbG8sIHdvcmxkIQ==";  // "Hello, world!"
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    Base64Decoder d(1024);
    d.feed(std::string_view(text).substr(0, cut));
    d.feed(std::string_view(text).substr(cut));
    EXPECT_EQ(d.finish(), "Hello, world!");
  }
  Base64Decoder padded_inside(1024);
  EXPECT_THROW(padded_inside.feed("AA==AA"), RealtimeProtocolError);
  Base64Decoder bounded(4);
  try {
    bounded.feed("AAAAAAAA");  // 6 bytes
    FAIL() << "decoded past its bound";
  } catch (const RealtimeProtocolError& e) {
    EXPECT_EQ(e.error().code, "audio_too_large");
  }
}

TEST(RealtimeProtocol, LargeEventsAreScannedNotParsed) {
  std::string audio(200000, 'A');  // 150000 zero bytes
  ScannedEvent e = scan_large_event(
      R"({"event_id":"evt_1","type":"input_audio_buffer.append","audio":")" + audio + "\"}",
      1 << 20);
  EXPECT_EQ(e.type, "input_audio_buffer.append");
  EXPECT_EQ(e.event_id, "evt_1");
  EXPECT_TRUE(e.has_audio);
  EXPECT_EQ(e.audio, std::string(150000, '\0'));
  // Nothing nested, and no large string but the audio.
  std::string array = R"({"type":"x","a":[)";
  for (int i = 0; i < 50000; ++i) array += "0,";
  array += "0]}";
  EXPECT_THROW(scan_large_event(array, 1 << 20), RealtimeProtocolError);
  EXPECT_THROW(scan_large_event(R"({"type":"x","o":{"a":1}})", 1 << 20), RealtimeProtocolError);
  EXPECT_THROW(scan_large_event(R"({"type":")" + std::string(300, 't') + R"("})", 1 << 20),
               RealtimeProtocolError);
  EXPECT_THROW(scan_large_event(R"({"type":"x","audio":"A"})", 1 << 20), RealtimeProtocolError);
  EXPECT_THROW(scan_large_event("[1]", 1 << 20), RealtimeProtocolError);
}

}  // namespace
}  // namespace sra::http
