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
constexpr std::size_t kMaxSmallMessage = 64 * 1024;       // parsed whole; larger: scanned
constexpr std::size_t kMaxOutboxBytes = 4 * 1024 * 1024;  // events the client has not read yet
constexpr int kMostBytesPerSecond = 2 * 48000;            // PCM16 at 48 kHz, the richest format
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

// The largest message a session takes: an append of REALTIME_MAX_AHEAD_SECONDS of the richest
// format, as base64 in JSON (a larger one would break the pace rule anyway), within OpenAI's
// 15 MiB of audio per append.
std::size_t max_message_bytes(const LiveSettings& settings) {
  const double audio =
      std::min(settings.max_ahead_seconds * kMostBytesPerSecond, double(kMaxAudioBytes));
  return static_cast<std::size_t>(audio) / 3 * 4 + 4 + kMaxSmallMessage;
}

// The pace rule: audio may run at most REALTIME_MAX_AHEAD_SECONDS ahead of the wall clock, as a
// token bucket of that many seconds refilled by the clock; idle time never banks more.
class PaceBucket {
 public:
  explicit PaceBucket(double capacity) : capacity_(capacity), seconds_(capacity) {}
  // Takes `seconds` of audio, or returns false (nothing taken) when it would run ahead.
  bool take(double seconds) {
    const Clock::time_point now = Clock::now();
    seconds_ = std::min(capacity_, seconds_ + std::chrono::duration<double>(now - at_).count());
    at_ = now;
    if (seconds > seconds_) return false;
    seconds_ -= seconds;
    return true;
  }

 private:
  double capacity_;
  double seconds_;
  Clock::time_point at_ = Clock::now();
};

// What handling a client message (or finishing a work) asks of the connection, made on the
// session's strand and carried out on the connection's.
struct Reply {
  std::vector<std::string> messages;         // events to send, in order
  std::optional<RealtimeError> close_error;  // told, then the session is closed
  websocket::close_code close_code = websocket::close_code::normal;
  std::vector<std::string> committed;  // turns that ended (a partial of theirs is moot)
  bool cleared = false;                // the open turn was dropped
  int client_errors = 0;               // error events for the client's mistakes
};

