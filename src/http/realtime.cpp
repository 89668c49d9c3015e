#include "http/realtime.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <deque>

#include "core/errors.h"
#include "core/uuid.h"
#include "http/dispatch.h"
#include "http/form.h"
#include "http/live_connection.h"
#include "http/openai_api.h"
#include "http/realtime_protocol.h"
#include "service/live_session.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxAudioBytes = 15 * 1024 * 1024;  // per append, as OpenAI
constexpr std::size_t kMaxSmallMessage = 64 * 1024;       // parsed whole; larger: scanned
constexpr int kMostBytesPerSecond = 2 * 48000;            // PCM16 at 48 kHz, the richest format
std::string short_id() {
  std::string id = make_uuid();
  std::erase(id, '-');
  return id.substr(0, 20);
}

// The largest message a session takes: an append of REALTIME_MAX_AHEAD_SECONDS of the richest
// format, as base64 in JSON (a larger one would break the pace rule anyway), within OpenAI's
// 15 MiB of audio per append.
std::size_t max_message_bytes(const LiveSettings& settings) {
  const double audio =
      std::min(settings.max_ahead_seconds * kMostBytesPerSecond, double(kMaxAudioBytes));
  return static_cast<std::size_t>(audio) / 3 * 4 + 4 + kMaxSmallMessage;
}

// One OpenAI Realtime session (see realtime.h): its events on the live machinery.
class RealtimeConnection final : public LiveConnection {
 public:
  RealtimeConnection(ApiContext& ctx, Socket& ws, std::string client, std::string request_id,
                     std::shared_ptr<const vad::SileroVad> vad, std::optional<RealtimeError> notice,
                     std::string id = "sess_" + short_id())
      : LiveConnection(ctx, ws, std::move(client), std::move(request_id), std::move(vad),
                       RealtimeSession{}.format, id),
        served_(ctx.service.parts().served_model_names()),
        notice_(std::move(notice)) {
    session_.id = std::move(id);
    session_.live = live_.config();
  }

  void set_model(const std::string& name) {
    session_.model = name;
    session_.live.model = name;
    live_.configure(session_.live);
  }

 private:
  std::string next_id() { return next_event_id("event_" + session_.id.substr(5, 12)); }

  void opening(LiveReply& reply) override {
    reply.messages.push_back(json::serialize(json::object{{"type", "session.created"},
                                                          {"event_id", next_id()},
                                                          {"session", session_json(session_)}}));
    if (notice_) add_error(reply, *notice_, "");
  }

  std::string error_message(const RealtimeError& error,
                            const std::string& client_event_id) override {
    return json::serialize(error_event_json(error, next_id(), client_event_id));
  }

  void add_events(LiveReply& reply, const std::vector<LiveEvent>& events) override {
    for (const auto& e : events) {
      if (e.kind == LiveEvent::Kind::committed) reply.committed.push_back(e.item_id);
      reply.messages.push_back(json::serialize(live_event_json(e, next_id())));
    }
  }

  void on_binary(std::string_view, LiveReply& reply) override {
    add_error(reply,
              {.code = "invalid_event",
               .message = "Binary messages are not accepted: send JSON events as text."},
              "");
  }

  // One client event. Messages over kMaxSmallMessage are only ever appends and are scanned,
  // never parsed into a document; the others are parsed whole.
  void on_text(std::string_view text, LiveReply& reply) override {
    std::string event_id;
    try {
      if (text.size() > kMaxSmallMessage) {
        ScannedEvent scanned = scan_large_event(text, kMaxAudioBytes);
        event_id = scanned.event_id.size() <= 256 ? scanned.event_id : std::string();
        if (scanned.type != "input_audio_buffer.append" || !scanned.has_audio) {
          throw RealtimeProtocolError(
              {.code = "invalid_event",
               .message = "A message over 64 KiB must be an input_audio_buffer.append event."});
        }
        append(scanned.audio, reply);
        return;
      }
      boost::system::error_code ec;
      json::value parsed = json::parse(text, ec);
      if (ec || !parsed.is_object()) {
        add_error(reply,
                  {.code = "invalid_json",
                   .message = "The event is not a JSON object" +
                              (ec ? ": " + ec.message() : std::string("."))},
                  "");
        return;
      }
      const json::object& event = parsed.as_object();
      if (auto it = event.find("event_id");
          it != event.end() && it->value().is_string() && it->value().as_string().size() <= 256) {
        event_id = std::string(it->value().as_string());
      }
      auto type_it = event.find("type");
      if (type_it == event.end() || !type_it->value().is_string()) {
        throw RealtimeProtocolError({.code = "missing_required_parameter",
                                     .message = "Missing required parameter: 'type'.",
                                     .param = "type"});
      }
      dispatch_event(type_it->value().as_string(), event, reply);
    } catch (const RealtimeProtocolError& e) {
      add_error(reply, e.error(), event_id);
    } catch (const Error& e) {
      add_error(reply,
                {.code = "invalid_value", .message = e.what(), .param = e.field().value_or("")},
                event_id);
    }
  }

