#include "service/voice_activity.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "core/errors.h"
#include "models/model_catalog.h"
#include "models/model_pull.h"

namespace sra {
namespace {

OptionSpec spec(std::string name, OptionType type, std::string default_text, double min, double max,
                std::string doc, bool nullable = false) {
  OptionSpec s = make_option(std::move(name), type, std::move(default_text), std::move(doc));
  s.min = min;
  s.max = max;
  s.nullable = nullable;
  return s;
}

// What a request's VAD fields set: whether to filter, and how.
struct VadChoice {
  bool filter = false;
  vad::VadOptions options;
};

const BoundOptions<VadChoice>& vad_options() {
  using T = OptionType;
  using V = const ParsedOption&;
  static const BoundOptions<VadChoice> table = {
      {spec("vad_filter", T::boolean, "`false`", 0, 1,
            "transcribe only the speech Silero VAD finds; times stay those of the whole audio"),
       [](VadChoice& c, V v) { c.filter = v.flag; }},
      {spec("vad_threshold", T::number, "`0.5`", 0.01, 0.99,
            "(VAD) speech probability from which a 32 ms window is speech"),
       [](VadChoice& c, V v) { c.options.threshold = v.number; }},
      {spec("vad_min_speech_duration_ms", T::integer, "`0`", 0, 60000,
            "(VAD) speech shorter than this is dropped"),
       [](VadChoice& c, V v) { c.options.min_speech_duration_ms = v.number; }},
      {spec("vad_max_speech_duration_s", T::number, "none", 1, 86400,
            "(VAD) longer speech is split, at a silence when there is one", true),
       [](VadChoice& c, V v) {
         c.options.max_speech_duration_s =
             v.unset ? std::numeric_limits<double>::infinity() : v.number;
       }},
      {spec("vad_min_silence_duration_ms", T::integer, "`2000`", 0, 60000,
            "(VAD) silence that ends a stretch of speech"),
       [](VadChoice& c, V v) { c.options.min_silence_duration_ms = v.number; }},
      {spec("vad_speech_pad_ms", T::integer, "`400`", 0, 10000,
            "(VAD) audio kept on each side of the speech"),
       [](VadChoice& c, V v) { c.options.speech_pad_ms = v.number; }},
  };
  return table;
}

}  // namespace

const std::vector<OptionSpec>& vad_option_specs() {
  static const std::vector<OptionSpec> specs = specs_of(vad_options());
  return specs;
}

VadSettings vad_settings_from(const Config& config) {
  VadSettings s;
  VadChoice defaults{.filter = config.get_bool("VAD"), .options = s.defaults};
  for (const auto& option : vad_options()) {
    if (auto value = config.option("", option.spec.name)) {
      try {
        option.set(defaults, parse_option(option.spec, *value));
      } catch (const Error& e) {
        throw config_error(option_variable("", option.spec.name) + ": " + e.what());
      }
    }
  }
  s.filter = defaults.filter;
  s.defaults = defaults.options;
  s.model = config.get_string("VAD_MODEL");
  s.model_path = config.get_string("VAD_MODEL_PATH");
  s.models_dir = config.get_string("WHISPER_MODELS_DIR");
  s.index_url = config.get_string("MODEL_INDEX_URL");
  s.download = config.get_bool("MODEL_DOWNLOAD");
  if (s.model_path.empty()) {
    const CatalogModel* m = find_catalog_model(s.model);
    if (!m || m->kind != "vad") {
      throw config_error("VAD_MODEL=" + s.model +
                         " is not a VAD model of the catalog (`speech-recognition-api models "
                         "list`); set VAD_MODEL_PATH for a file of your own");
    }
  }
  return s;
}

VoiceActivityFilter::VoiceActivityFilter(VadSettings settings)
    : settings_(std::move(settings)), fetch_(std::make_shared<Fetch>()) {
  if (!settings_.filter) return;
  // On for every request: the model is needed now, and a missing one stops the start.
  try {
    model();
    return;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::unavailable) throw;
  }
  {
    std::unique_lock lock(fetch_->mutex);
    fetch_->changed.wait(lock, [this] { return !fetch_->running; });
    if (fetch_->failure) throw config_error(*fetch_->failure);
  }
  model();
}

std::optional<vad::VadOptions> VoiceActivityFilter::options_for(
    const std::map<std::string, std::string>& fields) const {
  VadChoice choice{.filter = settings_.filter, .options = settings_.defaults};
  for (const auto& [field, value] : fields) apply_option(vad_options(), choice, field, value);
  if (!choice.filter) return std::nullopt;
  return choice.options;
}