// One WebSocket session. Lives in realtime_route's frame; run() returns only once its reader,
// writer and worker coroutines have all ended. Network I/O and the transcription works run on the
// connection's strand; the session's state (LiveSession, the audio decoder, the settings) only on
// the session's own strand, on the blocking pool: decoding, resampling and the VAD never run on
// an I/O thread.
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
        strand_(asio::make_strand(ctx.blocking.get_executor())),
        live_(settings_, vad, [&ctx] { return ctx.service.turn_model(); }),
        served_(ctx.service.parts().served_model_names()),
        pace_(settings_.max_ahead_seconds),
        wake_writer_(ws.get_executor()),
        wake_worker_(ws.get_executor()),
        all_done_(ws.get_executor()),
        started_(Clock::now()),
        last_audio_(Clock::now().time_since_epoch().count()) {
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
  void send(std::string text) {
    if (ended_) return;
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

  // Tells the client why (an error event) and closes the session after the queued events.
  void close_with(const RealtimeError& error, websocket::close_code code) {
    if (close_reason_) return;
    metrics().realtime.with({"closed_by_server"}).add();
    send(json::serialize(error_event_json(error, next_event_id(), "")));
    close_reason_ = websocket::close_reason(code, error.message.substr(0, 120));
    if (job_) job_->cancel.cancel("the realtime session is closing");
    wake_writer_.cancel();
    wake_worker_.cancel();
  }

  // Carries out a reply on the connection's strand.
  void apply(Reply& reply) {
    for (auto& m : reply.messages) send(std::move(m));
    for (int i = 0; i < reply.client_errors; ++i) metrics().realtime.with({"client_error"}).add();
    // A partial of a turn that has just ended (or was dropped) is no use any more.
    if (job_ && !partial_item_.empty() &&
        (reply.cleared || std::find(reply.committed.begin(), reply.committed.end(),
                                    partial_item_) != reply.committed.end())) {
      job_->cancel.cancel("a newer state of the turn");
    }
    if (reply.close_error) close_with(*reply.close_error, reply.close_code);
    wake_worker_.cancel();
  }

  // --- On the session's strand ---

  void add_error(Reply& reply, const RealtimeError& error, const std::string& client_event_id) {
    ++reply.client_errors;
    reply.messages.push_back(
        json::serialize(error_event_json(error, next_event_id(), client_event_id)));
  }

  void add_events(Reply& reply, const std::vector<LiveEvent>& events) {
    for (const auto& e : events) {
      if (e.kind == LiveEvent::Kind::committed) reply.committed.push_back(e.item_id);
      reply.messages.push_back(json::serialize(live_event_json(e, next_event_id())));
    }
  }

  // One client message. Messages over kMaxSmallMessage are only ever appends and are scanned,
  // never parsed into a document; the others are parsed whole.
  Reply handle(std::string_view text) {
    Reply reply;
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
        append(std::move(scanned.audio), reply);
        return reply;
      }
      boost::system::error_code ec;
      json::value parsed = json::parse(text, ec);
      if (ec || !parsed.is_object()) {
        add_error(reply,
                  {.code = "invalid_json",
                   .message = "The event is not a JSON object" +
                              (ec ? ": " + ec.message() : std::string("."))},
                  "");
        return reply;
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
    } catch (const std::exception& e) {
      spdlog::error("realtime session {}: internal error: {}", session_.id, e.what());
      add_error(reply,
                {.type = "server_error", .code = "internal_error", .message = "internal error"},
                event_id);
    }
    return reply;
  }

  void dispatch_event(std::string_view type, const json::object& event, Reply& reply) {
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
          json::object{{"type", "input_audio_buffer.cleared"}, {"event_id", next_event_id()}}));
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

  void update_session(const json::object& event, bool beta, Reply& reply) {
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
      take_samples(rest, reply);
      pcm_ = std::make_unique<audio::PcmStream>(next.format);
    }
    session_ = std::move(next);
    reply.messages.push_back(json::serialize(
        json::object{{"type", beta ? "transcription_session.updated" : "session.updated"},
                     {"event_id", next_event_id()},
                     {"session", beta ? beta_session_json(session_) : session_json(session_)}}));
  }

  // Decoded samples into the session, within its limits.
  void take_samples(const std::vector<float>& samples, Reply& reply) {
    std::vector<LiveEvent> events;
    try {
      live_.append(samples.data(), samples.size(), events);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::unavailable) {
        throw RealtimeProtocolError({.code = "input_audio_buffer_full", .message = e.what()});
      }
      reply.close_error = RealtimeError{.code = "transcription_backlog", .message = e.what()};
      reply.close_code = websocket::close_code::try_again_later;
      return;
    }
    add_events(reply, events);
    check_backlog(reply);
  }

  // More turns waiting than REALTIME_MAX_PENDING_TURNS: the server cannot keep up.
  void check_backlog(Reply& reply) {
    if (live_.pending_turns() <= static_cast<std::size_t>(settings_.max_pending_turns)) return;
    reply.close_error = RealtimeError{
        .code = "transcription_backlog",
        .message = "More than REALTIME_MAX_PENDING_TURNS (" +
                   std::to_string(settings_.max_pending_turns) +
                   ") turns wait for their transcription: the server cannot keep up."};
    reply.close_code = websocket::close_code::try_again_later;
  }

  void append(std::string bytes, Reply& reply) {
    last_audio_.store(Clock::now().time_since_epoch().count());
    const double seconds = static_cast<double>(bytes.size()) / session_.format.bytes_per_second();
    if (!pace_.take(seconds)) {
      reply.close_error =
          RealtimeError{.code = "input_audio_rate_exceeded",
                        .message =
                            "Audio is arriving faster than real time (more than "
                            "REALTIME_MAX_AHEAD_SECONDS = " +
                            std::to_string(static_cast<long long>(settings_.max_ahead_seconds)) +
                            " s ahead); send it at the pace it is spoken."};
      reply.close_code = websocket::close_code::policy_error;
      return;
    }
    samples_.clear();
    pcm_->push(bytes, samples_);
    bytes = {};
    take_samples(samples_, reply);
    if (samples_.capacity() > 4 * 1024 * 1024) samples_ = {};  // a large append's room goes back
  }

  // --- On the connection's strand ---

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  asio::awaitable<void> work_loop();
  asio::awaitable<void> run_work(LiveWork work);
  // The reason to end the session now (its age, its silence), if any.
  std::optional<RealtimeError> expired() const;

  ApiContext& ctx_;
  Socket& ws_;
  std::string client_;
  std::string request_id_;
  LiveSettings settings_;
  asio::strand<asio::thread_pool::executor_type> strand_;  // the session's state lives here

  // The session's state: touched only on strand_ (and before run()).
  LiveSession live_;
  RealtimeSession session_;
  std::vector<std::string> served_;
  std::unique_ptr<audio::PcmStream> pcm_;
  std::vector<float> samples_;
  PaceBucket pace_;

  // The connection's state: touched only on its strand.
  std::shared_ptr<JobRun> job_;  // the running transcription, if any
  std::string partial_item_;     // the turn of the running partial, if one runs
  std::deque<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  asio::steady_timer wake_writer_;
  asio::steady_timer wake_worker_;
  asio::steady_timer all_done_;
  int loops_ = 0;
  bool ended_ = false;                                   // the connection is gone (or being cut)
  std::optional<websocket::close_reason> close_reason_;  // the server is closing the session

  std::atomic<std::uint64_t> events_{0};  // event ids, from both strands
  Clock::time_point started_;
  std::atomic<Clock::rep> last_audio_;  // when audio last came (steady clock ticks)
};

