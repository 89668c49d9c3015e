#include "service/speaker_labels.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "audio/decoder.h"
#include "core/errors.h"
#include "core/text.h"
#include "models/model_catalog.h"

namespace sra {

const std::vector<OptionSpec>& diarization_option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> t;
    t.push_back(
        make_option("diarize", OptionType::boolean, "`false`",
                    "who spoke when: `speaker` on segments (cut where the speaker "
                    "changes) and words (OpenAI's `response_format=diarized_json` sets it)"));
    for (const char* name : {"num_speakers", "min_speakers", "max_speakers"}) {
      const std::string n = name;
      t.push_back(make_option(n, OptionType::integer,
                              n == "min_speakers"   ? "`1`"
                              : n == "max_speakers" ? "`20`"
                                                    : "",
                              n == "num_speakers"   ? "(diarization) exactly this many speakers"
                              : n == "min_speakers" ? "(diarization) at least this many speakers"
                                                    : "(diarization) at most this many speakers"));
      t.back().min = 1;
      t.back().max = 64;
    }
    return t;
  }();
  return specs;
}

std::optional<speakers::DiarizationOptions> diarization_requested(
    const std::map<std::string, std::string>& options) {
  auto parsed = [&](const char* name) -> std::optional<ParsedOption> {
    auto it = options.find(name);
    if (it == options.end()) return std::nullopt;
    return parse_option(*find_option(diarization_option_specs(), name), it->second);
  };
  auto flag = parsed("diarize");
  auto num = parsed("num_speakers"), low = parsed("min_speakers"), high = parsed("max_speakers");
  if (!flag || !flag->flag) {
    if (num || low || high) {
      throw invalid_field(num   ? "num_speakers"
                          : low ? "min_speakers"
                                : "max_speakers",
                          "speaker counts need diarize=true (or response_format=diarized_json)");
    }
    return std::nullopt;
  }
  speakers::DiarizationOptions o;
  if (num) o.num_speakers = static_cast<int>(num->number);
  if (low) o.min_speakers = static_cast<int>(low->number);
  if (high) o.max_speakers = static_cast<int>(high->number);
  if (o.min_speakers > o.max_speakers)
    throw invalid_field("min_speakers", "is more than max_speakers");
  if (o.num_speakers && (*o.num_speakers < o.min_speakers || *o.num_speakers > o.max_speakers))
    throw invalid_field("num_speakers", "lies outside min_speakers..max_speakers");
  return o;
}

void check_known_speakers(const std::vector<KnownSpeaker>& known) {
  const std::string field = "known_speaker_names[]";
  if (known.size() > kMaxKnownSpeakers) {
    throw invalid_field(field, "at most " + std::to_string(kMaxKnownSpeakers) +
                                   " known speakers (" + std::to_string(known.size()) + " given)");
  }
  for (std::size_t i = 0; i < known.size(); ++i) {
    const std::string& name = known[i].name;
    const bool printable = std::none_of(name.begin(), name.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
    });
    if (name.empty() || name.size() > kMaxSpeakerNameBytes || !printable || !is_utf8(name) ||
        strip(name) != name) {
      throw invalid_field(field, "name " + std::to_string(i + 1) + " must be 1 to " +
                                     std::to_string(kMaxSpeakerNameBytes) +
                                     " bytes of printable UTF-8 without surrounding spaces");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (known[j].name == name)
        throw invalid_field(field, "'" + name + "' is named twice: names must differ");
    }
  }
}

DiarizationSettings diarization_settings_from(const Config& config) {
  DiarizationSettings s;
  s.segmentation_model = config.get_string("DIARIZATION_SEGMENTATION_MODEL");
  s.embedding_model = config.get_string("DIARIZATION_EMBEDDING_MODEL");
  s.models_dir = config.get_string("WHISPER_MODELS_DIR");
  s.sources = model_sources(config);
  s.download = config.get_bool("MODEL_DOWNLOAD");
  s.threshold = static_cast<float>(config.get_double("DIARIZATION_THRESHOLD"));
  for (const auto& [name, kind] : {std::pair{s.segmentation_model, "segmentation"},
                                   std::pair{s.embedding_model, "embedding"}}) {
    const CatalogModel* m = find_catalog_model(name);
    if (!m || m->kind != kind) {
      throw config_error(std::string(kind == std::string("segmentation")
                                         ? "DIARIZATION_SEGMENTATION_MODEL="
                                         : "DIARIZATION_EMBEDDING_MODEL=") +
                         name + " is not a " + kind +
                         " model of the catalog (`speech-recognition-api models list`)");
    }
  }
  return s;
}

