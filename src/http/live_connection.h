// LiveConnection: one live transcription session over WebSocket, whatever protocol it speaks
// (OpenAI's Realtime API on /v1/realtime, Deepgram's live listen API on GET /v1/listen): the
// machinery both share, so that every live route has the same limits.
//
// It owns the session's LiveSession (turns, VAD, partials), the PCM decoder of its audio, the pace
// rule (audio at most REALTIME_MAX_AHEAD_SECONDS ahead of the wall clock), the bounds on pending
// turns and buffered audio, the session's age and idle limits, an outbox bounded at 4 MiB (a
// client that stops reading is cut off), and the transcriptions, run on the inference pool
// through dispatch() with the routes' admission (a partial only on an idle thread, a turn's final
// text waiting for a place). A protocol (a subclass) turns client messages into calls on the
// session and the session's LiveEvents into its own messages.
//
// Threads: network I/O and the transcriptions' bookkeeping run on the connection's strand; the
// session's state and every protocol hook on a strand of its own on the blocking pool, so that
// decoding, resampling and the VAD never run on an I/O thread. run() returns once the reader,
// writer and worker coroutines have all ended. The route owns the WebSocket and the connection.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audio/pcm_stream.h"
#include "http/api.h"
#include "http/dispatch.h"
#include "http/realtime_protocol.h"
#include "service/client_slots.h"
#include "service/live_session.h"

namespace sra::http {

// What handling a client message (or finishing a work) asks of the connection, made on the
// session's strand and carried out on the connection's.
struct LiveReply {
  std::vector<std::string> messages;         // to send, in order
  std::optional<RealtimeError> close_error;  // told, then the session is closed
  boost::beast::websocket::close_code close_code = boost::beast::websocket::close_code::normal;
  std::vector<std::string> committed;  // turns that ended (a partial of theirs is moot)
  bool cleared = false;                // the open turn was dropped
  bool close_when_done = false;        // close normally once every turn is transcribed
  int client_errors = 0;               // error messages for the client's mistakes
};

class LiveConnection {
 public:
  using Socket = boost::beast::websocket::stream<boost::beast::tcp_stream&>;
  using Clock = std::chrono::steady_clock;

  // `metrics_kind` labels the session's counters (sra_realtime_total's kinds are counted for
  // every live protocol). `format` is the audio's until a protocol changes it.
  LiveConnection(ApiContext& ctx, Socket& ws, std::string client, std::string request_id,
                 std::shared_ptr<const vad::SileroVad> vad, audio::PcmFormat format,
                 std::string name);
  virtual ~LiveConnection() = default;
  LiveConnection(const LiveConnection&) = delete;
  LiveConnection& operator=(const LiveConnection&) = delete;

  // Sends the protocol's opening messages, then serves the session until it ends.
  boost::asio::awaitable<void> run();

 protected:
  // --- The protocol: called on the session's strand ---

  // The first messages of the session (OpenAI's session.created).
  virtual void opening(LiveReply& reply) = 0;
  // One text message, and one binary message, of the client.
  virtual void on_text(std::string_view text, LiveReply& reply) = 0;
  virtual void on_binary(std::string_view bytes, LiveReply& reply) = 0;
  // The session's events as the protocol's messages.
  virtual void add_events(LiveReply& reply, const std::vector<LiveEvent>& events) = 0;
  // An error as the protocol's message; `client_event_id` names the client's message, if any.
  virtual std::string error_message(const RealtimeError& error,
                                    const std::string& client_event_id) = 0;
  // The last messages before a close the client asked for (close_when_done).
  virtual void closing(LiveReply& reply) { (void)reply; }

  // --- Helpers for the protocol, on the session's strand ---

