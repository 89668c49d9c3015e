// SmartTurn: Pipecat's smart-turn v3 end-of-turn model (a Whisper-tiny-sized encoder with an
// attention-pooled classifier, 8 s of audio in, the probability that the speaker has finished),
// run natively on its ONNX file (smart-turn-v3.2-cpu.onnx: int8 weights, activations quantized
// between layers) by onnx::OnnxGraph: no ONNX runtime in the product.
//
// The input is what Pipecat gives it: the last 8 s of 16 kHz audio (zeros before a shorter one),
// normalised to zero mean and unit variance, as Whisper's 80-bin log-mel (Hugging Face's
// WhisperFeatureExtractor, the same numbers as OpenAI's log_mel_spectrogram with Slaney mel
// filters). The result equals onnxruntime's within the tolerance its test states.
//
// Immutable after loading; probability() may be called from several threads at once.
#pragma once

#include <filesystem>
#include <vector>

#include "engine/onnx/onnx_graph.h"

namespace sra::vad {

inline constexpr int kSmartTurnSamples = 8 * 16000;  // the audio the model hears
inline constexpr int kSmartTurnFrames = 800;         // its mel frames

class SmartTurn {
 public:
  // Reads the ONNX file. Throws sra::Error(config) naming it when it is not a smart-turn v3 model.
  explicit SmartTurn(const std::filesystem::path& path);

  // The probability that the turn has ended, from the audio so far (16 kHz mono; only the last
  // 8 s count).
  float probability(const std::vector<float>& samples) const;

  // The model's input for `samples`: 80 x 800 log-mel, row-major.
  static std::vector<float> features(const std::vector<float>& samples);

 private:
  onnx::OnnxGraph graph_;
};

}  // namespace sra::vad
