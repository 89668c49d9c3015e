// TranscriptionService: the one path from audio bytes to a transcription, for every route and
// every worker.
//
// transcribe() decodes the bytes (limits on size and duration), picks the served model, applies
// the request's options (checked against the model's option table), gives the job its deadline
// (MAX_JOB_SECONDS, or by default 10x the audio's duration + 60 s) and runs the model with the
// caller's cancel token, so that a client that goes away or a job that runs too long stops within
// one window of work. Cross-cutting features (limits, deadlines, metrics, VAD, word times) belong
// here, once, not in the routes. run_task() is the worker's handler: the task's audio from
// storage through the same path.
//
// Safe for concurrent use from any thread; transcribe() blocks the calling thread (an inference
// thread) for the length of the job. It owns nothing but references the Parts it is given, which
// must outlive it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "audio/decoder.h"
#include "core/cancel.h"
#include "core/message_bus.h"
#include "core/parts.h"
#include "engine/vad/smart_turn.h"
#include "service/backlog_gate.h"
#include "service/catalog_model_loader.h"
#include "service/chunking.h"
#include "service/client_slots.h"
#include "service/live_session.h"
#include "service/memory_budget.h"
#include "service/rate_limiter.h"
#include "service/speaker_labels.h"
#include "service/voice_activity.h"
#include "service/webhooks.h"

namespace sra {

struct ServiceLimits {
  std::size_t max_upload_bytes = 25 * 1024 * 1024;  // largest accepted upload, in bytes
  // Bytes of uploads held in memory at once (sync and OpenAI routes, from the first byte to the
  // job's end); more get 503. Default: 512 MiB or 4 uploads of MAX_UPLOAD_BYTES, the larger.
  std::size_t max_buffered_upload_bytes = 512 * 1024 * 1024;
  double max_audio_seconds = 2 * 3600.0;  // longest accepted audio, in seconds
  double max_job_seconds = 0;             // a job's deadline; 0: 10x the audio's duration + 60 s
  bool delete_audio_after_task = false;   // remove the stored file once its task ends
  BacklogLimits backlog;                  // bounds on unfinished async work
  RateLimits rate;                        // per-client limits on requests and audio
  VadSettings vad;                        // voice activity detection: model and defaults
  ChunkingChoice chunking;                // requests that do not say (WHISPER_CHUNKING)
  LiveSettings live;                      // realtime sessions (see live_session.h)
  WebhookSettings webhooks;               // callbacks of async tasks (see webhooks.h)
  DiarizationSettings diarization;        // speaker labels (see speaker_labels.h)
};

ServiceLimits service_limits_from(const Config& config);

// One transcription to run.
struct TranscriptionJob {
  std::string model;       // a served model name; empty: the default model
  std::string_view audio;  // the uploaded bytes, any format decode() reads
  const AudioBuffer* samples =
      nullptr;  // or audio already decoded (live sessions); owned by caller
  std::map<std::string, std::string> options;  // the request's model options by field name
  std::vector<KnownSpeaker> known_speakers;    // with diarization: speakers to name by their clips
  std::function<void(const Segment&)> on_segment;  // each segment once final (may be empty)
  std::function<void(double)> on_decoded;  // the audio's duration once decoded (may be empty)
  CancelToken* cancel = nullptr;  // the caller's token (may be null); the service sets its deadline
  std::string client;             // who asked, for the per-client audio limit; empty: not limited
  std::string request_id;         // the request (or task's request) it serves, for its log lines
};

class TranscriptionService {
 public:
  TranscriptionService(Parts& parts, ServiceLimits limits)
      : parts_(parts),
        limits_(limits),
        backlog_(parts, limits.backlog),
        clients_(limits.rate),
        vad_(limits.vad),
        turn_(CatalogModelSource{.what = "turn model",
                                 .catalog_name = limits.live.turn_model,
                                 .path = limits.live.turn_model_path,
                                 .models_dir = limits.vad.models_dir,
                                 .sources = limits.vad.sources,
                                 .download = limits.vad.download}),
        upload_memory_(limits.max_buffered_upload_bytes),
        webhooks_(limits.webhooks),
        speakers_(limits.diarization) {}