asio::awaitable<void> RealtimeConnection::run(const std::optional<RealtimeError>& notice) {
  send(json::serialize(json::object{{"type", "session.created"},
                                    {"event_id", next_event_id()},
                                    {"session", session_json(session_)}}));
  if (notice) {
    metrics().realtime.with({"client_error"}).add();
    send(json::serialize(error_event_json(*notice, next_event_id(), "")));
  }
  loops_ = 2;
  asio::co_spawn(ws_.get_executor(), write_loop(), asio::detached);
  asio::co_spawn(ws_.get_executor(), work_loop(), asio::detached);
  co_await read_loop();
  ended_ = true;
  // A write to a client that stopped reading would wait for ever: the connection is over.
  boost::system::error_code ignored;
  ws_.next_layer().socket().cancel(ignored);
  if (job_) job_->cancel.cancel("the realtime session ended");
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
    if (buffer.capacity() > 2 * kMaxSmallMessage) buffer.shrink_to_fit();
    auto [ec, n] = co_await ws_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec != websocket::error::closed) {
        spdlog::debug("realtime session {} read: {}", session_.id, ec.message());
      }
      co_return;
    }
    if (close_reason_) continue;  // closing: the rest is not looked at
    if (!ws_.got_text()) {
      metrics().realtime.with({"client_error"}).add();
      send(json::serialize(error_event_json(
          {.code = "invalid_event",
           .message = "Binary messages are not accepted: send JSON events as text."},
          next_event_id(), "")));
      continue;
    }
    std::string_view text(static_cast<const char*>(buffer.data().data()), buffer.size());
    // The buffer is not touched until handle() is done with it.
    Reply reply = co_await run_on(strand_, [this, text] { return handle(text); });
    apply(reply);
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

std::optional<RealtimeError> RealtimeConnection::expired() const {
  if (seconds_since(started_) > settings_.max_session_seconds) {
    return RealtimeError{
        .code = "session_expired",
        .message = "The session reached REALTIME_MAX_SESSION_SECONDS (" +
                   std::to_string(static_cast<long long>(settings_.max_session_seconds)) +
                   " s); open a new one."};
  }
  const Clock::time_point last_audio{Clock::duration(last_audio_.load())};
  if (settings_.idle_seconds > 0 && seconds_since(last_audio) > settings_.idle_seconds) {
    return RealtimeError{.code = "session_idle",
                         .message = "No audio came for REALTIME_IDLE_SECONDS (" +
                                    std::to_string(static_cast<long long>(settings_.idle_seconds)) +
                                    " s); the session is closed."};
  }
  return std::nullopt;
}