std::string speaker_label(int index) {
  std::string label;
  for (int n = index + 1; n > 0; n = (n - 1) / 26)
    label.insert(label.begin(), static_cast<char>('A' + (n - 1) % 26));
  return label;
}

int speaker_label_index(const std::string& label) {
  if (label.empty() || label.size() > 4) return -1;
  int n = 0;
  for (char c : label) {
    if (c < 'A' || c > 'Z') return -1;
    n = n * 26 + (c - 'A' + 1);
  }
  return n - 1;
}

namespace {

// The speaker of [start, end): the turn overlapping it most, else the nearest turn; -1 with no
// turns.
int speaker_of(const speakers::Diarization& d, double start, double end) {
  int best = -1;
  double best_overlap = 0, best_gap = 1e300;
  for (const auto& turn : d.turns) {
    const double overlap = std::min(end, turn.end) - std::max(start, turn.start);
    if (overlap > best_overlap) best = turn.speaker, best_overlap = overlap;
    if (best_overlap <= 0) {
      const double gap = overlap > 0 ? 0 : std::max(turn.start - end, start - turn.end);
      if (gap < best_gap) best_gap = gap, best = turn.speaker;
    }
  }
  return best;
}

}  // namespace

std::vector<std::string> speaker_names(const speakers::Diarization& d,
                                       const std::vector<KnownVoice>& known, float min_similarity) {
  const std::size_t speakers = static_cast<std::size_t>(std::max(0, d.speakers));
  std::vector<std::string> names(speakers);
  // The most similar (speaker, voice) pairs first, each side named once.
  struct Pair {
    float similarity;
    std::size_t speaker, voice;
  };
  std::vector<Pair> pairs;
  for (std::size_t s = 0; s < speakers && s < d.centroids.size(); ++s) {
    for (std::size_t v = 0; v < known.size(); ++v) {
      const float similarity = speakers::cosine_similarity(d.centroids[s], known[v].print);
      spdlog::debug("known speaker '{}' and speaker {}: voice similarity {:.3f}", known[v].name,
                    speaker_label(static_cast<int>(s)), similarity);
      if (similarity >= min_similarity) pairs.push_back({similarity, s, v});
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const Pair& a, const Pair& b) { return a.similarity > b.similarity; });
  std::vector<bool> voice_used(known.size(), false);
  for (const Pair& p : pairs) {
    if (!names[p.speaker].empty() || voice_used[p.voice]) continue;
    names[p.speaker] = known[p.voice].name;
    voice_used[p.voice] = true;
  }
  // The others by letter, in order of appearance, never a known name.
  int next = 0;
  for (std::string& name : names) {
    if (!name.empty()) continue;
    for (;;) {
      name = speaker_label(next++);
      const bool taken = std::any_of(known.begin(), known.end(),
                                     [&](const KnownVoice& v) { return v.name == name; });
      if (!taken) break;
    }
  }
  return names;
}

