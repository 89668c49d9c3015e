#include "http/realtime.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <deque>

#include "core/errors.h"
#include "core/uuid.h"
#include "http/form.h"
#include "http/openai_api.h"
#include "http/realtime_protocol.h"
#include "service/live_session.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxAudioBytes = 15 * 1024 * 1024;  // per append, as OpenAI
constexpr std::size_t kMaxMessageBytes = kMaxAudioBytes / 3 * 4 + 64 * 1024;  // its base64 + JSON
constexpr std::size_t kMaxOutboxBytes = 4 * 1024 * 1024;  // events the client has not read yet
constexpr auto kAdmissionRetry = std::chrono::milliseconds(200);
constexpr auto kFinalAdmissionWait = std::chrono::seconds(120);

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string short_id() {
  std::string id = make_uuid();
  std::erase(id, '-');
  return id.substr(0, 20);
}

// One WebSocket session. Lives in realtime_route's frame; run() returns only once its reader,
// writer and worker coroutines have all ended. Everything runs on the connection's strand.
class RealtimeConnection {
 public:
  using Socket = websocket::stream<beast::tcp_stream&>;

  RealtimeConnection(ApiContext& ctx, Socket& ws, std::string client, std::string request_id,
                     std::shared_ptr<const vad::SileroVad> vad)
      : ctx_(ctx),
        ws_(ws),
        client_(std::move(client)),
        request_id_(std::move(request_id)),
        settings_(ctx.service.limits().live),
        live_(settings_, vad),
        served_(ctx.service.parts().served_model_names()),
        wake_writer_(ws.get_executor()),
        wake_worker_(ws.get_executor()),
        all_done_(ws.get_executor()),
        started_(Clock::now()) {
    session_.id = "sess_" + short_id();
    session_.live = live_.config();
    pcm_ = std::make_unique<audio::PcmStream>(session_.format);
  }

  void set_model(const std::string& name) {
    session_.model = name;
    session_.live.model = name;
    live_.configure(session_.live);
  }

  // Sends session.created (and `notice` as an error event, if any), then serves the session.
  asio::awaitable<void> run(const std::optional<RealtimeError>& notice);

 private:
  std::string next_event_id() {
    return "event_" + session_.id.substr(5, 12) + std::to_string(++events_);
  }

  void loop_ended() {
    --loops_;
    all_done_.cancel();
  }

  // Queues an event for the writer. A client that lets its events pile up is cut off.
  void send(const json::object& event) {
    if (ended_) return;
    std::string text = json::serialize(event);
    outbox_bytes_ += text.size();
    outbox_.push_back(std::move(text));
    if (outbox_bytes_ > kMaxOutboxBytes) {
      spdlog::warn("realtime session {}: the client does not read its events; closing",
                   session_.id);
      ended_ = true;
      boost::system::error_code ignored;
      ws_.next_layer().socket().close(ignored);
    }
    wake_writer_.cancel();
  }

  void send_error(const RealtimeError& error, const std::string& client_event_id) {
    metrics().realtime.with({"client_error"}).add();
    send(error_event_json(error, next_event_id(), client_event_id));
  }

  void send_events(const std::vector<LiveEvent>& events) {
    for (const auto& e : events) {
      // A partial of a turn that has just ended is no use any more: its final comes next.
      if (e.kind == LiveEvent::Kind::committed && e.item_id == partial_item_) cancel_partial();
      send(live_event_json(e, next_event_id()));
    }
    if (!events.empty()) wake_worker_.cancel();
  }

  void cancel_partial() {
    if (job_cancel_ && !partial_item_.empty()) job_cancel_->cancel("a newer state of the turn");
  }

  // Tells the client why (an error event) and closes the session after the queued events.
  void close_with(const RealtimeError& error, websocket::close_code code) {
    metrics().realtime.with({"closed_by_server"}).add();
    send(error_event_json(error, next_event_id(), ""));
    if (!close_reason_) close_reason_ = websocket::close_reason(code, error.message.substr(0, 120));
    wake_writer_.cancel();
  }

  asio::awaitable<void> read_loop();

  asio::awaitable<void> write_loop();

  asio::awaitable<void> work_loop();

  asio::awaitable<void> run_work(const LiveWork& work);