  // Audio bytes in the session's format: paced, decoded and given to the session.
  void append(std::string_view bytes, LiveReply& reply);
  // Decoded samples given to the session, within its limits.
  void take_samples(const std::vector<float>& samples, LiveReply& reply);
  // More turns waiting than REALTIME_MAX_PENDING_TURNS: told, then closed.
  void check_backlog(LiveReply& reply);
  void add_error(LiveReply& reply, const RealtimeError& error, const std::string& client_event_id) {
    ++reply.client_errors;
    reply.messages.push_back(error_message(error, client_event_id));
  }
  // Changes the audio's format; what the old decoder held goes to the session first.
  void set_format(const audio::PcmFormat& format, LiveReply& reply);
  // Counts as audio for the idle limit (a keep-alive).
  void touch() { last_audio_.store(Clock::now().time_since_epoch().count()); }
  std::string next_event_id(std::string_view prefix) {
    return std::string(prefix) + std::to_string(++events_);
  }
  double session_seconds() const { return seconds_since(started_); }
  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  ApiContext& ctx_;
  const std::string client_;
  const std::string request_id_;
  const std::string name_;  // for log lines: the session's id
  LiveSettings settings_;
  LiveSession live_;  // touched only on strand_ (and before run())
  std::unique_ptr<audio::PcmStream> pcm_;

 private:
  void loop_ended();
  // Queues a message for the writer. A client that lets its messages pile up is cut off.
  void send(std::string text);
  // Tells the client why and closes the session after the queued messages.
  void close_with(const RealtimeError& error, boost::beast::websocket::close_code code);
  // Carries out a reply on the connection's strand.
  void apply(LiveReply& reply);

  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> work_loop();
  boost::asio::awaitable<void> run_work(LiveWork work);
  // The reason to end the session now (its age, its silence), if any.
  std::optional<RealtimeError> expired() const;

  Socket& ws_;
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;  // the session's
  std::vector<float> samples_;  // a message's decoded samples (strand_)
  // The pace rule's token bucket (strand_).
  double pace_seconds_;
  Clock::time_point pace_at_ = Clock::now();

  // The connection's state: touched only on its strand.
  std::shared_ptr<JobRun> job_;  // the running transcription, if any
  std::string partial_item_;     // the turn of the running partial, if one runs
  std::deque<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  boost::asio::steady_timer wake_writer_;
  boost::asio::steady_timer wake_worker_;
  boost::asio::steady_timer all_done_;
  int loops_ = 0;
  bool ended_ = false;  // the connection is gone (or being cut)
  bool close_when_done_ = false;
  std::optional<boost::beast::websocket::close_reason> close_reason_;  // the server closes

  std::atomic<std::uint64_t> events_{0};  // message ids, from both strands
  Clock::time_point started_;
  std::atomic<Clock::rep> last_audio_;  // when audio last came (steady clock ticks)
};

// What a live route does before its protocol speaks: the origin check (a page of another site
// may not open a session: 403), the client's rate limit, a session place (503 when
// MAX_REALTIME_SESSIONS are open, 429 past REALTIME_MAX_SESSIONS_PER_CLIENT), and the VAD model
// (read on the blocking pool; when it cannot be had, `vad_error` says why and server VAD is off).
struct LiveAdmission {
  std::string client;
  std::unique_ptr<ClientSlots::Slot> slot;  // held for the session's life
  std::shared_ptr<const vad::SileroVad> vad;
  std::optional<std::string> vad_error;
};
boost::asio::awaitable<LiveAdmission> admit_live(ApiContext& ctx,
                                                 const RequestParser::value_type& req,
                                                 Exchange& ex);

// The WebSocket handshake of a live route with the live sessions' timeouts (a connection silent
// for REALTIME_PING_SECONDS is closed, pinged half-way through), at most `max_message` bytes per
// message, answering `subprotocol` when not empty. Takes the connection over (ex.responded) and
// counts the session (sra_realtime_total{kind="session"}); false when the handshake failed.
boost::asio::awaitable<bool> accept_live(LiveConnection::Socket& ws,
                                         const RequestParser::value_type& req, Exchange& ex,
                                         const LiveSettings& settings, std::size_t max_message,
                                         std::string subprotocol);

}  // namespace sra::http
