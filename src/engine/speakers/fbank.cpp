#include "engine/speakers/fbank.h"

#include <cmath>
#include <complex>
#include <limits>
#include <numbers>

namespace sra::speakers {
namespace {

constexpr int kFft = 512;
constexpr float kPreemphasis = 0.97f;

// In-place radix-2 FFT of 512 complex values (double precision).
void fft512(std::complex<double>* x) {
  for (int i = 1, j = 0; i < kFft; ++i) {
    int bit = kFft >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(x[i], x[j]);
  }
  for (int len = 2; len <= kFft; len <<= 1) {
    const double angle = -2 * std::numbers::pi / len;
    const std::complex<double> step(std::cos(angle), std::sin(angle));
    for (int i = 0; i < kFft; i += len) {
      std::complex<double> w(1, 0);
      for (int k = 0; k < len / 2; ++k) {
        const std::complex<double> u = x[i + k], v = x[i + k + len / 2] * w;
        x[i + k] = u + v;
        x[i + k + len / 2] = u - v;
        w *= step;
      }
    }
  }
}

double kaldi_mel(double hz) {
  return 1127.0 * std::log(1.0 + hz / 700.0);
}

// Triangular filters [bins][257] (the Nyquist bin's weight 0), as torchaudio's get_mel_banks.
std::vector<float> mel_banks(int bins) {
  constexpr int fft_bins = kFft / 2;
  const double bin_width = 16000.0 / kFft;
  const double low = kaldi_mel(20.0), high = kaldi_mel(8000.0);
  const double delta = (high - low) / (bins + 1);
  std::vector<float> banks(static_cast<std::size_t>(bins) * (fft_bins + 1), 0.0f);
  for (int b = 0; b < bins; ++b) {
    const float left = static_cast<float>(low + b * delta);
    const float center = static_cast<float>(low + (b + 1) * delta);
    const float right = static_cast<float>(low + (b + 2) * delta);
    for (int k = 0; k < fft_bins; ++k) {
      const float mel = static_cast<float>(kaldi_mel(bin_width * k));
      const float up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      banks[static_cast<std::size_t>(b) * (fft_bins + 1) + k] = std::max(0.0f, std::min(up, down));
    }
  }
  return banks;
}

}  // namespace

int fbank_frames(int samples) {
  return samples < kFbankLength ? 0 : 1 + (samples - kFbankLength) / kFbankShift;
}

std::vector<float> kaldi_fbank(const float* samples, int count, int bins) {
  const int frames = fbank_frames(count);
  static const std::vector<float> banks80 = mel_banks(80);
  const std::vector<float> other = bins == 80 ? std::vector<float>{} : mel_banks(bins);
  const std::vector<float>& banks = bins == 80 ? banks80 : other;
  std::vector<float> window(kFbankLength);
  for (int i = 0; i < kFbankLength; ++i) {  // Povey: a Hann window to the power 0.85
    const double hann = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / (kFbankLength - 1));
    window[i] = static_cast<float>(std::pow(hann, 0.85));
  }
  const float floor = std::numeric_limits<float>::epsilon();
  std::vector<float> out(static_cast<std::size_t>(frames) * bins);
  std::vector<float> frame(kFbankLength);
  std::vector<std::complex<double>> spectrum(kFft);
  std::vector<float> power(kFft / 2 + 1);
  for (int f = 0; f < frames; ++f) {
    const float* x = samples + static_cast<std::size_t>(f) * kFbankShift;
    float mean = 0;
    for (int i = 0; i < kFbankLength; ++i) mean += x[i];
    mean /= kFbankLength;
    for (int i = 0; i < kFbankLength; ++i) frame[i] = x[i] - mean;
    for (int i = kFbankLength - 1; i > 0; --i) frame[i] -= kPreemphasis * frame[i - 1];
    frame[0] -= kPreemphasis * frame[0];
    for (int i = 0; i < kFft; ++i)
      spectrum[i] = i < kFbankLength ? std::complex<double>(frame[i] * window[i], 0) : 0.0;
    fft512(spectrum.data());
    for (int k = 0; k <= kFft / 2; ++k) power[k] = static_cast<float>(std::norm(spectrum[k]));
    float* o = out.data() + static_cast<std::size_t>(f) * bins;
    for (int b = 0; b < bins; ++b) {
      const float* w = banks.data() + static_cast<std::size_t>(b) * (kFft / 2 + 1);
      float energy = 0;
      for (int k = 0; k <= kFft / 2; ++k) energy += w[k] * power[k];
      o[b] = std::log(std::max(energy, floor));
    }
  }
  return out;
}

void subtract_mean(std::vector<float>& features, int bins) {
  const std::size_t frames = features.size() / static_cast<std::size_t>(bins);
  if (frames == 0) return;
  for (int b = 0; b < bins; ++b) {
    double sum = 0;
    for (std::size_t f = 0; f < frames; ++f) sum += features[f * bins + b];
    const float mean = static_cast<float>(sum / static_cast<double>(frames));
    for (std::size_t f = 0; f < frames; ++f) features[f * bins + b] -= mean;
  }
}

}  // namespace sra::speakers