std::shared_ptr<const vad::SileroVad> VoiceActivityFilter::model() {
  std::lock_guard lock(fetch_->mutex);
  if (fetch_->model) return fetch_->model;
  if (!settings_.model_path.empty()) {
    fetch_->model = std::make_shared<const vad::SileroVad>(settings_.model_path);
    return fetch_->model;
  }
  const CatalogModel& m = *find_catalog_model(settings_.model);  // checked in the settings
  const std::filesystem::path path = catalog_model_path(m, settings_.models_dir);
  if (std::filesystem::exists(path)) {
    fetch_->model = std::make_shared<const vad::SileroVad>(path);
    return fetch_->model;
  }
  if (!settings_.download) {
    throw config_error("the VAD model " + path.string() +
                       " is missing and MODEL_DOWNLOAD=false: run `speech-recognition-api "
                       "models pull " +
                       m.name + "` first");
  }
  const auto now = std::chrono::steady_clock::now();
  if (fetch_->running) {
    throw unavailable("the VAD model " + m.name + " is being pulled; retry in a moment")
        .set_retry_after(5);
  }
  if (fetch_->failure && now < fetch_->retry_at) {
    throw config_error(*fetch_->failure)
        .set_retry_after(std::chrono::duration<double>(fetch_->retry_at - now).count());
  }
  // The pull (a download) runs on a thread of its own, never on a request's.
  fetch_->running = true;
  spdlog::info("pulling VAD model {} into {} (once)", m.name, settings_.models_dir.string());
  PullOptions pull;
  pull.models_dir = settings_.models_dir;
  pull.index_url = settings_.index_url;
  pull.cancelled = [fetch = fetch_.get()] { return fetch->stopping.load(); };
  if (puller_.joinable()) puller_.join();  // the last pull ended (running is false)
  puller_ = std::thread([fetch = fetch_, &m, pull] {
    std::shared_ptr<const vad::SileroVad> loaded;
    std::optional<std::string> failure;
    try {
      loaded = std::make_shared<const vad::SileroVad>(pull_model(m, pull));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) return;  // the filter is going away
      failure = "the VAD model " + m.name + " could not be pulled: " + e.what() +
                " (run `speech-recognition-api models pull " + m.name + "`)";
      spdlog::error("{}", *failure);
    } catch (const std::exception& e) {
      failure = "the VAD model " + m.name + " could not be pulled: " + e.what() +
                " (run `speech-recognition-api models pull " + m.name + "`)";
      spdlog::error("{}", *failure);
    }
    std::lock_guard lock(fetch->mutex);
    fetch->running = false;
    fetch->model = loaded;
    fetch->failure = failure;
    fetch->changed.notify_all();
    if (failure) {
      // Tried again no sooner than this: 30 s, doubling up to an hour.
      fetch->retry_after_seconds = std::min(fetch->retry_after_seconds * 2, 3600.0);
      fetch->retry_at = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(fetch->retry_after_seconds));
    }
  });
  throw unavailable("the VAD model " + m.name + " is being pulled; retry in a moment")
      .set_retry_after(5);
}

VoiceActivityFilter::~VoiceActivityFilter() {
  fetch_->stopping = true;
  if (puller_.joinable()) puller_.join();
}

void VoiceActivityFilter::prefetch() {
  try {
    model();
  } catch (const Error&) {
    // Being pulled, or failed (logged): the requests that need it are told.
  }
}

std::vector<vad::SpeechSegment> VoiceActivityFilter::speech_segments(const AudioBuffer& audio,
                                                                     const vad::VadOptions& options,
                                                                     const CancelToken* cancel) {
  std::vector<float> probabilities =
      vad::faster_whisper_probabilities(*model(), audio.samples, cancel);
  return vad::speech_timestamps(probabilities, static_cast<std::int64_t>(audio.samples.size()),
                                options);
}

SpeechOnly VoiceActivityFilter::speech(const AudioBuffer& audio, const vad::VadOptions& options,
                                       const CancelToken* cancel) {
  SpeechOnly out;
  out.segments = speech_segments(audio, options, cancel);
  for (const auto& s : out.segments) {
    out.audio.samples.insert(out.audio.samples.end(),
                             audio.samples.begin() + static_cast<std::ptrdiff_t>(s.start),
                             audio.samples.begin() + static_cast<std::ptrdiff_t>(s.end));
  }
  return out;
}

void restore_times(Segment& s, const vad::SpeechMap& map) {
  if (!s.words.empty()) {
    for (auto& w : s.words) {
      std::size_t index = map.segment_index((w.start + w.end) / 2);
      w.start = map.original_time_in(w.start, index);
      w.end = map.original_time_in(w.end, index);
    }
    s.start = s.words.front().start;
    s.end = s.words.back().end;
  } else {
    s.start = map.original_time(s.start);
    s.end = map.original_time(s.end, true);
  }
}

void restore_times(Transcription& t, const SpeechOnly& speech) {
  vad::SpeechMap map(speech.segments);
  for (auto& s : t.segments) restore_times(s, map);
}

}  // namespace sra