asio::awaitable<void> RealtimeConnection::work_loop() {
  while (!ended_ && !close_reason_) {
    if (auto reason = expired()) {
      close_with(*reason, websocket::close_code::normal);
      break;
    }
    std::optional<LiveWork> work = co_await run_on(strand_, [this] { return live_.next_work(); });
    if (!work) {
      wake_worker_.expires_after(std::chrono::seconds(1));
      co_await wake_worker_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    co_await run_work(std::move(*work));
  }
  loop_ended();
}

asio::awaitable<void> RealtimeConnection::run_work(LiveWork work) {
  const bool final = work.kind == LiveWork::Kind::final;
  // A place in the inference queue, through the same admission as every request. A partial
  // runs only on a thread that is free now (it is redone a second later anyway, and queued
  // behind other work it would only add load when the server is busiest); a turn's final
  // transcription waits for a place.
  std::unique_ptr<InferencePool::Ticket> ticket;
  auto waiting_since = Clock::now();
  auto take = [&] { return final ? ctx_.inference.try_admit() : ctx_.inference.try_admit_idle(); };
  while (!(ticket = take())) {
    if (!final || ended_ || close_reason_ || Clock::now() - waiting_since > kFinalAdmissionWait) {
      if (final) metrics().refused.with({"inference_queue"}).add();
      std::string why = inference_queue_full(ctx_).what();
      Reply reply = co_await run_on(strand_, [this, &work, &why] {
        Reply r;
        std::vector<LiveEvent> events;
        live_.fail(work, why + "; the turn was not transcribed", events);
        add_events(r, events);
        return r;
      });
      apply(reply);
      co_return;
    }
    asio::steady_timer pause(ws_.get_executor(), kAdmissionRetry);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto run = std::make_shared<JobRun>(ws_.get_executor());
  run->samples = std::move(work.audio);
  run->ticket = std::move(ticket);
  run->job.model = work.model;
  run->job.options = work.options;
  run->job.request_id = request_id_;
  run->job.client = final ? client_ : std::string();  // a turn's audio is charged once
  job_ = run;
  partial_item_ = final ? std::string() : work.item_id;
  start(ctx_, run);
  std::optional<std::string> failure;
  try {
    co_await wait(run, nullptr);
    metrics().realtime.with({final ? "turn" : "partial"}).add();
  } catch (const Error& e) {
    if (final || e.kind() != ErrorKind::cancelled) {
      spdlog::info("realtime session {}: a {} transcription failed: {}", session_.id,
                   final ? "turn's" : "partial", e.what());
    }
    failure = e.what();
  } catch (const std::exception& e) {
    spdlog::error("realtime session {}: internal error: {}", session_.id, e.what());
    failure = "internal error";
  }
  job_.reset();
  partial_item_.clear();
  if (ended_) co_return;
  Reply reply = co_await run_on(strand_, [this, &work, &run, &failure] {
    Reply r;
    std::vector<LiveEvent> events;
    if (failure) {
      live_.fail(work, *failure, events);
    } else {
      live_.finish(work, run->transcription, events);
    }
    add_events(r, events);
    return r;
  });
  apply(reply);
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
  const LiveSettings& settings = ctx.service.limits().live;
  // A browser always names the page's origin: a page of another site may not open a session
  // with the user's network position or key (cross-site WebSocket hijacking).
  if (!origin_may_connect(req[beast::http::field::origin], req[beast::http::field::host],
                          ctx.access, settings.require_origin)) {
    throw forbidden(req[beast::http::field::origin].empty()
                        ? "a WebSocket upgrade must name its Origin (REALTIME_REQUIRE_ORIGIN)"
                        : "pages of this origin may not open live sessions (the server's own "
                          "origin and CORS_ALLOW_ORIGINS may)");
  }
  std::string client = admit_client(ctx, ex);
  auto slot = ctx.service.try_open_live_session(client);
  if (!slot) {
    metrics().refused.with({"realtime_sessions"}).add();
    if (ctx.service.live_sessions() < settings.max_sessions) {
      throw Error(ErrorKind::rate_limited,
                  "this client has " + std::to_string(settings.max_sessions_per_client) +
                      " realtime sessions open (REALTIME_MAX_SESSIONS_PER_CLIENT); close one "
                      "first")
          .set_retry_after(5);
    }
    throw unavailable("all " + std::to_string(settings.max_sessions) +
                      " realtime sessions are in use (MAX_REALTIME_SESSIONS); retry later");
  }
  // The query's model, when it is a served one (OpenAI's realtime model names are not).
  std::string model = query_parameter(req.target(), "model");
  const auto served = ctx.service.parts().served_model_names();
  if (std::find(served.begin(), served.end(), model) == served.end()) model.clear();

  // The VAD model is read from its file here, never pulled (a missing one is pulled in the
  // background): still, not on the I/O thread.
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
  // Beast's server timeouts, but a connection silent for REALTIME_PING_SECONDS is closed (pinged
  // half-way through: a client's pong keeps it open).
  websocket::stream_base::timeout timeouts =
      websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.idle_timeout =
      std::chrono::milliseconds(static_cast<long long>(settings.ping_seconds * 1000));
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator(
      [offers_realtime, id = ex.request_id](websocket::response_type& res) {
        res.set(beast::http::field::server, "speech-recognition-api");
        res.set("X-Request-Id", id);
        if (offers_realtime) res.set(beast::http::field::sec_websocket_protocol, "realtime");
      }));
  ws.read_message_max(max_message_bytes(settings));
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
