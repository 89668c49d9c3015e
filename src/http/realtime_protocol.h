// OpenAI's Realtime API in its transcription-session form, as data: the session configuration a
// client sets with `session.update` (the GA shape, `session.audio.input.{format, transcription,
// turn_detection}`) or the beta `transcription_session.update` (`input_audio_format`,
// `input_audio_transcription`, `turn_detection`), the session object echoed in
// session.created/updated, and the server events of a LiveSession in OpenAI's shapes.
//
// Pure functions over JSON: no I/O, safe from any thread. A bad client value throws
// RealtimeProtocolError carrying OpenAI's error fields (type, code, message, param); the
// session is then left as it was.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "audio/pcm_stream.h"
#include "service/live_session.h"

namespace sra::http {

// The `error` object of OpenAI's `error` event.
struct RealtimeError {
  std::string type = "invalid_request_error";  // or "server_error"
  std::string code;                            // e.g. "invalid_value", "model_not_found"
  std::string message;                         // for people
  std::string param = {};                      // the field at fault, dotted; empty if none
};

class RealtimeProtocolError : public std::runtime_error {
 public:
  explicit RealtimeProtocolError(RealtimeError error)
      : std::runtime_error(error.message), error_(std::move(error)) {}
  const RealtimeError& error() const { return error_; }

 private:
  RealtimeError error_;
};

// A session's settings, as the client sees them.
struct RealtimeSession {
  std::string id;                   // "sess_..."
  audio::PcmFormat format;          // of input_audio_buffer.append's audio
  std::string model = "whisper-1";  // transcription.model: a served model name
  LiveConfig live;                  // language, prompt and turn detection (live.model = model)
};

// Applies a GA `session.update` event's `session` object. `served` lists the model names the
// server accepts.
void apply_session_update(const boost::json::value& session, RealtimeSession& state,
                          const std::vector<std::string>& served);
// Applies a beta `transcription_session.update` event's `session` object.
void apply_transcription_session_update(const boost::json::value& session, RealtimeSession& state,
                                        const std::vector<std::string>& served);

// The session object of session.created / session.updated (GA shape).
boost::json::object session_json(const RealtimeSession& state);
// The session object of transcription_session.updated (beta shape).
boost::json::object beta_session_json(const RealtimeSession& state);

// A server event for a LiveSession event, with its event_id.
boost::json::object live_event_json(const LiveEvent& event, const std::string& event_id);
// An `error` event; `client_event_id` is the id of the client event at fault, if any.
boost::json::object error_event_json(const RealtimeError& error, const std::string& event_id,
                                     const std::string& client_event_id);

// Base64 text decoded as it comes, in pieces (an append's audio as the JSON parser reads it).
// Throws RealtimeProtocolError: invalid_value (param "audio") for anything but base64 (padding is
// optional and only at the end, white space is not allowed), audio_too_large past `max_bytes`.
class Base64Decoder {
 public:
  explicit Base64Decoder(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  void feed(std::string_view piece);
  // The bytes; throws when the text ended inside a group that cannot be base64.
  std::string finish();

 private:
  std::size_t max_bytes_;
  std::string out_;
  std::uint32_t acc_ = 0;
  int bits_ = 0;
  std::size_t digits_ = 0;
  int padding_ = 0;
};

// The audio of an input_audio_buffer.append event's base64 `audio` (as Base64Decoder).
std::string decode_base64_audio(std::string_view text);

// A message too large to be parsed into a document (its members would take 25 times its size):
// only an append, read as it streams: the top-level "type" and "event_id" (each at most 256
// bytes) and the "audio", decoded at once into bytes (at most `max_audio_bytes`); other members
// may be small scalars. Anything nested or any other large string throws RealtimeProtocolError
// (invalid_event), as do the Base64Decoder's errors.
struct ScannedEvent {
  std::string type;
  std::string event_id;
  bool has_audio = false;
  std::string audio;  // the decoded bytes
};
ScannedEvent scan_large_event(std::string_view text, std::size_t max_audio_bytes);

}  // namespace sra::http
