#include "models/pocketsphinx_model.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/errors.h"

namespace sra {
namespace {

struct DecoderDeleter {
  void operator()(ps_decoder_t* d) const { ps_free(d); }
};
using Decoder = std::unique_ptr<ps_decoder_t, DecoderDeleter>;

void require_file(const char* variable, const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw config_error(std::string(variable) + "=" + path +
                       " does not exist (install Debian's pocketsphinx-en-us or set " + variable +
                       ")");
  }
}

// Splits [0, n) into pieces of at most `max_len` samples, each cut at the quietest 20 ms frame of
// the last quarter of the piece, so that words are rarely cut.
std::vector<std::pair<std::size_t, std::size_t>> chunk_bounds(const std::vector<float>& x,
                                                              std::size_t max_len) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  constexpr std::size_t frame = kSampleRate / 50;
  std::size_t start = 0;
  while (start < x.size()) {
    if (x.size() - start <= max_len) {
      out.emplace_back(start, x.size());
      break;
    }
    std::size_t search_from = start + max_len * 3 / 4;
    std::size_t best = start + max_len;
    double best_energy = INFINITY;
    for (std::size_t f = search_from; f + frame <= start + max_len; f += frame) {
      double e = 0;
      for (std::size_t i = f; i < f + frame; ++i) e += static_cast<double>(x[i]) * x[i];
      if (e < best_energy) {
        best_energy = e;
        best = f + frame / 2;
      }
    }
    out.emplace_back(start, best);
    start = best;
  }
  return out;
}

class PocketSphinxModel final : public Model {
 public:
  explicit PocketSphinxModel(PocketSphinxOptions options) : options_(std::move(options)) {
    require_file("POCKETSPHINX_HMM", options_.hmm_dir + "/mdef");
    require_file("POCKETSPHINX_LM", options_.language_model);
    require_file("POCKETSPHINX_DICT", options_.dictionary);
    release(create_decoder());  // fail at construction, not on the first request
  }

  // Its acoustic and language models are English (the default ones; a user's own may differ).
  std::vector<std::string> languages() const override { return {"en"}; }

  Transcription transcribe(const AudioBuffer& audio, const TranscribeOptions& options) override {
    Decoder decoder = acquire();
    Transcription result;
    result.language = "en";
    result.duration = audio.seconds();
    std::vector<std::int16_t> pcm;
    auto max_len = static_cast<std::size_t>(options_.chunk_seconds * kSampleRate);
    for (auto [begin, end] : chunk_bounds(audio.samples, std::max<std::size_t>(max_len, 1600))) {
      if (options.cancel) options.cancel->check();  // per piece: a cancelled job stops soon
      pcm.resize(end - begin);
      for (std::size_t i = begin; i < end; ++i) {
        float v = std::clamp(audio.samples[i], -1.0f, 1.0f);
        pcm[i - begin] = static_cast<std::int16_t>(std::lrint(v * 32767.0f));
      }
      if (ps_start_utt(decoder.get()) < 0 ||
          ps_process_raw(decoder.get(), pcm.data(), pcm.size(), FALSE, TRUE) < 0 ||
          ps_end_utt(decoder.get()) < 0) {
        throw internal_error("PocketSphinx failed to decode the audio");
      }
      std::int32_t score = 0;
      const char* hyp = ps_get_hyp(decoder.get(), &score);
      std::string text = hyp ? hyp : "";
      if (text.empty()) continue;
      Segment segment;
      segment.id = static_cast<int>(result.segments.size());
      segment.seek = static_cast<std::int64_t>(begin / (kSampleRate / 100));
      segment.start = static_cast<double>(begin) / kSampleRate;
      segment.end = static_cast<double>(end) / kSampleRate;
      segment.text = text;
      result.text += (result.text.empty() ? "" : " ") + text;
      if (options.on_segment) options.on_segment(segment);
      result.segments.push_back(std::move(segment));
    }
    release(std::move(decoder));
    return result;
  }

 private:
  // ps_init is not thread-safe: it touches the library's process-wide state (the log stream that
  // "-logfn" would reopen and close, the configuration parser), so decoders are made one at a time
  // and logging is switched off once, in make_pocketsphinx_model, never per decoder.
  Decoder create_decoder() {
    static std::mutex creating;
    std::lock_guard lock(creating);
    cmd_ln_t* config =
        cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", options_.hmm_dir.c_str(), "-lm",
                    options_.language_model.c_str(), "-dict", options_.dictionary.c_str(), nullptr);
    if (!config) throw config_error("PocketSphinx rejected its configuration (POCKETSPHINX_*)");
    Decoder decoder(ps_init(config));
    cmd_ln_free_r(config);
    if (!decoder) {
      throw config_error("PocketSphinx could not load its model from POCKETSPHINX_HMM=" +
                         options_.hmm_dir);
    }
    return decoder;
  }

  Decoder acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        Decoder d = std::move(idle_.back());
        idle_.pop_back();
        return d;
      }
    }
    return create_decoder();
  }

  void release(Decoder decoder) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(decoder));
  }

  PocketSphinxOptions options_;
  std::mutex mutex_;
  std::vector<Decoder> idle_;
};

}  // namespace

PocketSphinxOptions pocketsphinx_options_from(const Config& config) {
  PocketSphinxOptions o;
  o.hmm_dir = config.get_string("POCKETSPHINX_HMM");
  o.language_model = config.get_string("POCKETSPHINX_LM");
  o.dictionary = config.get_string("POCKETSPHINX_DICT");
  o.chunk_seconds = config.get_double("POCKETSPHINX_CHUNK_SECONDS");
  return o;
}

std::unique_ptr<Model> make_pocketsphinx_model(const PocketSphinxOptions& options) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { err_set_logfp(nullptr); });
  return std::make_unique<PocketSphinxModel>(options);
}

}  // namespace sra
