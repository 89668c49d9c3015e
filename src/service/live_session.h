// LiveSession: live transcription of one audio stream (a realtime WebSocket session), apart from
// any transport. Audio comes in as 16 kHz samples; turns are found by Silero VAD (server_vad:
// speech starts at the first window over `threshold`, with `prefix_padding_ms` of audio before it,
// and ends after `silence_duration_ms` below threshold - 0.15) or are committed by the client.
// While a turn is open its audio is transcribed again every `partial_seconds` of new audio and
// the words two successive hypotheses agree on are emitted as deltas (LocalAgreement-2, see
// local_agreement.h), the window trimmed at confirmed segment ends with the confirmed text as the
// prompt. A committed turn is transcribed once more as a whole, exactly as a one-shot request of
// its audio, for the `completed` event.
//
// The session never runs a model itself: next_work() says what to transcribe next (a committed
// turn first, else a partial of the open turn) and its owner runs it through the
// TranscriptionService (TranscriptionJob::samples) and hands the result to finish(). One work is
// out at a time. Not thread-safe: one thread (or strand) at a time.
//
// Memory: the audio a session holds (the open turn, the committed turns not transcribed yet and
// the padding kept before a turn) never passes max_buffered_seconds (4 bytes a sample, 64 KB a
// second): an append that would pass it is refused whole, however the audio is sliced. With
// semantic_vad, the stream's last 8 s (512 KB) are kept besides, for smart-turn. Audio is
// stored as the VAD sees it, 32 ms at a time, so a turn's end never leaves audio to move, and a
// committed turn's audio leaves the session with its final transcription work.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/audio_buffer.h"
#include "core/config.h"
#include "core/transcription.h"
#include "engine/vad/silero_vad.h"
#include "engine/vad/smart_turn.h"
#include "service/local_agreement.h"

namespace sra {

struct LiveSettings {
  int max_sessions = 8;          // MAX_REALTIME_SESSIONS: sessions open at once; more get 503
  double partial_seconds = 1.0;  // REALTIME_PARTIAL_SECONDS: new audio between partials (0: off)
  double trim_seconds = 15;      // REALTIME_TRIM_SECONDS: window cut at a confirmed segment past it
  double max_turn_seconds = 300;  // REALTIME_MAX_TURN_SECONDS: a longer turn is committed (VAD) or
                                  // refused (manual commits)
  double max_ahead_seconds = 30;  // REALTIME_MAX_AHEAD_SECONDS: audio ahead of the wall clock
  int max_pending_turns = 8;      // REALTIME_MAX_PENDING_TURNS: committed turns not transcribed yet
  double max_session_seconds = 3600;  // REALTIME_MAX_SESSION_SECONDS: a session's longest life
  double max_buffered_seconds = 360;  // REALTIME_MAX_BUFFERED_SECONDS: audio a session holds
  int max_sessions_per_client = 2;    // REALTIME_MAX_SESSIONS_PER_CLIENT: one client's sessions
  double idle_seconds = 300;          // REALTIME_IDLE_SECONDS: closed after so long without audio
                                      // or a client event (0: never)
  bool require_origin = false;        // REALTIME_REQUIRE_ORIGIN: refuse upgrades without Origin
  double ping_seconds = 300;  // REALTIME_PING_SECONDS: a connection silent this long is closed
                              // (pinged half-way through)
  std::string turn_model = "smart-turn-v3.2";  // TURN_MODEL: semantic_vad's catalog model
  std::filesystem::path turn_model_path;       // TURN_MODEL_PATH: a file of one's own instead
};

// Throws sra::Error(config) naming the variable for a value out of bounds.
LiveSettings live_settings_from(const Config& config);

// OpenAI's semantic_vad eagerness: how soon a pause may end the turn.
enum class Eagerness { low, medium, high, automatic };

// How semantic_vad ends turns at one eagerness (the values the docs state): once a pause has
// lasted `first_check_ms`, smart-turn judges the turn so far, again every `recheck_ms` while the
// pause goes on; a judgement of at least `threshold` ends the turn, and a pause of `max_wait_ms`
// ends it whatever the model says (OpenAI's maximum timeouts: 8, 4 and 2 s).
struct SemanticPolicy {
  float threshold = 0.5f;
  int first_check_ms = 200;
  int recheck_ms = 500;
  int max_wait_ms = 4000;
};
SemanticPolicy semantic_policy(Eagerness eagerness);

struct TurnDetection {
  bool server_vad = true;  // Silero finds speech and pauses (server_vad or semantic_vad);
                           // false: turns end only when the client commits
  bool semantic = false;   // semantic_vad: smart-turn decides whether a pause ends a turn
  Eagerness eagerness = Eagerness::automatic;  // semantic_vad's eagerness
  float threshold = 0.5f;                      // speech probability that starts speech, 0..1
  int prefix_padding_ms = 300;                 // audio kept before the detected start
  int silence_duration_ms = 500;               // server_vad: silence that ends a turn
};

struct LiveConfig {
  std::string model;                                 // a served model; empty: the default model
  std::string language;                              // ISO 639-1 code; empty: detected per turn
  std::string prompt;                                // the client's prompt, given with every turn
  TurnDetection turn;                                // how turns end
  std::map<std::string, std::string> options;        // more request options of every work
  std::map<std::string, std::string> final_options;  // and of each turn's final work only
};

struct LiveEvent {
  enum class Kind { speech_started, speech_stopped, committed, delta, completed, failed };
  Kind kind = Kind::delta;
  std::string item_id;           // the turn's item
  std::string previous_item_id;  // committed: the turn before it (empty for the first)
  std::int64_t audio_ms = 0;     // speech_started/stopped: ms since the session's first sample
  std::string text;              // delta: new text; completed: the transcript; failed: message
  double seconds = 0;            // completed: the turn's audio, in seconds
  double start = 0;              // completed: where the turn starts, s since the first sample
  std::vector<Word> words;       // completed: its words in session time, if the model timed them
};

// One transcription the session asks its owner to run.
struct LiveWork {
  enum class Kind { partial, final };
  Kind kind = Kind::partial;
  std::string item_id;                         // the turn
  AudioBuffer audio;                           // partial: the window; final: the whole turn
  std::size_t samples = 0;                     // the audio's length (the owner may take it)
  std::string model;                           // the served model to run (empty: the default)
  std::map<std::string, std::string> options;  // the request options (language, prompt, ...)
};

class LiveSession {
 public:
  // The smart-turn model, asked for when a configuration first turns semantic_vad on (it may
  // throw: sra::Error(unavailable) while it is pulled, sra::Error(config) if it cannot be had).
  using TurnModelSource = std::function<std::shared_ptr<const vad::SmartTurn>()>;

