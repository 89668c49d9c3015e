#include "engine/whisper/mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <thread>

namespace sra::whisper {
namespace {

using Complex = std::complex<double>;

// Mixed-radix FFT of n = 2^a * m points (400 = 2^4 * 25): halves even sizes and ends in a direct
// DFT of the odd part, with all twiddles precomputed. Double precision, so that the spectrum
// matches PyTorch's to about 1e-7. Immutable after construction.
class Fft {
 public:
  explicit Fft(std::size_t n) : n_(n) {
    std::size_t m = n;
    while (m % 2 == 0) {
      std::vector<Complex> tw(m / 2);
      for (std::size_t k = 0; k < m / 2; ++k) tw[k] = std::polar(1.0, -2.0 * M_PI * k / m);
      twiddles_.push_back(std::move(tw));
      m /= 2;
    }
    odd_ = m;
    dft_.resize(m * m);
    for (std::size_t k = 0; k < m; ++k) {
      for (std::size_t t = 0; t < m; ++t)
        dft_[k * m + t] = std::polar(1.0, -2.0 * M_PI * (k * t % m) / m);
    }
  }

  void run(const Complex* in, Complex* out) const { step(in, 1, n_, 0, out); }

 private:
  void step(const Complex* in, std::size_t stride, std::size_t n, std::size_t level,
            Complex* out) const {
    if (n == odd_) {
      for (std::size_t k = 0; k < n; ++k) {
        Complex sum = 0;
        const Complex* row = dft_.data() + k * n;
        for (std::size_t t = 0; t < n; ++t) sum += in[t * stride] * row[t];
        out[k] = sum;
      }
      return;
    }
    std::size_t h = n / 2;
    step(in, 2 * stride, h, level + 1, out);
    step(in + stride, 2 * stride, h, level + 1, out + h);
    const std::vector<Complex>& tw = twiddles_[level];
    for (std::size_t k = 0; k < h; ++k) {
      Complex e = out[k];
      Complex o = tw[k] * out[k + h];
      out[k] = e + o;
      out[k + h] = e - o;
    }
  }

  std::size_t n_;
  std::size_t odd_ = 1;
  std::vector<std::vector<Complex>> twiddles_;
  std::vector<Complex> dft_;
};

}  // namespace

Mel log_mel_spectrogram(const std::vector<float>& samples, int padding,
                        const std::vector<float>& filters, int n_mels, int threads) {
  const int n_bins = kNFft / 2 + 1;
  const std::size_t n_samples = samples.size() + static_cast<std::size_t>(padding);
  // torch.stft(center=True) reflect-pads n_fft/2 on each side; the last frame is dropped.
  const int n_frames = static_cast<int>(n_samples / kHopLength);
  const int half = kNFft / 2;
  auto sample_at = [&](std::int64_t i) -> double {
    // Reflect at both ends of the padded signal (no repeat of the edge sample).
    const auto n = static_cast<std::int64_t>(n_samples);
    if (n == 1) return samples.empty() ? 0.0 : samples[0];
    while (i < 0 || i >= n) {
      if (i < 0) i = -i;
      if (i >= n) i = 2 * (n - 1) - i;
    }
    return static_cast<std::size_t>(i) < samples.size() ? samples[static_cast<std::size_t>(i)]
                                                        : 0.0;
  };

  std::vector<double> window(kNFft);
  for (int i = 0; i < kNFft; ++i) window[i] = 0.5 * (1.0 - std::cos(2.0 * M_PI * i / kNFft));

  Mel mel;
  mel.n_mels = n_mels;
  mel.n_frames = n_frames;
  mel.data.assign(static_cast<std::size_t>(n_mels) * n_frames, 0.0f);
  std::vector<double> log_values(mel.data.size());

  // Never destroyed: a transcription still running on another thread while the process exits
  // must not see it freed.
  static const Fft& fft = *new Fft(kNFft);
  auto work = [&](int first, int last) {
    std::vector<Complex> in(kNFft), out(kNFft);
    std::vector<double> power(n_bins);
    for (int f = first; f < last; ++f) {
      std::int64_t start = static_cast<std::int64_t>(f) * kHopLength - half;
      bool silent = true;
      for (int i = 0; i < kNFft; ++i) {
        in[i] = sample_at(start + i) * window[i];
        silent = silent && in[i] == Complex(0.0);
      }
      if (silent) {  // the padding's frames: zero power in every bin, so log10(1e-10) in each
        for (int m = 0; m < n_mels; ++m)
          log_values[static_cast<std::size_t>(m) * n_frames + f] = std::log10(1e-10);
        continue;
      }
      fft.run(in.data(), out.data());
      for (int b = 0; b < n_bins; ++b) power[b] = std::norm(out[b]);
      for (int m = 0; m < n_mels; ++m) {
        const float* row = filters.data() + static_cast<std::size_t>(m) * n_bins;
        double sum = 0;
        for (int b = 0; b < n_bins; ++b) sum += static_cast<double>(row[b]) * power[b];
        log_values[static_cast<std::size_t>(m) * n_frames + f] = std::log10(std::max(sum, 1e-10));
      }
    }
  };
  threads = std::clamp(threads, 1, 64);
  if (threads == 1 || n_frames < 200) {
    work(0, n_frames);
  } else {
    std::vector<std::thread> pool;
    int per = (n_frames + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      int a = t * per, b = std::min(n_frames, a + per);
      if (a < b) pool.emplace_back(work, a, b);
    }
    for (auto& t : pool) t.join();
  }

  double max_value = -1e30;
  for (double v : log_values) max_value = std::max(max_value, v);
  for (std::size_t i = 0; i < log_values.size(); ++i) {
    double v = std::max(log_values[i], max_value - 8.0);
    mel.data[i] = static_cast<float>((v + 4.0) / 4.0);
  }
  return mel;
}

Mel mel_window(const Mel& mel, int start, int count, int frames) {
  Mel out;
  out.n_mels = mel.n_mels;
  out.n_frames = frames;
  out.data.assign(static_cast<std::size_t>(mel.n_mels) * frames, 0.0f);
  start = std::clamp(start, 0, mel.n_frames);  // never before or past the buffer
  int n = std::clamp(std::min(count, mel.n_frames - start), 0, frames);
  for (int m = 0; m < mel.n_mels; ++m) {
    const float* src = mel.data.data() + static_cast<std::size_t>(m) * mel.n_frames + start;
    std::copy(src, src + n, out.data.data() + static_cast<std::size_t>(m) * frames);
  }
  return out;
}

std::vector<float> pad_or_trim(const std::vector<float>& samples, int length) {
  std::vector<float> out(samples.begin(),
                         samples.begin() + std::min<std::size_t>(samples.size(), length));
  out.resize(static_cast<std::size_t>(length), 0.0f);
  return out;
}

}  // namespace sra::whisper
