#include "http/live_connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include "core/errors.h"
#include "http/form.h"
#include "http/realtime.h"
#include "http/upload.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

constexpr std::size_t kMaxOutboxBytes = 4 * 1024 * 1024;  // messages the client has not read
constexpr auto kAdmissionRetry = std::chrono::milliseconds(200);
constexpr auto kFinalAdmissionWait = std::chrono::seconds(120);

}  // namespace

LiveConnection::LiveConnection(ApiContext& ctx, Socket& ws, std::string client,
                               std::string request_id, std::shared_ptr<const vad::SileroVad> vad,
                               audio::PcmFormat format, std::string name)
    : ctx_(ctx),
      client_(std::move(client)),
      request_id_(std::move(request_id)),
      name_(std::move(name)),
      settings_(ctx.service.limits().live),
      live_(settings_, std::move(vad), [&ctx] { return ctx.service.turn_model(); }),
      pcm_(std::make_unique<audio::PcmStream>(format)),
      ws_(ws),
      strand_(asio::make_strand(ctx.blocking.get_executor())),
      pace_seconds_(settings_.max_ahead_seconds),
      wake_writer_(ws.get_executor()),
      wake_worker_(ws.get_executor()),
      all_done_(ws.get_executor()),
      started_(Clock::now()),
      last_audio_(Clock::now().time_since_epoch().count()) {}

// --- On the session's strand ---

