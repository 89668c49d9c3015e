#include "http/deepgram_live.h"

#include <spdlog/spdlog.h>

#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <map>
#include <set>

#include "core/errors.h"
#include "core/uuid.h"
#include "http/deepgram_api.h"
#include "http/live_connection.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;

namespace {

// The largest message a connection takes: REALTIME_MAX_AHEAD_SECONDS of PCM16 at 48 kHz, at most
// 16 MiB (a larger one would break the pace rule anyway).
std::size_t max_binary_bytes(const LiveSettings& settings) {
  return static_cast<std::size_t>(
      std::min(settings.max_ahead_seconds * 2 * 48000 * 8, 16.0 * 1024 * 1024));
}

// What the session decodes: the stream's format, or PCM16 at its rate once channels are mixed.
audio::PcmFormat decoded_format(const ListenRequest& request) {
  audio::PcmFormat format = *request.raw;
  if (request.channels > 1) format.encoding = audio::PcmEncoding::pcm16;
  return format;
}

class DeepgramConnection final : public LiveConnection {
 public:
  DeepgramConnection(ApiContext& ctx, Socket& ws, std::string client, std::string request_id,
                     std::shared_ptr<const vad::SileroVad> vad, ListenRequest request)
      : LiveConnection(ctx, ws, std::move(client), request_id, std::move(vad),
                       decoded_format(request), "dg_" + request_id),
        request_(std::move(request)),
        encoding_(request_.raw->encoding) {
    LiveConfig config = live_.config();
    config.model = request_.model;
    if (auto it = request_.options.find("language"); it != request_.options.end()) {
      config.language = it->second;
    }
    for (const auto& [name, value] : request_.options) {
      if (name != "language") config.options[name] = value;
    }
    config.final_options["word_timestamps"] = "true";
    config.turn.server_vad = request_.endpointing_ms >= 0;
    config.turn.semantic = false;
    if (request_.endpointing_ms >= 0) config.turn.silence_duration_ms = request_.endpointing_ms;
    live_.configure(config);
    channels_ = request_.channels;
  }

 private:
  json::object results_metadata() const {
    return json::object{{"request_id", request_id_},
                        {"model_info", json::object{{"name", request_.render.model},
                                                    {"version", SRA_VERSION},
                                                    {"arch", "speech-recognition-api"}}},
                        {"model_uuid", request_.render.model}};
  }

  void opening(LiveReply&) override {}

  std::string error_message(const RealtimeError& error, const std::string&) override {
    return json::serialize(json::object{{"type", "Error"},
                                        {"variant", error.code},
                                        {"description", error.message},
                                        {"message", error.message},
                                        {"code", error.code}});
  }

  void on_binary(std::string_view bytes, LiveReply& reply) override {
    const std::size_t width = encoding_ == audio::PcmEncoding::pcm16 ? 2 : 1;
    const std::size_t frame = width * static_cast<std::size_t>(channels_);
    received_seconds_ +=
        static_cast<double>(bytes.size()) / static_cast<double>(frame * pcm_->format().rate);
    if (channels_ == 1) {
      append(bytes, reply);
      return;
    }
    // Interleaved channels mixed down; a frame cut by the message's end waits for the next.
    carry_.append(bytes);
    const std::size_t whole = carry_.size() / frame * frame;
    const std::string mono =
        audio::mix_to_mono_pcm16(std::string_view(carry_).substr(0, whole), encoding_, channels_);
    carry_.erase(0, whole);
    append(mono, reply);
  }

  void on_text(std::string_view text, LiveReply& reply) override {
    boost::system::error_code ec;
    json::value parsed = json::parse(text, ec);
    const json::value* type =
        ec || !parsed.is_object() ? nullptr : parsed.as_object().if_contains("type");
    if (!type || !type->is_string()) {
      add_error(reply,
                {.code = "INVALID_MESSAGE",
                 .message = "A text message must be a JSON object with a `type`: KeepAlive, "
                            "Finalize or CloseStream."},
                "");
      return;
    }
    const std::string_view kind = type->as_string();
    if (kind == "KeepAlive") {
      touch();
    } else if (kind == "Finalize" || kind == "CloseStream") {
      std::vector<LiveEvent> events;
      try {
        live_.commit(events);
      } catch (const Error&) {
        // Nothing heard since the last turn: nothing to finalize.
      }
      for (const LiveEvent& e : events) {
        if (e.kind == LiveEvent::Kind::committed) finalized_.insert(e.item_id);
      }
      add_events(reply, events);
      check_backlog(reply);
      if (kind == "CloseStream") reply.close_when_done = true;
    } else {
      add_error(reply,
                {.code = "INVALID_MESSAGE",
                 .message = "Unknown message type '" + std::string(kind.substr(0, 64)) +
                            "': KeepAlive, Finalize or CloseStream."},
                "");
    }
  }