  void dispatch_event(std::string_view type, const json::object& event, LiveReply& reply) {
    if (type == "input_audio_buffer.append") {
      auto it = event.find("audio");
      if (it == event.end() || !it->value().is_string()) {
        throw RealtimeProtocolError({.code = "missing_required_parameter",
                                     .message = "Missing required parameter: 'audio' (base64).",
                                     .param = "audio"});
      }
      const json::string& b64 = it->value().as_string();
      append(decode_base64_audio(std::string_view(b64.data(), b64.size())), reply);
    } else if (type == "input_audio_buffer.commit") {
      std::vector<LiveEvent> events;
      try {
        live_.commit(events);
      } catch (const Error& e) {
        throw RealtimeProtocolError(
            {.code = "input_audio_buffer_commit_empty", .message = e.what()});
      }
      add_events(reply, events);
      check_backlog(reply);
    } else if (type == "input_audio_buffer.clear") {
      live_.clear();
      reply.cleared = true;
      reply.messages.push_back(json::serialize(
          json::object{{"type", "input_audio_buffer.cleared"}, {"event_id", next_id()}}));
    } else if (type == "session.update" || type == "transcription_session.update") {
      update_session(event, type == "transcription_session.update", reply);
    } else {
      std::string shown(type.substr(0, 64));
      throw RealtimeProtocolError(
          {.code = "invalid_value",
           .message = "Invalid value: '" + shown +
                      "'. A transcription session supports: 'session.update', "
                      "'transcription_session.update', 'input_audio_buffer.append', "
                      "'input_audio_buffer.commit', 'input_audio_buffer.clear'.",
           .param = "type"});
    }
  }

  void update_session(const json::object& event, bool beta, LiveReply& reply) {
    auto it = event.find("session");
    if (it == event.end()) {
      throw RealtimeProtocolError({.code = "missing_required_parameter",
                                   .message = "Missing required parameter: 'session'.",
                                   .param = "session"});
    }
    RealtimeSession next = session_;
    if (beta) {
      apply_transcription_session_update(it->value(), next, served_);
    } else {
      apply_session_update(it->value(), next, served_);
    }
    try {
      live_.configure(next.live);
    } catch (const Error& e) {
      throw RealtimeProtocolError(
          {.code = "invalid_value",
           .message = e.what(),
           .param = beta ? "session.turn_detection" : "session.audio.input.turn_detection"});
    }
    set_format(next.format, reply);
    session_ = std::move(next);
    reply.messages.push_back(json::serialize(
        json::object{{"type", beta ? "transcription_session.updated" : "session.updated"},
                     {"event_id", next_id()},
                     {"session", beta ? beta_session_json(session_) : session_json(session_)}}));
  }

  RealtimeSession session_;  // touched only on the session's strand
  std::vector<std::string> served_;
  std::optional<RealtimeError> notice_;
};

// Calls `f` with each name of a Sec-WebSocket-Protocol value, trimmed.
template <typename F>
void for_each_subprotocol(std::string_view protocols, F f) {
  while (!protocols.empty()) {
    auto comma = protocols.find(',');
    std::string_view p = protocols.substr(0, comma);
    while (!p.empty() && (p.front() == ' ' || p.front() == '\t')) p.remove_prefix(1);
    while (!p.empty() && (p.back() == ' ' || p.back() == '\t')) p.remove_suffix(1);
    f(p);
    if (comma == std::string_view::npos) break;
    protocols.remove_prefix(comma + 1);
  }
}