void LiveConnection::take_samples(const std::vector<float>& samples, LiveReply& reply) {
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

void LiveConnection::check_backlog(LiveReply& reply) {
  if (live_.pending_turns() <= static_cast<std::size_t>(settings_.max_pending_turns)) return;
  reply.close_error =
      RealtimeError{.code = "transcription_backlog",
                    .message = "More than REALTIME_MAX_PENDING_TURNS (" +
                               std::to_string(settings_.max_pending_turns) +
                               ") turns wait for their transcription: the server cannot keep up."};
  reply.close_code = websocket::close_code::try_again_later;
}

void LiveConnection::append(std::string_view bytes, LiveReply& reply) {
  touch();
  const double seconds = static_cast<double>(bytes.size()) / pcm_->format().bytes_per_second();
  // The pace rule: a token bucket of REALTIME_MAX_AHEAD_SECONDS refilled by the clock; idle time
  // never banks more.
  const Clock::time_point now = Clock::now();
  pace_seconds_ = std::min(settings_.max_ahead_seconds,
                           pace_seconds_ + std::chrono::duration<double>(now - pace_at_).count());
  pace_at_ = now;
  if (seconds > pace_seconds_) {
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
  pace_seconds_ -= seconds;
  samples_.clear();
  pcm_->push(bytes, samples_);
  take_samples(samples_, reply);
  if (samples_.capacity() > 4 * 1024 * 1024) samples_ = {};  // a large append's room goes back
}

void LiveConnection::set_format(const audio::PcmFormat& format, LiveReply& reply) {
  if (format == pcm_->format()) return;
  std::vector<float> rest;
  pcm_->flush(rest);
  take_samples(rest, reply);
  pcm_ = std::make_unique<audio::PcmStream>(format);
}

// --- On the connection's strand ---

void LiveConnection::loop_ended() {
  --loops_;
  all_done_.cancel();
}

void LiveConnection::send(std::string text) {
  if (ended_) return;
  outbox_bytes_ += text.size();
  outbox_.push_back(std::move(text));
  if (outbox_bytes_ > kMaxOutboxBytes) {
    spdlog::warn("live session {}: the client does not read its events; closing", name_);
    ended_ = true;
    boost::system::error_code ignored;
    ws_.next_layer().socket().close(ignored);
  }
  wake_writer_.cancel();
}

void LiveConnection::close_with(const RealtimeError& error, websocket::close_code code) {
  if (close_reason_) return;
  metrics().realtime.with({"closed_by_server"}).add();
  send(error_message(error, ""));
  close_reason_ = websocket::close_reason(code, error.message.substr(0, 120));
  if (job_) job_->cancel.cancel("the live session is closing");
  wake_writer_.cancel();
  wake_worker_.cancel();
}

void LiveConnection::apply(LiveReply& reply) {
  for (auto& m : reply.messages) send(std::move(m));
  for (int i = 0; i < reply.client_errors; ++i) metrics().realtime.with({"client_error"}).add();
  // A partial of a turn that has just ended (or was dropped) is no use any more.
  if (job_ && !partial_item_.empty() &&
      (reply.cleared || std::find(reply.committed.begin(), reply.committed.end(), partial_item_) !=
                            reply.committed.end())) {
    job_->cancel.cancel("a newer state of the turn");
  }
  if (reply.close_when_done) close_when_done_ = true;
  if (reply.close_error) close_with(*reply.close_error, reply.close_code);
  wake_worker_.cancel();
}

asio::awaitable<void> LiveConnection::run() {
  LiveReply first = co_await run_on(strand_, [this] {
    LiveReply r;
    opening(r);
    return r;
  });
  apply(first);
  loops_ = 2;
  asio::co_spawn(ws_.get_executor(), write_loop(), asio::detached);
  asio::co_spawn(ws_.get_executor(), work_loop(), asio::detached);
  co_await read_loop();
  ended_ = true;
  // A write to a client that stopped reading would wait for ever: the connection is over.
  boost::system::error_code ignored;
  ws_.next_layer().socket().cancel(ignored);
  if (job_) job_->cancel.cancel("the live session ended");
  wake_writer_.cancel();
  wake_worker_.cancel();
  while (loops_ > 0) {
    all_done_.expires_at(Clock::time_point::max());
    co_await all_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> LiveConnection::read_loop() {
  beast::flat_buffer buffer;
  while (!ended_) {
    buffer.clear();
    if (buffer.capacity() > 128 * 1024) buffer.shrink_to_fit();
    auto [ec, n] = co_await ws_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec != websocket::error::closed) {
        spdlog::debug("live session {} read: {}", name_, ec.message());
      }
      co_return;
    }
    if (close_reason_) continue;  // closing: the rest is not looked at
    const bool text = ws_.got_text();
    std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    // The buffer is not touched until the protocol is done with it.
    LiveReply reply = co_await run_on(strand_, [this, data, text] {
      LiveReply r;
      try {
        if (text) {
          on_text(data, r);
        } else {
          on_binary(data, r);
        }
      } catch (const RealtimeProtocolError& e) {
        add_error(r, e.error(), "");
      } catch (const Error& e) {
        add_error(
            r, {.code = "invalid_value", .message = e.what(), .param = e.field().value_or("")}, "");
      } catch (const std::exception& e) {
        spdlog::error("live session {}: internal error: {}", name_, e.what());
        add_error(
            r, {.type = "server_error", .code = "internal_error", .message = "internal error"}, "");
      }
      return r;
    });
    apply(reply);
  }
}

asio::awaitable<void> LiveConnection::write_loop() {
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

std::optional<RealtimeError> LiveConnection::expired() const {
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

asio::awaitable<void> LiveConnection::work_loop() {
  while (!ended_ && !close_reason_) {
    if (auto reason = expired()) {
      close_with(*reason, websocket::close_code::normal);
      break;
    }
    std::optional<LiveWork> work = co_await run_on(strand_, [this] { return live_.next_work(); });
    if (!work) {
      if (close_when_done_ &&
          co_await run_on(strand_, [this] { return live_.pending_turns(); }) == 0) {
        // Every turn is transcribed: the protocol's last words, then a normal close.
        LiveReply last = co_await run_on(strand_, [this] {
          LiveReply r;
          closing(r);
          return r;
        });
        for (auto& m : last.messages) send(std::move(m));
        close_reason_ = websocket::close_reason(websocket::close_code::normal);
        wake_writer_.cancel();
        break;
      }
      wake_worker_.expires_after(std::chrono::seconds(1));
      co_await wake_worker_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    co_await run_work(std::move(*work));
  }
  loop_ended();
}

asio::awaitable<void> LiveConnection::run_work(LiveWork work) {
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
      LiveReply reply = co_await run_on(strand_, [this, &work, &why] {
        LiveReply r;
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
      spdlog::info("live session {}: a {} transcription failed: {}", name_,
                   final ? "turn's" : "partial", e.what());
    }
    failure = e.what();
  } catch (const std::exception& e) {
    spdlog::error("live session {}: internal error: {}", name_, e.what());
    failure = "internal error";
  }
  job_.reset();
  partial_item_.clear();
  if (ended_) co_return;
  LiveReply reply = co_await run_on(strand_, [this, &work, &run, &failure] {
    LiveReply r;
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

asio::awaitable<LiveAdmission> admit_live(ApiContext& ctx, const RequestParser::value_type& req,
                                          Exchange& ex) {
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
  LiveAdmission admission;
  admission.client = admit_client(ctx, ex);
  admission.slot = ctx.service.try_open_live_session(admission.client);
  if (!admission.slot) {
    metrics().refused.with({"realtime_sessions"}).add();
    if (ctx.service.live_sessions() < settings.max_sessions) {
      throw Error(ErrorKind::rate_limited,
                  "this client has " + std::to_string(settings.max_sessions_per_client) +
                      " live sessions open (REALTIME_MAX_SESSIONS_PER_CLIENT); close one first")
          .set_retry_after(5);
    }
    throw unavailable("all " + std::to_string(settings.max_sessions) +
                      " live sessions are in use (MAX_REALTIME_SESSIONS); retry later");
  }
  // The VAD model is read from its file here, never pulled (a missing one is pulled in the
  // background): still, not on the I/O thread.
  try {
    admission.vad =
        co_await run_on(ctx.blocking.get_executor(), [&ctx] { return ctx.service.vad_model(); });
  } catch (const std::exception& e) {
    admission.vad_error = e.what();
  }
  co_return admission;
}

asio::awaitable<bool> accept_live(LiveConnection::Socket& ws, const RequestParser::value_type& req,
                                  Exchange& ex, const LiveSettings& settings,
                                  std::size_t max_message, std::string subprotocol) {
  ex.stream.expires_never();
  // Beast's server timeouts, but a connection silent for REALTIME_PING_SECONDS is closed (pinged
  // half-way through: a client's pong keeps it open).
  websocket::stream_base::timeout timeouts =
      websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.idle_timeout =
      std::chrono::milliseconds(static_cast<long long>(settings.ping_seconds * 1000));
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator(
      [subprotocol, id = ex.request_id](websocket::response_type& res) {
        res.set(beast::http::field::server, "speech-recognition-api");
        res.set("X-Request-Id", id);
        if (!subprotocol.empty()) res.set(beast::http::field::sec_websocket_protocol, subprotocol);
      }));
  ws.read_message_max(max_message);
  ws.auto_fragment(false);
  ex.responded = true;
  ex.keep_alive = false;
  auto [ec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    spdlog::info("live session handshake failed: {}", ec.message());
    co_return false;
  }
  metrics().realtime.with({"session"}).add();
  co_return true;
}

}  // namespace sra::http
