#include "service/transcription_service.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cmath>

#include "bus/task_runner.h"
#include "core/errors.h"
#include "core/log_context.h"
#include "core/text.h"
#include "service/metrics.h"

namespace sra {

ServiceLimits service_limits_from(const Config& config) {
  ServiceLimits limits;
  limits.max_upload_bytes = static_cast<std::size_t>(config.get_int("MAX_UPLOAD_BYTES"));
  const auto upload = static_cast<std::int64_t>(limits.max_upload_bytes);
  limits.max_buffered_upload_bytes = static_cast<std::size_t>(config.get_int(
      "MAX_BUFFERED_UPLOAD_BYTES",
      std::max(static_cast<std::int64_t>(limits.max_buffered_upload_bytes), 4 * upload)));
  if (static_cast<std::int64_t>(limits.max_buffered_upload_bytes) < upload) {
    throw config_error(
        "MAX_BUFFERED_UPLOAD_BYTES must hold one upload: at least MAX_UPLOAD_BYTES (" +
        std::to_string(upload) + ")");
  }
  limits.max_audio_seconds = config.get_double("MAX_AUDIO_SECONDS");
  limits.max_job_seconds = config.get_double("MAX_JOB_SECONDS");
  limits.delete_audio_after_task = config.get_bool("DELETE_AUDIO_AFTER_TASK");
  limits.backlog = backlog_limits_from(config);
  limits.rate = rate_limits_from(config);
  limits.vad = vad_settings_from(config);
  try {
    limits.chunking = parse_chunking(config.get_string("WHISPER_CHUNKING"), "WHISPER_CHUNKING");
  } catch (const Error& e) {
    throw config_error(std::string("WHISPER_CHUNKING: ") + e.what());
  }
  limits.live = live_settings_from(config);
  limits.webhooks = webhook_settings_from(config);
  limits.diarization = diarization_settings_from(config);
  return limits;
}

CancelToken::Clock::time_point TranscriptionService::deadline_for(double audio_seconds) const {
  double seconds = limits_.max_job_seconds > 0 ? limits_.max_job_seconds : 10 * audio_seconds + 60;
  return CancelToken::Clock::now() + std::chrono::duration_cast<CancelToken::Clock::duration>(
                                         std::chrono::duration<double>(seconds));
}

namespace {

// Runs `run` for `job` with the job's request id on this thread's log lines; every job ends in
// one outcome of sra_transcriptions_total.
template <typename Run>
auto counted(const TranscriptionJob& job, Run run) -> decltype(run()) {
  LogScope scope({.request_id = job.request_id});
  try {
    auto result = run();
    metrics().jobs.with({"done"}).add();
    return result;
  } catch (const Error& e) {
    const char* outcome = e.kind() == ErrorKind::cancelled           ? "cancelled"
                          : e.kind() == ErrorKind::deadline_exceeded ? "expired"
                                                                     : "failed";
    metrics().jobs.with({outcome}).add();
    throw;
  } catch (...) {
    metrics().jobs.with({"failed"}).add();
    throw;
  }
}

// A task's stored options: a JSON object of strings, as the API stores them. Anything else (from
// another producer, or damaged) fails the task, naming why: options are never silently dropped.
std::map<std::string, std::string> stored_options(const std::string& json) {
  std::map<std::string, std::string> options;
  if (json.empty()) return options;
  boost::system::error_code ec;
  auto parsed = boost::json::parse(json, ec);
  if (ec || !parsed.is_object()) {
    throw invalid_request("the task's options are not a JSON object" +
                          (ec ? ": " + ec.message() : std::string()));
  }
  for (auto& [key, value] : parsed.as_object()) {
    if (!value.is_string()) {
      throw invalid_field(std::string(key), "the task's option is not a string");
    }
    options[std::string(key)] = std::string(value.get_string());
  }
  return options;
}

// VAD and chunking hand the model speech without its pauses (or cut at them): dense windows, where
// a greedy decoding that loops and a last timestamp that jumps over speech are likelier. Unless
// the request says otherwise, a window that fails every temperature keeps its best attempt (never
// the last temperature's noise), and one whose last segment runs on past its words continues
// after its last word.
void prefer_kept_speech(std::map<std::string, std::string>& values) {
  values.try_emplace("keep_best_attempt", "true");
  values.try_emplace("seek_by_words", "true");
}

double seconds_since(CancelToken::Clock::time_point start) {
  return std::chrono::duration<double>(CancelToken::Clock::now() - start).count();
}

}  // namespace

Transcription TranscriptionService::transcribe(const TranscriptionJob& job) {
  return counted(job, [&] { return run_job(job); });
}

LanguageScores TranscriptionService::detect_language(const TranscriptionJob& job) {
  return counted(job, [&] { return run_detection(job); });
}

Transcription TranscriptionService::diarize(const TranscriptionJob& job,
                                            const speakers::DiarizationOptions& options) {
  return counted(job, [&] { return run_diarization(job, options); });
}

TranscriptionService::PreparedJob TranscriptionService::prepare(const TranscriptionJob& job,
                                                                CancelToken& cancel) {
  auto started = CancelToken::Clock::now();
  cancel.check();
  PreparedJob prepared;
  if (job.samples) {
    if (job.samples->seconds() > limits_.max_audio_seconds) {
      throw too_large("audio is longer than MAX_AUDIO_SECONDS (" +
                      std::to_string(static_cast<long long>(limits_.max_audio_seconds)) + " s)");
    }
    prepared.audio = job.samples;
  } else {
    prepared.decoded = audio::decode(job.audio, {.max_seconds = limits_.max_audio_seconds});
    prepared.audio = &prepared.decoded;
  }
  const double seconds = prepared.audio->seconds();
  if (!job.client.empty()) clients_.charge_audio(job.client, seconds);
  if (job.on_decoded) job.on_decoded(seconds);
  // The deadline counts from the start of the job, decoding included.
  auto deadline = deadline_for(seconds);
  cancel.set_deadline(started + (deadline - CancelToken::Clock::now()));
  cancel.check();
  prepared.model = job.model.empty() ? &parts_.model() : &parts_.model(job.model);
  return prepared;
}

Transcription TranscriptionService::run_job(const TranscriptionJob& job) {
  CancelToken own;
  CancelToken& cancel = job.cancel ? *job.cancel : own;
  // Speakers, when asked for: checked before any work; the transcription gets word times, by
  // which each word finds its speaker once the whole audio is diarized.
  const std::optional<speakers::DiarizationOptions> diarize = diarization_requested(job.options);
  if (!job.known_speakers.empty() && !diarize) {
    throw invalid_field("known_speaker_names[]",
                        "known speakers need diarization: response_format=diarized_json or "
                        "diarize=true");
  }
  check_known_speakers(job.known_speakers);
  PreparedJob prepared = prepare(job, cancel);  // audio that cannot be decoded: 400 first
  std::vector<KnownVoice> known;
  if (diarize) {
    speakers_.require_models();
    known = speakers_.voice_prints(job.known_speakers);  // a bad clip: 400 before transcribing
  }
  const AudioBuffer& audio = *prepared.audio;
  TranscribeOptions options;
  options.values = job.options;
  for (const auto& spec : diarization_option_specs()) options.values.erase(spec.name);
  if (diarize) options.values["word_timestamps"] = "true";
  options.on_segment = job.on_segment;
  options.cancel = &cancel;
  auto inference_started = CancelToken::Clock::now();
  auto with_speakers = [&](Transcription t) {
    if (!diarize) return t;
    auto started = CancelToken::Clock::now();
    speakers_.label(t, audio, *diarize, &cancel, known);
    metrics().stage_seconds.with({"diarize"}).add(seconds_since(started));
    return t;
  };

  // Chunked: speech cut at silences, the chunks decoded together (service/chunking.h).
  ChunkingChoice chunking = limits_.chunking;
  if (auto it = job.options.find("chunking_strategy"); it != job.options.end()) {
    chunking = parse_chunking(it->second, "chunking_strategy");
  }
  options.values.erase("chunking_strategy");
  if (chunking.applies_to(audio.seconds())) {
    for (const auto& spec : vad_option_specs()) options.values.erase(spec.name);
    Transcription t =
        with_speakers(run_chunked(job, prepared, chunking, std::move(options), cancel));
    metrics().audio_seconds.add(audio.seconds());
    metrics().inference_seconds.add(seconds_since(inference_started));
    metrics().stage_seconds.with({"encode"}).add(t.stage_times.encode_seconds);
    metrics().stage_seconds.with({"decode"}).add(t.stage_times.decode_seconds);
    return t;
  }

  // With VAD, the model hears only the speech and every time is mapped back.
  std::optional<vad::VadOptions> vad_options = vad_.options_for(job.options);
  std::optional<SpeechOnly> speech;
  std::optional<vad::SpeechMap> speech_map;
  if (vad_options) {
    auto vad_started = CancelToken::Clock::now();
    speech = vad_.speech(audio, *vad_options, &cancel);
    metrics().stage_seconds.with({"vad"}).add(seconds_since(vad_started));
    speech_map.emplace(speech->segments);
    for (const auto& spec : vad_option_specs()) options.values.erase(spec.name);
    prefer_kept_speech(options.values);
    if (job.on_segment) {
      options.on_segment = [&](const Segment& s) {
        Segment mapped = s;
        restore_times(mapped, *speech_map);
        job.on_segment(mapped);
      };
    }
  }
  Transcription t;
  if (speech && speech->audio.samples.empty()) {
    t.duration = audio.seconds();  // no speech: nothing to transcribe
  } else {
    t = prepared.model->transcribe(speech ? speech->audio : audio, options);
  }
  if (speech) {
    restore_times(t, *speech);
    t.duration = audio.seconds();
  }
  t = with_speakers(std::move(t));
  metrics().audio_seconds.add(audio.seconds());
  metrics().inference_seconds.add(seconds_since(inference_started));
  metrics().stage_seconds.with({"encode"}).add(t.stage_times.encode_seconds);
  metrics().stage_seconds.with({"decode"}).add(t.stage_times.decode_seconds);
  // A model that does not check the token (a plugin) still cannot return past its deadline
  // unnoticed; the result is kept, since the work is done.
  if (CancelToken::Clock::now() > cancel.deadline()) {
    spdlog::warn("a transcription of {:.1f} s of audio finished past its deadline",
                 audio.seconds());
  }
  return t;
}

Transcription TranscriptionService::run_chunked(const TranscriptionJob& job,
                                                const PreparedJob& prepared,
                                                const ChunkingChoice& choice,
                                                TranscribeOptions options, CancelToken& cancel) {
  const AudioBuffer& audio = *prepared.audio;
  auto vad_started = CancelToken::Clock::now();
  std::vector<vad::SpeechSegment> speech = vad_.speech_segments(audio, choice.vad, &cancel);
  metrics().stage_seconds.with({"vad"}).add(seconds_since(vad_started));
  const std::vector<AudioSpan> spans =
      plan_chunks(speech, static_cast<std::int64_t>(30.0 * kSampleRate));
  Transcription t;
  t.duration = audio.seconds();
  if (spans.empty()) return t;  // no speech: nothing to transcribe
  std::vector<AudioBuffer> chunks;
  chunks.reserve(spans.size());
  for (const auto& span : spans) {
    chunks.push_back(
        {std::vector<float>(audio.samples.begin() + span.start, audio.samples.begin() + span.end)});
  }
  // One language for the file: detected once, on the first chunk, unless the request names it.
  auto language = options.values.find("language");
  const std::string named = language == options.values.end() ? "" : strip(language->second);
  if (named.empty() || named == "auto" || named == "none" || named == "null") {
    if (auto scores = prepared.model->detect_language(chunks.front(), options);
        scores && !scores->empty()) {
      options.values["language"] = scores->front().language;
    }
  }
  // Each chunk on its own: no text carried across chunks.
  options.values["condition_on_previous_text"] = "false";
  prefer_kept_speech(options.values);
  options.on_segment = nullptr;
  std::string text;
  prepared.model->transcribe_chunks(chunks, options, [&](std::size_t i, Transcription&& part) {
    const double offset = static_cast<double>(spans[i].start) / kSampleRate;
    if (t.language.empty()) t.language = part.language;
    t.stage_times.encode_seconds += part.stage_times.encode_seconds;
    t.stage_times.decode_seconds += part.stage_times.decode_seconds;
    for (auto& s : part.segments) {
      s.start += offset;
      s.end += offset;
      for (auto& w : s.words) {
        w.start += offset;
        w.end += offset;
      }
      s.id = static_cast<int>(t.segments.size());
      s.seek += static_cast<std::int64_t>(std::llround(offset * 100));
      if (job.on_segment) job.on_segment(s);
      t.segments.push_back(std::move(s));
    }
    const std::string part_text = strip(part.text);
    if (!part_text.empty()) text += (text.empty() ? "" : " ") + part_text;
  });
  t.text = std::move(text);
  return t;
}

LanguageScores TranscriptionService::run_detection(const TranscriptionJob& job) {
  CancelToken own;
  CancelToken& cancel = job.cancel ? *job.cancel : own;
  PreparedJob prepared = prepare(job, cancel);
  TranscribeOptions options;
  options.values = job.options;
  options.cancel = &cancel;
  auto inference_started = CancelToken::Clock::now();
  std::optional<LanguageScores> scores = prepared.model->detect_language(*prepared.audio, options);
  if (!scores) {
    throw invalid_field("model",
                        "the model '" + (job.model.empty() ? std::string("default") : job.model) +
                            "' cannot tell languages (an English-only or non-Whisper model)");
  }
  metrics().inference_seconds.add(seconds_since(inference_started));
  return *scores;
}

Transcription TranscriptionService::run_diarization(const TranscriptionJob& job,
                                                    const speakers::DiarizationOptions& options) {
  CancelToken own;
  CancelToken& cancel = job.cancel ? *job.cancel : own;
  PreparedJob prepared = prepare(job, cancel);  // audio that cannot be decoded: 400 first
  speakers_.require_models();
  auto started = CancelToken::Clock::now();
  Transcription t;
  t.duration = prepared.audio->seconds();
  const speakers::Diarization d = speakers_.diarize(*prepared.audio, options, &cancel);
  label_transcription(t, d);
  metrics().audio_seconds.add(t.duration);
  metrics().stage_seconds.with({"diarize"}).add(seconds_since(started));
  return t;
}

Transcription TranscriptionService::run_task(const TaskRequest& request, TaskControl& control) {
  const std::string bus_name = parts_.bus_name();
  GaugeValue& running = metrics().async_running.with({bus_name});
  running.add(1);
  struct Done {
    GaugeValue& running;
    ~Done() { running.add(-1); }
  } done{running};
  try {
    Transcription t = run_task_job(request, control);
    metrics().async_tasks.with({bus_name, "success"}).add();
    return t;
  } catch (const std::exception& e) {
    // As the bus's task runner will judge it (bus/task_runner.h).
    const char* outcome = "retry";
    switch (bus::failure_kind(e, control)) {
      case bus::TaskOutcome::Kind::cancelled:
        outcome = "cancelled";
        break;
      case bus::TaskOutcome::Kind::failed:
        outcome = "failed";
        break;
      default:
        break;
    }
    metrics().async_tasks.with({bus_name, outcome}).add();
    throw;
  } catch (...) {
    metrics().async_tasks.with({bus_name, "retry"}).add();
    throw;
  }
}

Transcription TranscriptionService::run_task_job(const TaskRequest& request, TaskControl& control) {
  std::string bytes = parts_.storage().read(request.file_id);
  TranscriptionJob job;
  job.audio = bytes;
  job.request_id = request.request_id;
  job.cancel = &control.cancel_token();
  double audio_seconds = 0;
  job.on_decoded = [&](double seconds) { audio_seconds = seconds; };
  job.on_segment = [&](const Segment& segment) { control.segment_done(segment, audio_seconds); };
  job.options = stored_options(request.options_json);
  // A route's own record of the request (how its webhook renders; the served model it named)
  // is the worker's, not the model's (see before_final).
  if (auto model = job.options.find("openai_model"); model != job.options.end()) {
    job.model = model->second;
  }
  for (auto it = job.options.begin(); it != job.options.end();) {
    const std::string& name = it->first;
    it = name.starts_with("callback_") || name.starts_with("deepgram_") ||
                 name.starts_with("openai_")
             ? job.options.erase(it)
             : std::next(it);
  }
  return transcribe(job);
}

void TranscriptionService::after_task(const TaskRequest& request) noexcept {
  if (!limits_.delete_audio_after_task) return;
  try {
    parts_.storage().remove(request.file_id);
  } catch (const std::exception& e) {
    spdlog::warn("task audio {} could not be removed: {}", request.file_id, e.what());
  }
}

void TranscriptionService::before_final(const std::string& task_id, const TaskRequest& request,
                                        const TaskResult& result) noexcept {
  try {
    std::map<std::string, std::string> options;
    try {
      options = stored_options(request.options_json);
    } catch (const std::exception&) {
      return;  // the task fails on its options, which say nothing usable
    }
    const std::string url = options["callback_url"];
    if (url.empty()) return;
    if (!webhooks_.enabled()) {
      spdlog::error("task {}: has a callback_url but WEBHOOK_SECRET is not set here: not sent",
                    task_id);
      return;
    }
    LogScope scope({.request_id = request.request_id});
    std::string body = webhook_payload(task_id, result);
    if (auto format = webhook_formats_.find(options["callback_format"]);
        format != webhook_formats_.end()) {
      body = format->second(task_id, result, options);
    }
    webhooks_.deliver(url, "task_" + task_id, body);
  } catch (const std::exception& e) {
    spdlog::error("task {}: webhook: {}", task_id, e.what());
  }
}

}  // namespace sra
