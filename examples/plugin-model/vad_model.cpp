// An example plugin model: instead of words, it reports where in the audio someone speaks, found
// by short-time energy ("[speech 0.52-2.31] [speech 3.10-4.02]"). It shows everything a real
// third-party model needs: the entry points of plugin_api.h, its own prefixed variables
// (VAD_MODEL_THRESHOLD_DB, VAD_MODEL_MIN_SILENCE_SECONDS), config errors that name the variable,
// and a transcribe() that is safe to call from many threads (it keeps no mutable state).
//
// Build: part of this project's build (target sra_example_vad_model); out of tree, compile it
// with the same compiler against this project's src/ headers:
//   g++ -std=c++20 -shared -fPIC -I<repo>/src vad_model.cpp -o libsra_vad_model.so
// Use:   MODEL=/path/to/libsra_vad_model.so speech-recognition-api serve
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/plugin_api.h"

namespace {

class VadModel final : public sra::Model {
 public:
  VadModel(double threshold_db, double min_silence)
      : threshold_db_(threshold_db), min_silence_(min_silence) {}

  sra::Transcription transcribe(const sra::AudioBuffer& audio,
                                const sra::TranscribeOptions&) override {
    constexpr std::size_t frame = sra::kSampleRate / 100;  // 10 ms
    const std::size_t frames = audio.samples.size() / frame;
    double peak = 1e-10;
    std::vector<double> energy(frames);
    for (std::size_t f = 0; f < frames; ++f) {
      double e = 0;
      for (std::size_t i = 0; i < frame; ++i) {
        double s = audio.samples[f * frame + i];
        e += s * s;
      }
      energy[f] = e / frame;
      peak = std::max(peak, energy[f]);
    }
    sra::Transcription out;
    out.duration = audio.seconds();
    const double floor = peak * std::pow(10.0, threshold_db_ / 10.0);
    const auto gap = static_cast<std::size_t>(min_silence_ * 100);
    std::size_t f = 0;
    while (f < frames) {
      while (f < frames && energy[f] < floor) ++f;
      if (f == frames) break;
      std::size_t start = f, last = f, quiet = 0;
      for (; f < frames && quiet <= gap; ++f) {
        if (energy[f] >= floor) {
          last = f;
          quiet = 0;
        } else {
          ++quiet;
        }
      }
      sra::Segment s;
      s.id = static_cast<int>(out.segments.size());
      s.start = start / 100.0;
      s.end = (last + 1) / 100.0;
      char text[64];
      std::snprintf(text, sizeof text, "[speech %.2f-%.2f]", s.start, s.end);
      s.text = text;
      out.text += (out.text.empty() ? "" : " ") + s.text;
      out.segments.push_back(std::move(s));
    }
    return out;
  }

 private:
  double threshold_db_;
  double min_silence_;
};

}  // namespace

extern "C" std::uint32_t sra_plugin_abi_version() {
  return SRA_PLUGIN_ABI_VERSION;
}

// This plugin's own variables, declared once: the service's getters take their defaults and
// bounds from here.
constexpr sra::Setting kThresholdDb{.name = "VAD_MODEL_THRESHOLD_DB",
                                    .type = sra::SettingType::number,
                                    .default_value = "-35",
                                    .doc = "loudness (dBFS) from which a 10 ms frame is speech",
                                    .min = -120,
                                    .max = 0};
constexpr sra::Setting kMinSilence{.name = "VAD_MODEL_MIN_SILENCE_SECONDS",
                                   .type = sra::SettingType::number,
                                   .default_value = "0.3",
                                   .doc = "silence that ends a stretch of speech",
                                   .min = 0.01,
                                   .max = 10};

extern "C" sra::Model* sra_create_model(const sra::Config* config) {
  return new VadModel(config->get_double(kThresholdDb), config->get_double(kMinSilence));
}
