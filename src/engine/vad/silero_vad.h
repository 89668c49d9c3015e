// SileroVad: the Silero VAD v5/v6 network for 16 kHz audio, run natively (no ONNX runtime) with
// the weights of either the silero-vad package's official silero_vad.onnx (f32, read from the
// model's constants: the same probabilities as onnxruntime gives, within 1e-5) or whisper.cpp's
// ggml file of it (ggml-silero-v6.2.0.bin: f16 convolutions and STFT basis, within 6e-3 of the
// official probabilities, 1e-4 on average). It computes
// what the official ONNX model computes, window by window: the 512 new samples after the last 64
// of the previous window (zeros before the first), reflect-padded by 64 on the right, a 256-point
// STFT by convolution (hop 128, four frames), magnitudes, four convolutions with ReLU (strides
// 1, 2, 2, 1), an LSTM cell carrying its state across windows, ReLU, a 1x1 convolution and a
// sigmoid: the probability that the window holds speech.
//
// The model is immutable after loading and may be shared by any number of threads; each stream
// of audio keeps its own SileroStream.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <vector>

#include "core/cancel.h"

namespace sra::vad {

inline constexpr int kSileroWindow = 512;  // samples per probability at 16 kHz (32 ms)
inline constexpr int kSileroContext = 64;  // samples of the previous window seen again

// The state one audio stream carries from window to window.
struct SileroStream {
  std::array<float, 128> h{};                   // LSTM hidden state
  std::array<float, 128> c{};                   // LSTM cell state
  std::array<float, kSileroContext> context{};  // the previous window's last samples
};

class SileroVad {
 public:
  // Reads a Silero file, either format. Throws sra::Error(config) naming the file for anything
  // else.
  explicit SileroVad(const std::filesystem::path& path);

  // The speech probability of the next 512 samples of a stream, updating its state.
  float process(const float* window, SileroStream& stream) const;
  // The probability of each 512-sample window of `samples` followed by zeros up to `length`
  // samples (a last partial window is padded with zeros too), from a fresh state. `cancel`, when
  // given, is checked every 512 windows.
  std::vector<float> probabilities(const std::vector<float>& samples, std::size_t length = 0,
                                   const CancelToken* cancel = nullptr) const;

 private:
  struct Conv {
    int in = 0, out = 0, stride = 1;
    std::vector<float> weight;  // [out][in][3]
    std::vector<float> bias;    // [out]
  };
  std::vector<float> basis_;  // [258][256]: 129 real rows, then 129 imaginary rows
  std::vector<Conv> encoder_;
  std::vector<float> w_ih_, w_hh_, b_ih_, b_hh_;  // [512][128], [512][128], [512], [512]
  std::vector<float> out_w_;                      // [128]
  float out_b_ = 0;
};

}  // namespace sra::vad