  // `vad` may be null when no VAD model can be loaded; server_vad is then refused. Without
  // `turn_model`, semantic_vad is refused.
  LiveSession(LiveSettings settings, std::shared_ptr<const vad::SileroVad> vad,
              TurnModelSource turn_model = {});

  // Applies a configuration. Throws sra::Error(invalid_request) for server_vad or semantic_vad
  // without their model, and what the turn model's source throws.
  void configure(const LiveConfig& config);
  // semantic_vad's judgements so far (for metrics and tests).
  int turn_checks() const { return turn_checks_; }
  const LiveConfig& config() const { return config_; }

  // Takes 16 kHz samples; turn events go to `events`. Nothing is taken when it throws:
  // sra::Error(too_large) when a turn the client commits would pass max_turn_seconds,
  // sra::Error(unavailable) when the session would hold more than max_buffered_seconds (its turns
  // wait for transcription faster than they are done).
  void append(const float* samples, std::size_t count, std::vector<LiveEvent>& events);
  // Ends the open turn. Throws sra::Error(invalid_request) when it holds under 100 ms of audio.
  void commit(std::vector<LiveEvent>& events);
  // Drops the open turn's audio (committed turns are still transcribed).
  void clear();

  // What to transcribe next, if anything; nothing while a work is out.
  std::optional<LiveWork> next_work();
  // The result of the work last given out.
  void finish(const LiveWork& work, const Transcription& result, std::vector<LiveEvent>& events);
  void fail(const LiveWork& work, const std::string& message, std::vector<LiveEvent>& events);

  std::size_t pending_turns() const { return committed_.size(); }
  bool busy() const { return in_flight_; }
  // Samples received since the session started.
  std::int64_t samples_received() const { return received_; }
  // Samples the session holds now (what max_buffered_seconds bounds).
  std::size_t buffered_samples() const;

 private:
  struct Turn {
    std::string item_id;
    std::int64_t start = 0;         // session sample of audio[0]
    std::vector<float> audio;       // the whole turn (moved out to its final work)
    double seconds = 0;             // the committed turn's length
    std::size_t window_start = 0;   // where the partials' window starts in `audio`
    std::size_t decoded_until = 0;  // audio.size() when the last partial was taken
    LocalAgreement agreement;
    std::vector<std::string> emitted;  // words sent as deltas
    std::string context;               // confirmed words that left the window
  };

  void open_turn(std::int64_t start, std::vector<LiveEvent>& events, bool announce);
  void close_turn(std::vector<LiveEvent>& events, bool announce);
  // Stores samples where they belong (the open turn, else the padding before a turn).
  void store(const float* samples, std::size_t count);
  // One full VAD window (vad_window_): stored, then its speech probability decides the turns.
  void run_vad_window(std::vector<LiveEvent>& events);
  // Stores the samples waiting for a full VAD window without running the VAD on them.
  void flush_vad_window();
  Turn* find_turn(const std::string& item_id);
  void emit_words(Turn& turn, const std::vector<std::string>& words,
                  std::vector<LiveEvent>& events);
  void apply_partial(Turn& turn, std::size_t window_samples, const Transcription& result,
                     std::vector<LiveEvent>& events);
  std::map<std::string, std::string> base_options() const;

  // semantic_vad: whether the open turn's pause ends it now.
  bool semantic_turn_end();

  LiveSettings settings_;
  std::shared_ptr<const vad::SileroVad> vad_;
  TurnModelSource turn_source_;
  std::shared_ptr<const vad::SmartTurn> turn_model_;  // loaded when semantic_vad is first asked
  LiveConfig config_;

  std::int64_t received_ = 0;          // samples so far (stored or waiting in vad_window_)
  std::int64_t stored_ = 0;            // samples stored (in a turn or between_, or dropped)
  std::optional<Turn> open_;           // the turn audio goes to
  std::deque<Turn> committed_;         // ended turns waiting for their final transcription
  std::size_t committed_samples_ = 0;  // the audio those hold
  std::vector<float> between_;         // audio since the last turn ended, at most the padding
  std::int64_t between_start_ = 0;     // session sample of between_[0]
  std::int64_t last_turn_end_ = 0;     // a new turn never starts before this
  std::string last_item_id_;           // the last committed turn

  vad::SileroStream vad_stream_;
  std::vector<float> vad_window_;  // samples waiting for a full VAD window
  bool in_speech_ = false;
  std::int64_t silence_start_ = -1;   // where the current run of silence started, if any
  std::int64_t next_turn_check_ = 0;  // semantic_vad: the pause length of the next judgement
  std::deque<float> recent_;          // semantic_vad: the stream's last 8 s (512 KB at most)
  int turn_checks_ = 0;

  bool in_flight_ = false;
};

}  // namespace sra
