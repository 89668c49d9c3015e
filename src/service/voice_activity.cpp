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
  s.sources = model_sources(config);
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
    : settings_(std::move(settings)),
      loader_(CatalogModelSource{.what = "VAD model",
                                 .catalog_name = settings_.model,
                                 .path = settings_.model_path,
                                 .models_dir = settings_.models_dir,
                                 .sources = settings_.sources,
                                 .download = settings_.download}) {
  if (!settings_.filter) return;
  // On for every request: the model is needed now, and a missing one stops the start.
  try {
    model();
    return;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::unavailable) throw;
  }
  loader_.wait();
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
  return loader_.get();
}

void VoiceActivityFilter::prefetch() {
  loader_.prefetch();
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
