// The tool subcommands: convert and bench (model files, the engine benchmark), vad, turn and
// diarize (the speech, end-of-turn and speaker models on files).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "audio/decoder.h"
#include "commands.h"
#include "core/errors.h"
#include "core/option_table.h"
#include "core/settings.h"
#include "engine/speakers/diarization.h"
#include "engine/vad/silero_vad.h"
#include "engine/vad/smart_turn.h"
#include "engine/vad/speech_timestamps.h"
#include "engine/whisper/blas.h"
#include "engine/whisper/cpu_features.h"
#include "engine/whisper/ctranslate2_import.h"
#include "engine/whisper/engine.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/model_writer.h"
#include "engine/whisper/thread_budget.h"
#include "http/formats.h"
#include "http/static_routes.h"
#include "models/model_catalog.h"
#include "models/model_pull.h"
#include "service/builtin_parts.h"
#include "service/voice_activity.h"

namespace sra::app {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace

int run_convert(const ConvertOptions& options) {
  try {
    if (options.kind == "f16") {
      whisper::convert_to_f16(options.inputs.at(0), options.output);
    } else if (options.kind == "ctranslate2") {
      if (options.inputs.size() != 2) {
        std::cerr << "error: convert ctranslate2 needs MODEL_BIN and VOCABULARY_TXT\n";
        return 2;
      }
      whisper::import_ctranslate2(options.inputs[0], options.inputs[1], options.output);
    } else if (options.kind == "q8_0" || options.kind == "q4_0") {
      whisper::convert_quantized(
          options.inputs.at(0), options.output,
          options.kind == "q8_0" ? whisper::WeightType::q8_0 : whisper::WeightType::q4_0);
    } else {
      std::cerr << "error: unknown conversion '" << options.kind << "'\n";
      return 2;
    }
    auto file = whisper::ModelFile::load(options.output);  // check what was written
    const auto& h = file->hparams();
    std::cout << options.output << ": n_vocab " << h.n_vocab << ", width " << h.n_audio_state
              << ", layers " << h.n_audio_layer << "+" << h.n_text_layer << ", mels " << h.n_mels
              << ", weights " << file->weight_type() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int run_bench(const BenchOptions& options) {
  try {
    auto t0 = Clock::now();
    whisper::WhisperEngine engine(whisper::ModelFile::load(options.model));
    engine.set_threads(options.threads);
    engine.set_half_cross_cache(options.half_cross_cache);
    const whisper::LinearMath math = whisper::compute_math(options.compute, engine.file());
    engine.set_math(math);
    double load = seconds_since(t0);
    const auto& h = engine.hparams();

    std::vector<float> samples;
    if (!options.audio.empty()) {
      std::ifstream in(options.audio, std::ios::binary);
      if (!in) throw std::runtime_error("cannot read " + options.audio);
      std::stringstream bytes;
      bytes << in.rdbuf();
      samples = audio::decode(bytes.str()).samples;
    } else {
      samples.assign(whisper::kChunkSamples, 0.0f);
    }
    whisper::Mel window =
        whisper::mel_window(engine.mel(samples, whisper::kChunkSamples), 0, whisper::kChunkFrames);

    std::vector<double> encoder_runs;
    std::vector<float> features;
    for (int i = 0; i < options.runs; ++i) {
      t0 = Clock::now();
      features = engine.encode(window);
      encoder_runs.push_back(seconds_since(t0));
    }

    // Decoder: greedy steps with the end of text suppressed, so that every run has `tokens`.
    whisper::DecodingOptions decode;
    decode.language = "en";
    decode.without_timestamps = true;
    decode.sample_len = options.tokens;
    decode.suppress_tokens = "-1," + std::to_string(engine.tokenizer().special().eot);
    decode.suppress_blank = true;
    std::vector<double> per_token;
    for (int i = 0; i < options.runs; ++i) {
      t0 = Clock::now();
      auto r = engine.decode(features, decode);
      double t = seconds_since(t0);
      per_token.push_back(t / static_cast<double>(std::max<std::size_t>(1, r.tokens.size())));
    }

    // One decoder pass (a step of one token) for 1 and for 8 sequences, each over audio of its
    // own (8 requests batched): the pass alone, without the logit filters.
    auto step_seconds = [&](int sequences) {
      const whisper::Decoder& decoder = engine.decoder();
      whisper::ThreadBudget::Scope scope(options.threads);
      std::vector<whisper::CrossCache> crosses;
      for (int i = 0; i < sequences; ++i)
        crosses.push_back(decoder.cross_cache(features, options.half_cross_cache));
      std::vector<whisper::SelfCache> caches(static_cast<std::size_t>(sequences));
      std::vector<whisper::SelfCache*> ptrs;
      std::vector<const whisper::CrossCache*> cross_ptrs;
      for (int i = 0; i < sequences; ++i) {
        ptrs.push_back(&caches[static_cast<std::size_t>(i)]);
        cross_ptrs.push_back(&crosses[static_cast<std::size_t>(i)]);
      }
      const auto& sp = engine.tokenizer().special();
      std::vector<std::vector<int>> prompt(
          static_cast<std::size_t>(sequences),
          {sp.sot, sp.first_language, sp.transcribe, sp.no_timestamps});
      decoder.forward(prompt, ptrs, cross_ptrs);
      std::vector<std::vector<int>> next(static_cast<std::size_t>(sequences), {400});
      std::vector<double> runs;
      for (int i = 0; i < 3 * options.runs; ++i) {
        auto t = Clock::now();
        auto h = decoder.forward(next, ptrs, cross_ptrs);
        decoder.logits(h.data(), sequences);
        runs.push_back(seconds_since(t));
      }
      return median(runs);
    };
    const double step1 = step_seconds(1), step8 = step_seconds(8);

    double rtf = 0, transcribe_seconds = 0, audio_seconds = 0;
    std::string text;
    if (!options.audio.empty()) {
      audio_seconds = static_cast<double>(samples.size()) / 16000.0;
      t0 = Clock::now();
      auto r = engine.transcribe(samples, {});
      transcribe_seconds = seconds_since(t0);
      rtf = transcribe_seconds / audio_seconds;
      text = r.text;
    }

    std::cout << "| model | " << options.model << " |\n|---|---|\n"
              << "| shape | n_vocab " << h.n_vocab << ", width " << h.n_audio_state << ", heads "
              << h.n_audio_head << ", layers " << h.n_audio_layer << "+" << h.n_text_layer
              << ", mels " << h.n_mels << ", " << engine.file().weight_type() << " weights |\n"
              << "| threads | " << options.threads << " |\n"
              << "| kernels | " << whisper::isa_name(whisper::active_isa()) << "; "
              << whisper::blas_description() << " |\n"
              << "| encoder products | " << whisper::compute_name(math) << " |\n"
              << "| decoder step products | "
              << (math == whisper::LinearMath::int8 &&
                          whisper::stores_quantized_weights(engine.file())
                      ? std::string("int8 blocks (") + whisper::int8_gemv_kernel_name() + " kernel)"
                      : std::string("exact"))
              << " |\n"
              << "| load | " << load * 1000 << " ms |\n"
              << "| encoder, one 30 s window (median of " << options.runs << ") | "
              << median(encoder_runs) * 1000 << " ms |\n"
              << "| decoder, per token (median of " << options.runs << ", " << options.tokens
              << " tokens) | " << median(per_token) * 1000 << " ms |\n"
              << "| decoder pass, 1 sequence (median of " << 3 * options.runs << ") | "
              << step1 * 1000 << " ms |\n"
              << "| decoder pass, 8 sequences over 8 windows (batched requests) | " << step8 * 1000
              << " ms, " << step8 / step1 << "x one sequence's |\n";
    if (!options.audio.empty()) {
      std::cout << "| transcribe `" << options.audio << "` (" << audio_seconds << " s) | "
                << transcribe_seconds * 1000 << " ms, real-time factor " << rtf << " |\n"
                << "| text | " << text << " |\n";
    }
    std::cout << "| peak RSS | " << peak_rss_mib() << " MiB |\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int run_options(OptionsTable table) {
  switch (table) {
    case OptionsTable::openapi:
      std::cout << http::openapi_document() << "\n";
      break;
    case OptionsTable::subtitles:
      std::cout << fields_markdown(http::subtitle_option_specs());
      break;
    case OptionsTable::vad:
      std::cout << options_markdown(vad_option_specs(), "");
      break;
    case OptionsTable::settings:
      std::cout << settings_markdown();
      break;
    case OptionsTable::whisper:
      std::cout << options_markdown(builtin_request_options(), "WHISPER_");
      break;
  }
  return 0;
}

}  // namespace sra::app

namespace sra::app {

int run_vad(const VadCommandOptions& options) {
  try {
    vad::SileroVad model(options.model);
    std::ifstream in(options.audio, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + options.audio);
    std::stringstream bytes;
    bytes << in.rdbuf();
    std::vector<float> samples = audio::decode(bytes.str()).samples;
    boost::json::object out;
    if (options.probabilities) {
      boost::json::array probs;
      for (float p : model.probabilities(samples)) probs.emplace_back(p);
      out["probabilities"] = std::move(probs);
    } else {
      boost::json::array segments;
      vad::VadOptions o;
      o.threshold = options.threshold;
      o.min_speech_duration_ms = options.min_speech_duration_ms;
      if (options.max_speech_duration_s < 1e9)
        o.max_speech_duration_s = options.max_speech_duration_s;
      o.min_silence_duration_ms = options.min_silence_duration_ms;
      o.speech_pad_ms = options.speech_pad_ms;
      auto found = vad::speech_timestamps(vad::faster_whisper_probabilities(model, samples),
                                          static_cast<std::int64_t>(samples.size()), o);
      for (const auto& s : found) {
        segments.emplace_back(boost::json::object{{"start", s.start}, {"end", s.end}});
      }
      out["samples"] = samples.size();
      out["speech"] = std::move(segments);  // in samples at 16 kHz
    }
    std::cout << boost::json::serialize(out) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

// A model file given by the user, or the catalog's, pulled into models/ when it is missing.
std::filesystem::path model_or_pull(const std::string& path, const std::string& default_path,
                                    const char* catalog_name) {
  if (path != default_path || std::filesystem::exists(path)) return path;
  PullOptions pull;
  pull.models_dir = std::filesystem::path(default_path).parent_path();
  if (::isatty(STDERR_FILENO))
    std::fprintf(stderr, "pulling %s into %s (once)\n", catalog_name, pull.models_dir.c_str());
  return pull_model(*find_catalog_model(catalog_name), pull);
}

int run_diarize(const DiarizeCommandOptions& options) {
  try {
    const DiarizeCommandOptions defaults;
    const speakers::SpeakerSegmentation segmentation(
        model_or_pull(options.segmentation, defaults.segmentation, "pyannote-segmentation-3.0"));
    const speakers::CamPlusPlus embedding(
        model_or_pull(options.embedding, defaults.embedding, "campplus-zh-en"));
    const speakers::Diarizer diarizer(segmentation, embedding);
    speakers::DiarizationOptions o;
    if (options.num_speakers > 0) o.num_speakers = options.num_speakers;
    o.min_speakers = options.min_speakers;
    o.max_speakers = options.max_speakers;
    o.threshold = static_cast<float>(options.threshold);
    o.step_seconds = options.step;
    for (const auto& path : options.audio) {
      std::ifstream in(path, std::ios::binary);
      if (!in) throw std::runtime_error("cannot read " + path);
      std::stringstream bytes;
      bytes << in.rdbuf();
      const std::vector<float> samples = audio::decode(bytes.str()).samples;
      const speakers::Diarization d = diarizer.diarize(samples, o);
      if (options.rttm) {
        const std::string uri = std::filesystem::path(path).stem().string();
        for (const auto& t : d.turns) {
          std::printf("SPEAKER %s 1 %.3f %.3f <NA> <NA> SPEAKER_%02d <NA> <NA>\n", uri.c_str(),
                      t.start, t.end - t.start, t.speaker);
        }
        continue;
      }
      boost::json::array turns;
      for (const auto& t : d.turns) {
        turns.emplace_back(
            boost::json::object{{"start", t.start}, {"end", t.end}, {"speaker", t.speaker}});
      }
      boost::json::object out{{"file", path},
                              {"duration", static_cast<double>(samples.size()) / 16000},
                              {"speakers", d.speakers},
                              {"turns", std::move(turns)}};
      std::cout << boost::json::serialize(out) << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int run_turn(const TurnCommandOptions& options) {
  try {
    vad::SmartTurn model(options.model);
    for (const auto& path : options.audio) {
      std::ifstream in(path, std::ios::binary);
      if (!in) throw std::runtime_error("cannot read " + path);
      std::stringstream bytes;
      bytes << in.rdbuf();
      std::vector<float> samples = audio::decode(bytes.str()).samples;
      boost::json::object out{{"file", path}, {"probability", model.probability(samples)}};
      if (options.features) {
        boost::json::array features;
        for (float v : vad::SmartTurn::features(samples)) features.emplace_back(v);
        out["features"] = std::move(features);
      }
      std::cout << boost::json::serialize(out) << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace sra::app