bool offers_subprotocol(std::string_view protocols, std::string_view name) {
  bool found = false;
  for_each_subprotocol(protocols, [&](std::string_view p) { found = found || p == name; });
  return found;
}

// "host:port" of an origin ("https://a.example" -> "a.example:443"), lower case, the scheme's
// default port made explicit; empty when it is not one.
std::string origin_authority(std::string_view origin) {
  auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string scheme(origin.substr(0, scheme_end));
  std::string host(origin.substr(scheme_end + 3));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host.empty() || host.find('/') != std::string::npos) return {};
  const std::size_t bracket = host.rfind(']');  // an IPv6 address's end
  const std::size_t colon = host.rfind(':');
  const bool has_port =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) host += scheme == "https" || scheme == "wss" ? ":443" : ":80";
  return host;
}

}  // namespace

bool origin_may_connect(std::string_view origin, std::string_view host, const Access& access,
                        bool require_origin) {
  if (origin.empty()) return !require_origin;  // not a browser: nothing to hijack
  if (access.cors_enabled() && access.origin_allowed(origin)) return true;
  // The same origin: a page the server itself serves (its own live page).
  std::string own = origin_authority(std::string("http://") + std::string(host));
  std::string theirs = origin_authority(origin);
  if (own.empty() || theirs.empty()) return false;
  // The page's scheme decides its default port; the Host header names the port it used.
  if (theirs == own) return true;
  std::string own_https = origin_authority(std::string("https://") + std::string(host));
  return theirs == own_https;
}

std::optional<std::string> subprotocol_api_key(std::string_view protocols) {
  constexpr std::string_view kPrefix = "openai-insecure-api-key.";
  std::optional<std::string> key;
  for_each_subprotocol(protocols, [&](std::string_view p) {
    if (!key && p.starts_with(kPrefix)) key = std::string(p.substr(kPrefix.size()));
  });
  return key;
}

asio::awaitable<Response> realtime_route(ApiContext& ctx, const RequestParser::value_type& req,
                                         Exchange& ex, std::string_view) {
  if (!websocket::is_upgrade(req)) {
    Response res = openai_error_response(
        Error(ErrorKind::invalid_request,
              "/v1/realtime is a WebSocket endpoint: connect with a WebSocket client (OpenAI's "
              "realtime SDK, or `Upgrade: websocket`)"));
    res.result(beast::http::status::upgrade_required);
    res.set(beast::http::field::upgrade, "websocket");
    co_return res;
  }
  LiveAdmission admission = co_await admit_live(ctx, req, ex);
  // The query's model, when it is a served one (OpenAI's realtime model names are not).
  std::string model = query_parameter(req.target(), "model");
  const auto served = ctx.service.parts().served_model_names();
  if (std::find(served.begin(), served.end(), model) == served.end()) model.clear();
  std::optional<RealtimeError> notice;
  if (admission.vad_error) {
    notice = RealtimeError{.type = "server_error",
                           .code = "vad_unavailable",
                           .message = "server_vad turn detection is off: " + *admission.vad_error,
                           .param = "session.audio.input.turn_detection"};
  }
  // The handshake: a browser's subprotocols get "realtime" back, as OpenAI answers.
  const bool offers_realtime =
      offers_subprotocol(req[beast::http::field::sec_websocket_protocol], "realtime");
  const LiveSettings& settings = ctx.service.limits().live;
  LiveConnection::Socket ws(ex.stream);
  if (!co_await accept_live(ws, req, ex, settings, max_message_bytes(settings),
                            offers_realtime ? "realtime" : "")) {
    co_return Response{};
  }
  spdlog::info("realtime session opened ({} open)", ctx.service.live_sessions());
  RealtimeConnection connection(ctx, ws, admission.client, ex.request_id, admission.vad, notice);
  if (!model.empty()) connection.set_model(model);
  co_await connection.run();
  spdlog::info("realtime session closed");
  co_return Response{};
}

}  // namespace sra::http