void label_transcription(Transcription& t, const speakers::Diarization& d,
                         const std::vector<std::string>& names) {
  auto label_of = [&names](int speaker) {
    return speaker >= 0 && static_cast<std::size_t>(speaker) < names.size()
               ? names[static_cast<std::size_t>(speaker)]
           : speaker >= 0 ? speaker_label(speaker)
                          : std::string();
  };
  t.diarized = true;
  t.speaker_turns.clear();
  for (const auto& turn : d.turns)
    t.speaker_turns.push_back({turn.start, turn.end, label_of(turn.speaker)});
  std::vector<Segment> out;
  for (Segment& s : t.segments) {
    if (s.words.empty()) {
      s.speaker = label_of(speaker_of(d, s.start, s.end));
      out.push_back(std::move(s));
      continue;
    }
    for (Word& w : s.words) {
      w.speaker = label_of(speaker_of(d, w.start, w.end));
    }
    // Cut where the speaker changes; each piece keeps the segment's statistics.
    std::size_t begin = 0;
    while (begin < s.words.size()) {
      std::size_t end = begin + 1;
      while (end < s.words.size() && s.words[end].speaker == s.words[begin].speaker) ++end;
      Segment piece = s;
      piece.words.assign(s.words.begin() + static_cast<std::ptrdiff_t>(begin),
                         s.words.begin() + static_cast<std::ptrdiff_t>(end));
      piece.speaker = s.words[begin].speaker;
      if (begin > 0 || end < s.words.size()) {
        piece.text.clear();
        for (const Word& w : piece.words) piece.text += w.word;
        piece.start = begin == 0 ? s.start : piece.words.front().start;
        piece.end = end == s.words.size() ? s.end : piece.words.back().end;
        piece.tokens.clear();  // the tokens belong to the whole segment
        piece.logprobs.clear();
      }
      out.push_back(std::move(piece));
      begin = end;
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].id = static_cast<int>(i);
  t.segments = std::move(out);
}

SpeakerLabeler::SpeakerLabeler(const DiarizationSettings& settings)
    : settings_(settings),
      segmentation_(CatalogModelSource{.what = "speaker segmentation model",
                                       .catalog_name = settings.segmentation_model,
                                       .models_dir = settings.models_dir,
                                       .sources = settings.sources,
                                       .download = settings.download}),
      embedding_(CatalogModelSource{.what = "speaker embedding model",
                                    .catalog_name = settings.embedding_model,
                                    .models_dir = settings.models_dir,
                                    .sources = settings.sources,
                                    .download = settings.download}) {}

void SpeakerLabeler::require_models() {
  segmentation_.prefetch();  // both pulls start, whichever is asked first
  embedding_.prefetch();
  segmentation_.get();
  embedding_.get();
}

void SpeakerLabeler::prefetch() {
  segmentation_.prefetch();
  embedding_.prefetch();
}

speakers::Diarization SpeakerLabeler::diarize(const AudioBuffer& audio,
                                              speakers::DiarizationOptions options,
                                              CancelToken* cancel) {
  const auto segmentation = segmentation_.get();
  const auto embedding = embedding_.get();
  if (options.threshold <= 0) options.threshold = settings_.threshold;
  if (cancel) {
    options.cancelled = [cancel] {
      cancel->check();  // throws cancelled or deadline_exceeded
      return false;
    };
  }
  const speakers::Diarizer diarizer(*segmentation, *embedding);
  return diarizer.diarize(audio.samples, options);
}

void SpeakerLabeler::label(Transcription& t, const AudioBuffer& audio,
                           speakers::DiarizationOptions options, CancelToken* cancel,
                           const std::vector<KnownVoice>& known) {
  options.threshold = 0;  // the setting's
  const speakers::Diarization d = diarize(audio, options, cancel);
  // A known voice names the speaker it is as close to as the clusters' own members are.
  label_transcription(t, d, speaker_names(d, known, 1.0f - settings_.threshold));
}

std::vector<KnownVoice> SpeakerLabeler::voice_prints(const std::vector<KnownSpeaker>& known) {
  if (known.empty()) return {};
  const auto segmentation = segmentation_.get();
  const auto embedding = embedding_.get();
  const speakers::Diarizer diarizer(*segmentation, *embedding);
  const std::string field = "known_speaker_references[]";
  std::vector<KnownVoice> voices;
  for (std::size_t i = 0; i < known.size(); ++i) {
    const std::string which = "clip " + std::to_string(i + 1) + " ('" + known[i].name + "')";
    AudioBuffer clip;
    try {
      clip = audio::decode(known[i].audio, {.max_seconds = kMaxKnownClipSeconds + 0.05});
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::too_large)
        throw invalid_field(field,
                            which + " lasts more than 10 s: a reference must last 1.2 to 10 s");
      if (e.kind() != ErrorKind::unsupported_media) throw;
      throw invalid_field(field, which + " is not audio that can be decoded: " + e.what());
    }
    if (clip.seconds() < kMinKnownClipSeconds) {
      throw invalid_field(field, which + " lasts " + std::to_string(clip.seconds()).substr(0, 4) +
                                     " s: a reference must last 1.2 to 10 s");
    }
    voices.push_back({known[i].name, diarizer.voice_print(clip.samples)});
  }
  return voices;
}

}  // namespace sra