  void handle(std::string_view text) {
    boost::system::error_code ec;
    json::value parsed = json::parse(text, ec);
    if (ec || !parsed.is_object()) {
      send_error({.code = "invalid_json",
                  .message = "The event is not a JSON object" +
                             (ec ? ": " + ec.message() : std::string(".")) + ""},
                 "");
      return;
    }
    const json::object& event = parsed.as_object();
    std::string event_id;
    if (auto it = event.find("event_id");
        it != event.end() && it->value().is_string() && it->value().as_string().size() <= 256) {
      event_id = std::string(it->value().as_string());
    }
    auto type_it = event.find("type");
    if (type_it == event.end() || !type_it->value().is_string()) {
      send_error({.code = "missing_required_parameter",
                  .message = "Missing required parameter: 'type'.",
                  .param = "type"},
                 event_id);
      return;
    }
    const std::string_view type = type_it->value().as_string();
    try {
      if (type == "input_audio_buffer.append") {
        append(event);
      } else if (type == "input_audio_buffer.commit") {
        std::vector<LiveEvent> events;
        try {
          live_.commit(events);
        } catch (const Error& e) {
          throw RealtimeProtocolError(
              {.code = "input_audio_buffer_commit_empty", .message = e.what()});
        }
        send_events(events);
      } else if (type == "input_audio_buffer.clear") {
        live_.clear();
        cancel_partial();
        send(json::object{{"type", "input_audio_buffer.cleared"}, {"event_id", next_event_id()}});
      } else if (type == "session.update" || type == "transcription_session.update") {
        update_session(event, type == "transcription_session.update");
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
    } catch (const RealtimeProtocolError& e) {
      send_error(e.error(), event_id);
    } catch (const Error& e) {
      send_error({.code = "invalid_value", .message = e.what(), .param = e.field().value_or("")},
                 event_id);
    } catch (const std::exception& e) {
      spdlog::error("realtime session {}: internal error: {}", session_.id, e.what());
      send_error({.type = "server_error", .code = "internal_error", .message = "internal error"},
                 event_id);
    }
  }

  void update_session(const json::object& event, bool beta) {
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
    if (!(next.format == session_.format)) {
      std::vector<float> rest;
      pcm_->flush(rest);
      std::vector<LiveEvent> events;
      live_.append(rest.data(), rest.size(), events);
      send_events(events);
      pcm_ = std::make_unique<audio::PcmStream>(next.format);
    }
    session_ = std::move(next);
    send(json::object{{"type", beta ? "transcription_session.updated" : "session.updated"},
                      {"event_id", next_event_id()},
                      {"session", beta ? beta_session_json(session_) : session_json(session_)}});
  }

  void append(const json::object& event) {
    auto it = event.find("audio");
    if (it == event.end() || !it->value().is_string()) {
      throw RealtimeProtocolError({.code = "missing_required_parameter",
                                   .message = "Missing required parameter: 'audio' (base64).",
                                   .param = "audio"});
    }
    const json::string& b64 = it->value().as_string();
    if (b64.size() / 4 * 3 > kMaxAudioBytes) {
      throw RealtimeProtocolError(
          {.code = "audio_too_large",
           .message = "An append may carry at most 15 MiB of audio; send it in smaller pieces.",
           .param = "audio"});
    }
    std::string bytes = decode_base64_audio(std::string_view(b64.data(), b64.size()));
    // Audio ahead of the wall clock since the first append: a client faster than real time.
    if (!first_audio_) first_audio_ = Clock::now();
    received_seconds_ += static_cast<double>(bytes.size()) / session_.format.bytes_per_second();
    if (received_seconds_ - seconds_since(*first_audio_) > settings_.max_ahead_seconds) {
      close_with({.code = "input_audio_rate_exceeded",
                  .message = "Audio is arriving faster than real time (more than "
                             "REALTIME_MAX_AHEAD_SECONDS = " +
                             std::to_string(static_cast<long long>(settings_.max_ahead_seconds)) +
                             " s ahead); send it at the pace it is spoken."},
                 websocket::close_code::policy_error);
      return;
    }
    samples_.clear();
    pcm_->push(bytes, samples_);
    std::vector<LiveEvent> events;
    try {
      live_.append(samples_.data(), samples_.size(), events);
    } catch (const Error& e) {
      throw RealtimeProtocolError({.code = "input_audio_buffer_full", .message = e.what()});
    }
    send_events(events);
    if (live_.pending_turns() > static_cast<std::size_t>(settings_.max_pending_turns)) {
      close_with({.code = "transcription_backlog",
                  .message = "More than REALTIME_MAX_PENDING_TURNS (" +
                             std::to_string(settings_.max_pending_turns) +
                             ") turns wait for their transcription: the server cannot keep up."},
                 websocket::close_code::try_again_later);
    }
    wake_worker_.cancel();
  }

  ApiContext& ctx_;
  Socket& ws_;
  std::string client_;
  std::string request_id_;
  LiveSettings settings_;
  LiveSession live_;
  RealtimeSession session_;
  std::vector<std::string> served_;
  std::unique_ptr<audio::PcmStream> pcm_;
  std::vector<float> samples_;
  TranscriptionJob job_;
  std::unique_ptr<CancelToken> job_cancel_;  // the running transcription's
  std::string partial_item_;                 // the turn of the running partial, if one runs

  std::deque<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  asio::steady_timer wake_writer_;
  asio::steady_timer wake_worker_;
  asio::steady_timer all_done_;
  int loops_ = 0;
  bool ended_ = false;                                   // the connection is gone (or being cut)
  std::optional<websocket::close_reason> close_reason_;  // the server is closing the session
  std::uint64_t events_ = 0;
  Clock::time_point started_;
  std::optional<Clock::time_point> first_audio_;
  double received_seconds_ = 0;
};

asio::awaitable<void> RealtimeConnection::run(const std::optional<RealtimeError>& notice) {
  send(json::object{{"type", "session.created"},
                    {"event_id", next_event_id()},
                    {"session", session_json(session_)}});
  if (notice) send_error(*notice, "");
  loops_ = 2;
  asio::co_spawn(ws_.get_executor(), write_loop(), asio::detached);
  asio::co_spawn(ws_.get_executor(), work_loop(), asio::detached);
  co_await read_loop();
  ended_ = true;
  // A write to a client that stopped reading would wait for ever: the connection is over.
  boost::system::error_code ignored;
  ws_.next_layer().socket().cancel(ignored);
  if (job_cancel_) job_cancel_->cancel("the realtime session ended");
  wake_writer_.cancel();
  wake_worker_.cancel();
  while (loops_ > 0) {
    all_done_.expires_at(Clock::time_point::max());
    co_await all_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> RealtimeConnection::read_loop() {
  beast::flat_buffer buffer;
  while (!ended_) {
    buffer.clear();
    auto [ec, n] = co_await ws_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec != websocket::error::closed) {
        spdlog::debug("realtime session {} read: {}", session_.id, ec.message());
      }
      co_return;
    }
    if (close_reason_) continue;  // closing: the rest is not looked at
    if (!ws_.got_text()) {
      send_error({.code = "invalid_event",
                  .message = "Binary messages are not accepted: send JSON events as text."},
                 "");
      continue;
    }
    handle(std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
  }
}

asio::awaitable<void> RealtimeConnection::write_loop() {
  while (!ended_) {
    if (outbox_.empty()) {
      if (close_reason_) break;
      wake_writer_.expires_at(Clock::time_point::max());
      co_await wake_writer_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    std::string message = std::move(outbox_.front());
    outbox_.pop_front();
    outbox_bytes_ -= message.size();
    ws_.text(true);
    auto [ec, n] =
        co_await ws_.async_write(asio::buffer(message), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
  if (close_reason_ && !ended_) {
    auto [ec] = co_await ws_.async_close(*close_reason_, asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }
  loop_ended();
}

asio::awaitable<void> RealtimeConnection::work_loop() {
  while (!ended_ && !close_reason_) {
    if (seconds_since(started_) > settings_.max_session_seconds) {
      close_with({.code = "session_expired",
                  .message = "The session reached REALTIME_MAX_SESSION_SECONDS (" +
                             std::to_string(static_cast<long long>(settings_.max_session_seconds)) +
                             " s); open a new one."},
                 websocket::close_code::normal);
      break;
    }
    std::optional<LiveWork> work = live_.next_work();
    if (!work) {
      wake_worker_.expires_after(std::chrono::seconds(1));
      co_await wake_worker_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    co_await run_work(*work);
  }
  loop_ended();
}

asio::awaitable<void> RealtimeConnection::run_work(const LiveWork& work) {
  const bool final = work.kind == LiveWork::Kind::final;
  std::vector<LiveEvent> events;
  // A place in the inference queue: a partial gives up (the next one comes soon), a turn's
  // final transcription waits for one.
  std::unique_ptr<InferencePool::Ticket> ticket;
  auto waiting_since = Clock::now();
  while (!(ticket = ctx_.inference.try_admit())) {
    if (!final || ended_ || Clock::now() - waiting_since > kFinalAdmissionWait) {
      live_.fail(work, "the inference queue stayed full; the turn was not transcribed", events);
      send_events(events);
      co_return;
    }
    asio::steady_timer pause(ws_.get_executor(), kAdmissionRetry);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  job_cancel_ = std::make_unique<CancelToken>();
  partial_item_ = final ? std::string() : work.item_id;
  job_.samples = &work.audio;
  job_.model = session_.model;
  job_.options = work.options;
  job_.cancel = job_cancel_.get();
  job_.request_id = request_id_;
  job_.client = final ? client_ : std::string();
  try {
    Transcription t = co_await run_on(ctx_.inference.executor(),
                                      [this] { return ctx_.service.transcribe(job_); });
    partial_item_.clear();
    live_.finish(work, t, events);
    metrics().realtime.with({final ? "turn" : "partial"}).add();
  } catch (const Error& e) {
    partial_item_.clear();
    if (ended_) co_return;
    if (!final && e.kind() == ErrorKind::cancelled) {
      live_.fail(work, e.what(), events);
      co_return;
    }
    spdlog::info("realtime session {}: a {} transcription failed: {}", session_.id,
                 final ? "turn's" : "partial", e.what());
    live_.fail(work, e.what(), events);
  } catch (const std::exception& e) {
    partial_item_.clear();
    if (ended_) co_return;
    spdlog::error("realtime session {}: internal error: {}", session_.id, e.what());
    live_.fail(work, "internal error", events);
  }
  send_events(events);
}

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

}  // namespace

std::optional<std::string> subprotocol_api_key(std::string_view protocols) {
  constexpr std::string_view kPrefix = "openai-insecure-api-key.";
  std::optional<std::string> key;
  for_each_subprotocol(protocols, [&](std::string_view p) {
    if (!key && p.starts_with(kPrefix)) key = std::string(p.substr(kPrefix.size()));
  });
  return key;
}

asio::awaitable<Response> realtime_route(ApiContext& ctx, const RequestParser::value_type& req,
                                         Exchange& ex) {
  if (!websocket::is_upgrade(req)) {
    Response res = openai_error_response(
        Error(ErrorKind::invalid_request,
              "/v1/realtime is a WebSocket endpoint: connect with a WebSocket client (OpenAI's "
              "realtime SDK, or `Upgrade: websocket`)"));
    res.result(beast::http::status::upgrade_required);
    res.set(beast::http::field::upgrade, "websocket");
    co_return res;
  }
  std::string client = admit_client(ctx, ex);
  auto slot = ctx.service.try_open_live_session();
  if (!slot) {
    metrics().refused.with({"realtime_sessions"}).add();
    throw unavailable("all " + std::to_string(ctx.service.limits().live.max_sessions) +
                      " realtime sessions are in use (MAX_REALTIME_SESSIONS); retry later");
  }
  // The query's model, when it is a served one (OpenAI's realtime model names are not).
  std::string model = query_parameter(req.target(), "model");
  const auto served = ctx.service.parts().served_model_names();
  if (std::find(served.begin(), served.end(), model) == served.end()) model.clear();

  // The VAD model may have to be read or pulled: not on the I/O thread.
  std::shared_ptr<const vad::SileroVad> vad;
  std::optional<RealtimeError> notice;
  try {
    vad = co_await run_on(ctx.blocking.get_executor(), [&ctx] { return ctx.service.vad_model(); });
  } catch (const std::exception& e) {
    notice = RealtimeError{.type = "server_error",
                           .code = "vad_unavailable",
                           .message = std::string("server_vad turn detection is off: ") + e.what(),
                           .param = "session.audio.input.turn_detection"};
  }

  // The handshake: a browser's subprotocols get "realtime" back, as OpenAI answers.
  std::string protocols(req[beast::http::field::sec_websocket_protocol]);
  const bool offers_realtime = offers_subprotocol(protocols, "realtime");
  ex.stream.expires_never();
  RealtimeConnection::Socket ws(ex.stream);
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.set_option(websocket::stream_base::decorator(
      [offers_realtime, id = ex.request_id](websocket::response_type& res) {
        res.set(beast::http::field::server, "speech-recognition-api");
        res.set("X-Request-Id", id);
        if (offers_realtime) res.set(beast::http::field::sec_websocket_protocol, "realtime");
      }));
  ws.read_message_max(kMaxMessageBytes);
  ws.auto_fragment(false);
  ex.responded = true;
  ex.keep_alive = false;
  auto [ec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    spdlog::info("realtime handshake failed: {}", ec.message());
    co_return Response{};
  }
  metrics().realtime.with({"session"}).add();
  spdlog::info("realtime session opened ({} open)", ctx.service.live_sessions());
  RealtimeConnection connection(ctx, ws, client, ex.request_id, vad);
  if (!model.empty()) connection.set_model(model);
  co_await connection.run(notice);
  spdlog::info("realtime session closed");
  co_return Response{};
}

}  // namespace sra::http