  // Runs `job` on the calling thread. Throws sra::Error: unsupported_media, too_large,
  // invalid_request (with field()), not_found (model), cancelled, deadline_exceeded, ...
  Transcription transcribe(const TranscriptionJob& job);
  // The language of the first 30 s of the job's audio, every language with its probability, the
  // most likely first; through the same limits, deadline and metrics as transcribe() (the job's
  // on_segment is not used). Throws as transcribe(), and sra::Error(invalid_request) with field
  // "model" when the model cannot tell languages.
  LanguageScores detect_language(const TranscriptionJob& job);
  // The speaker turns of the job's audio alone (no transcription): a Transcription with only
  // `duration`, `diarized` and `speaker_turns`; through the same limits, deadline and metrics as
  // transcribe(). Throws as transcribe(); options out of bounds are sra::Error(invalid_request).
  Transcription diarize(const TranscriptionJob& job, const speakers::DiarizationOptions& options);
  // The worker's handler: the audio of `request` from storage, transcribed, reporting progress
  // to and stopping on the cancel token of `control`. The stored file is not removed here (see
  // after_task()).
  Transcription run_task(const TaskRequest& request, TaskControl& control);
  // Called by a bus once a task's outcome is stored for good: removes its audio when
  // DELETE_AUDIO_AFTER_TASK is set. Never throws (a failure is logged).
  void after_task(const TaskRequest& request) noexcept;
  // Called by a bus with a task's final outcome before it is stored: POSTs it to the task's
  // `callback_url`, if it has one, until delivered or WEBHOOK_MAX_SECONDS (see webhooks.h).
  // Blocks the worker's thread meanwhile. Never throws (a failure is logged).
  void before_final(const std::string& task_id, const TaskRequest& request,
                    const TaskResult& result) noexcept;
  // The webhook sender (off without WEBHOOK_SECRET).
  const WebhookSender& webhooks() const { return webhooks_; }
  // How a task stored with the option `callback_format` = `name` writes its webhook's body (a
  // route's own response shape, e.g. Deepgram's), given the task's id, outcome and stored
  // options; tasks without one get webhook_payload(). Set before workers run; not thread-safe.
  using WebhookFormat = std::function<std::string(const std::string& task_id, const TaskResult&,
                                                  const std::map<std::string, std::string>&)>;
  void set_webhook_format(const std::string& name, WebhookFormat format) {
    webhook_formats_[name] = std::move(format);
  }

  // The deadline of a job on `audio_seconds` of audio that starts now.
  CancelToken::Clock::time_point deadline_for(double audio_seconds) const;

  const ServiceLimits& limits() const { return limits_; }
  Parts& parts() { return parts_; }
  // Admission of async submissions (see backlog_gate.h).
  BacklogGate& backlog() { return backlog_; }
  // Per-client limits of every transcription route (see rate_limiter.h).
  RateLimiter& clients() { return clients_; }
  // What uploads held in memory may take together (MAX_BUFFERED_UPLOAD_BYTES).
  MemoryBudget& upload_memory() { return upload_memory_; }
  // The Silero model for live sessions' turn detection: loaded on first use, shared; a missing
  // one is pulled in the background (see VoiceActivityFilter::model()). Throws
  // sra::Error(unavailable) while it is pulled, sra::Error(config) if it cannot be had.
  std::shared_ptr<const vad::SileroVad> vad_model() { return vad_.model(); }
  // Starts pulling the VAD model if it is missing (serve, when live sessions are on).
  void prefetch_vad_model() { vad_.prefetch(); }
  // The smart-turn model of semantic_vad live sessions: loaded on first use, shared; pulled in
  // the background when missing, with vad_model()'s errors.
  std::shared_ptr<const vad::SmartTurn> turn_model() { return turn_.get(); }

  // A place for one live session of `client` while it is held; nullptr when
  // MAX_REALTIME_SESSIONS are open or the client holds REALTIME_MAX_SESSIONS_PER_CLIENT.
  std::unique_ptr<ClientSlots::Slot> try_open_live_session(const std::string& client) {
    return live_slots_.try_take(client);
  }
  int live_sessions() const { return live_slots_.held(); }

 private:
  // What every job does before its model runs: the audio decoded within the limits, the
  // client's audio allowance charged, the deadline set on `cancel`, the model picked.
  struct PreparedJob {
    AudioBuffer decoded;                 // the job's bytes decoded (empty for job.samples)
    const AudioBuffer* audio = nullptr;  // what the model hears: `decoded` or job.samples
    Model* model = nullptr;
  };
  PreparedJob prepare(const TranscriptionJob& job, CancelToken& cancel);
  Transcription run_job(const TranscriptionJob& job);
  // The chunks of `audio` that VAD finds, transcribed by the model as one batch and stitched.
  Transcription run_chunked(const TranscriptionJob& job, const PreparedJob& prepared,
                            const ChunkingChoice& choice, TranscribeOptions options,
                            CancelToken& cancel);
  LanguageScores run_detection(const TranscriptionJob& job);
  Transcription run_diarization(const TranscriptionJob& job,
                                const speakers::DiarizationOptions& options);
  Transcription run_task_job(const TaskRequest& request, TaskControl& control);

  Parts& parts_;
  ServiceLimits limits_;
  BacklogGate backlog_;
  RateLimiter clients_;
  VoiceActivityFilter vad_;
  CatalogModelLoader<vad::SmartTurn> turn_;
  MemoryBudget upload_memory_;
  WebhookSender webhooks_;
  SpeakerLabeler speakers_;
  std::map<std::string, WebhookFormat> webhook_formats_;
  ClientSlots live_slots_{limits_.live.max_sessions, limits_.live.max_sessions_per_client};
};

}  // namespace sra
