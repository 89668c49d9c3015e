// AudioBuffer: decoded audio as every model receives it: mono float samples in [-1, 1] at
// 16 kHz. A plain value; the decoder (src/audio) produces it, models only read it.
#pragma once

#include <vector>

namespace sra {

inline constexpr int kSampleRate = 16000;

struct AudioBuffer {
  std::vector<float> samples;  // mono, kSampleRate samples per second
  double seconds() const { return static_cast<double>(samples.size()) / kSampleRate; }
};

}  // namespace sra