  void add_events(LiveReply& reply, const std::vector<LiveEvent>& events) override {
    for (const LiveEvent& e : events) {
      switch (e.kind) {
        case LiveEvent::Kind::speech_started:
          if (request_.vad_events) {
            reply.messages.push_back(json::serialize(
                json::object{{"type", "SpeechStarted"},
                             {"channel", json::array{0}},
                             {"timestamp", static_cast<double>(e.audio_ms) / 1000.0}}));
          }
          break;
        case LiveEvent::Kind::committed:
          reply.committed.push_back(e.item_id);
          break;
        case LiveEvent::Kind::delta:
          interim_[e.item_id] += e.text;
          if (request_.interim_results) {
            reply.messages.push_back(json::serialize(
                results(e.item_id, 0, 0,
                        deepgram_alternative({}, interim_[e.item_id], 0, request_.render.punctuate),
                        false)));
          }
          break;
        case LiveEvent::Kind::completed: {
          json::object alternative =
              deepgram_alternative(e.words, e.text, 0.9, request_.render.punctuate);
          reply.messages.push_back(json::serialize(
              results(e.item_id, e.start, e.seconds, std::move(alternative), true)));
          if (request_.utterance_end_ms > 0) {
            const double last = e.words.empty() ? e.start + e.seconds : e.words.back().end;
            reply.messages.push_back(json::serialize(json::object{{"type", "UtteranceEnd"},
                                                                  {"channel", json::array{0, 1}},
                                                                  {"last_word_end", last}}));
          }
          interim_.erase(e.item_id);
          finalized_.erase(e.item_id);
          break;
        }
        case LiveEvent::Kind::failed:
          reply.messages.push_back(error_message(
              {.code = "TRANSCRIPTION_FAILED", .message = "a turn was not transcribed: " + e.text},
              ""));
          interim_.erase(e.item_id);
          finalized_.erase(e.item_id);
          break;
        default:
          break;
      }
    }
  }

  json::object results(const std::string& item, double start, double duration,
                       json::object alternative, bool final) const {
    const bool from_finalize = finalized_.count(item) > 0;
    return json::object{{"type", "Results"},
                        {"channel_index", json::array{0, 1}},
                        {"duration", duration},
                        {"start", start},
                        {"is_final", final},
                        {"speech_final", final && !from_finalize},
                        {"from_finalize", from_finalize},
                        {"channel", json::object{{"alternatives", json::array{alternative}}}},
                        {"metadata", results_metadata()}};
  }

  void closing(LiveReply& reply) override {
    reply.messages.push_back(json::serialize(json::object{
        {"type", "Metadata"},
        {"transaction_key", "deprecated"},
        {"request_id", request_id_},
        {"sha256", ""},
        {"created", deepgram_created_now()},
        {"duration", received_seconds_},
        {"channels", 1},
        {"models", json::array{json::value(request_.render.model)}},
        {"model_info", json::object{{request_.render.model,
                                     json::object{{"name", request_.render.model},
                                                  {"version", SRA_VERSION},
                                                  {"arch", "speech-recognition-api"}}}}}}));
  }

  ListenRequest request_;
  int channels_ = 1;
  audio::PcmEncoding encoding_;  // of the stream (mixed down to PCM16 when it has channels)
  std::string carry_;            // a frame cut by a message's end (the session's strand)
  std::map<std::string, std::string> interim_;  // a spoken turn's text so far
  std::set<std::string> finalized_;             // turns ended by Finalize or CloseStream
  double received_seconds_ = 0;
};

}  // namespace

asio::awaitable<Response> deepgram_live_route(ApiContext& ctx, const RequestParser::value_type& req,
                                              Exchange& ex) {
  if (!websocket::is_upgrade(req)) {
    Response res = deepgram_error_response(
        Error(ErrorKind::invalid_request,
              "GET /v1/listen is Deepgram's live WebSocket endpoint: connect with a WebSocket "
              "client (`Upgrade: websocket`), or POST audio for a pre-recorded transcription"),
        ex.request_id);
    res.result(beast::http::status::upgrade_required);
    res.set(beast::http::field::upgrade, "websocket");
    co_return res;
  }
  ListenRequest request = parse_listen(ctx, req.target(), true);
  request.render.request_id = ex.request_id;
  if (!request.raw) {
    throw missing_field("encoding",
                        "a live connection needs `encoding` (linear16, mulaw or alaw) and "
                        "`sample_rate`: this server takes raw audio, not containers, live");
  }
  LiveAdmission admission = co_await admit_live(ctx, req, ex);
  if (admission.vad_error && request.endpointing_ms >= 0) {
    throw unavailable("turns cannot end by silence now (" + *admission.vad_error +
                      "); connect with endpointing=false and send Finalize, or retry later");
  }
  // A browser sends its key as the subprotocols `token, <key>`: it gets `token` back.
  const std::string protocols(req[beast::http::field::sec_websocket_protocol]);
  const bool offers_token = protocols.starts_with("token,") || protocols == "token";
  const LiveSettings& settings = ctx.service.limits().live;
  LiveConnection::Socket ws(ex.stream);
  if (!co_await accept_live(ws, req, ex, settings, max_binary_bytes(settings),
                            offers_token ? "token" : "")) {
    co_return Response{};
  }
  spdlog::info("deepgram live session opened ({} open)", ctx.service.live_sessions());
  DeepgramConnection connection(ctx, ws, admission.client, ex.request_id, admission.vad,
                                std::move(request));
  co_await connection.run();
  spdlog::info("deepgram live session closed");
  co_return Response{};
}

}  // namespace sra::http
