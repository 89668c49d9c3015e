#include "engine/vad/smart_turn.h"

#include <cmath>

#include "core/errors.h"
#include "engine/whisper/mel.h"

namespace sra::vad {
namespace {

constexpr int kTurnMels = 80;
constexpr int kStftBins = whisper::kNFft / 2 + 1;  // 201

// Slaney's mel scale (librosa's default, and Hugging Face's "slaney").
double hz_to_mel(double hz) {
  constexpr double kMinLogHz = 1000.0, kMinLogMel = 15.0;
  const double log_step = 27.0 / std::log(6.4);
  return hz < kMinLogHz ? 3.0 * hz / 200.0 : kMinLogMel + std::log(hz / kMinLogHz) * log_step;
}
double mel_to_hz(double mel) {
  constexpr double kMinLogHz = 1000.0, kMinLogMel = 15.0;
  const double log_step = std::log(6.4) / 27.0;
  return mel < kMinLogMel ? 200.0 * mel / 3.0 : kMinLogHz * std::exp(log_step * (mel - kMinLogMel));
}

// 80 triangular filters over 0..8 kHz, area-normalised (Slaney): [80][201].
const std::vector<float>& mel_filters() {
  static const std::vector<float> filters = [] {
    std::vector<double> edges(kTurnMels + 2);
    const double lo = hz_to_mel(0.0), hi = hz_to_mel(8000.0);
    for (int k = 0; k < kTurnMels + 2; ++k)
      edges[k] = mel_to_hz(lo + (hi - lo) * k / (kTurnMels + 1));
    std::vector<float> f(static_cast<std::size_t>(kTurnMels) * kStftBins);
    for (int m = 0; m < kTurnMels; ++m) {
      const double norm = 2.0 / (edges[m + 2] - edges[m]);
      for (int b = 0; b < kStftBins; ++b) {
        const double hz = 8000.0 * b / (kStftBins - 1);
        const double down = (hz - edges[m]) / (edges[m + 1] - edges[m]);
        const double up = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1]);
        f[static_cast<std::size_t>(m) * kStftBins + b] =
            static_cast<float>(std::max(0.0, std::min(down, up)) * norm);
      }
    }
    return f;
  }();
  return filters;
}

}  // namespace

SmartTurn::SmartTurn(const std::filesystem::path& path) : graph_(path) {
  if (graph_.input_names().size() != 1 || graph_.output_names().size() != 1) {
    throw config_error("turn model " + path.string() +
                       " is not a smart-turn v3 model (one input, one output)");
  }
}

std::vector<float> SmartTurn::features(const std::vector<float>& samples) {
  // The last 8 s, zeros before a shorter clip.
  std::vector<float> audio(kSmartTurnSamples, 0.0f);
  const std::size_t n = std::min<std::size_t>(samples.size(), kSmartTurnSamples);
  std::copy(samples.end() - static_cast<std::ptrdiff_t>(n), samples.end(),
            audio.end() - static_cast<std::ptrdiff_t>(n));
  // Zero mean, unit variance (Hugging Face's do_normalize: variance plus 1e-7).
  double mean = 0, var = 0;
  for (float v : audio) mean += v;
  mean /= kSmartTurnSamples;
  for (float v : audio) var += (v - mean) * (v - mean);
  var /= kSmartTurnSamples;
  const double scale = 1.0 / std::sqrt(var + 1e-7);
  for (float& v : audio) v = static_cast<float>((v - mean) * scale);
  whisper::Mel mel = whisper::log_mel_spectrogram(audio, 0, mel_filters(), kTurnMels);
  return std::move(mel.data);
}

float SmartTurn::probability(const std::vector<float>& samples) const {
  onnx::Tensor input;
  input.shape = {1, kTurnMels, kSmartTurnFrames};
  input.f = features(samples);
  if (input.f.size() != static_cast<std::size_t>(kTurnMels) * kSmartTurnFrames) {
    throw internal_error("smart-turn features are not 80 x 800");
  }
  auto out = graph_.run({{graph_.input_names()[0], std::move(input)}});
  const onnx::Tensor& p = out.at(graph_.output_names()[0]);
  if (p.type != onnx::DType::f32 || p.f.size() != 1) {
    throw internal_error("smart-turn gave no single probability");
  }
  return p.f[0];
}

}  // namespace sra::vad
