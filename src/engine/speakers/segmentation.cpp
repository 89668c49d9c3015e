#include "engine/speakers/segmentation.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/errors.h"
#include "engine/torch/torch_checkpoint.h"
#include "engine/whisper/blas.h"
#include "engine/whisper/kernels.h"

namespace sra::speakers {
namespace {

constexpr int kSincFilters = 80, kSincKernel = 251, kSincStride = 10;
constexpr int kHidden = 128, kGates = 4 * kHidden, kLstmLayers = 4;
constexpr float kNormEps = 1e-5f, kLeakySlope = 0.01f;

std::vector<float> copy_of(const torch::Tensor& t) {
  return t.values;
}

// asteroid-filterbanks' ParamSincFB (as pyannote's SincNet configures it: 80 filters of 251 taps,
// min_low_hz 50, min_band_hz 50): 40 band-pass filters from learned low and band frequencies,
// as cosine (even) and sine (odd) pairs, Hamming-windowed; computed in float32 as PyTorch does.
std::vector<float> sinc_filters(const torch::TorchCheckpoint& c) {
  const auto& low_hz = c.get("sincnet.conv1d.0.filterbank.low_hz_", {40, 1}).values;
  const auto& band_hz = c.get("sincnet.conv1d.0.filterbank.band_hz_", {40, 1}).values;
  const auto& window = c.get("sincnet.conv1d.0.filterbank.window_", {125}).values;
  const auto& n = c.get("sincnet.conv1d.0.filterbank.n_", {1, 125}).values;
  constexpr int half = kSincKernel / 2, bands = kSincFilters / 2;
  std::vector<float> filters(static_cast<std::size_t>(kSincFilters) * kSincKernel);
  for (int b = 0; b < bands; ++b) {
    const float low = 50.0f + std::fabs(low_hz[b]);
    const float high = std::clamp(low + 50.0f + std::fabs(band_hz[b]), 50.0f, 8000.0f);
    const float band = high - low;
    float* cos_filter = filters.data() + static_cast<std::size_t>(b) * kSincKernel;
    float* sin_filter = filters.data() + static_cast<std::size_t>(b + bands) * kSincKernel;
    for (int i = 0; i < half; ++i) {
      const float ft_low = low * n[i], ft_high = high * n[i];
      const float left_cos = ((std::sin(ft_high) - std::sin(ft_low)) / (n[i] / 2)) * window[i];
      const float left_sin = ((std::cos(ft_low) - std::cos(ft_high)) / (n[i] / 2)) * window[i];
      cos_filter[i] = left_cos / (2 * band);
      cos_filter[kSincKernel - 1 - i] = left_cos / (2 * band);
      sin_filter[i] = left_sin / (2 * band);
      sin_filter[kSincKernel - 1 - i] = -left_sin / (2 * band);
    }
    cos_filter[half] = 2 * band / (2 * band);
    sin_filter[half] = 0;
  }
  return filters;
}

// x[t][c] for t < frames, c < channels: max over 3 frames, stride 3.
std::vector<float> max_pool3(const std::vector<float>& x, int frames, int channels, int* out) {
  *out = frames / 3;
  std::vector<float> y(static_cast<std::size_t>(*out) * channels);
  for (int t = 0; t < *out; ++t) {
    const float* a = x.data() + static_cast<std::size_t>(3 * t) * channels;
    float* o = y.data() + static_cast<std::size_t>(t) * channels;
    for (int c = 0; c < channels; ++c)
      o[c] = std::max(a[c], std::max(a[c + channels], a[c + 2 * channels]));
  }
  return y;
}

// InstanceNorm1d (per channel over time, biased variance, eps 1e-5) with its affine parameters,
// then leaky ReLU (0.01); in place on [frames][channels].
void norm_leaky(std::vector<float>& x, int frames, int channels, const std::vector<float>& gamma,
                const std::vector<float>& beta) {
  for (int c = 0; c < channels; ++c) {
    double sum = 0, squares = 0;
    for (int t = 0; t < frames; ++t) sum += x[static_cast<std::size_t>(t) * channels + c];
    const double mean = sum / frames;
    for (int t = 0; t < frames; ++t) {
      const double d = x[static_cast<std::size_t>(t) * channels + c] - mean;
      squares += d * d;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(squares / frames + kNormEps));
    for (int t = 0; t < frames; ++t) {
      float& v = x[static_cast<std::size_t>(t) * channels + c];
      v = (v - static_cast<float>(mean)) * inv * gamma[c] + beta[c];
      if (v < 0) v *= kLeakySlope;
    }
  }
}

}  // namespace

SpeakerSegmentation::SpeakerSegmentation(const std::filesystem::path& checkpoint) {
  const torch::TorchCheckpoint c(checkpoint);
  wav_norm_weight_ = c.get("sincnet.wav_norm1d.weight", {1}).values[0];
  wav_norm_bias_ = c.get("sincnet.wav_norm1d.bias", {1}).values[0];
  sinc_filters_ = sinc_filters(c);
  auto conv = [&](const std::string& name, int in, int out) {
    Conv v;
    v.in = in, v.out = out, v.kernel = 5;
    v.weight = copy_of(c.get(name + ".weight", {out, in, 5}));
    v.bias = copy_of(c.get(name + ".bias", {out}));
    return v;
  };
  conv2_ = conv("sincnet.conv1d.1", kSincFilters, 60);
  conv3_ = conv("sincnet.conv1d.2", 60, 60);
  const int widths[3] = {kSincFilters, 60, 60};
  for (int i = 0; i < 3; ++i) {
    const std::string name = "sincnet.norm1d." + std::to_string(i);
    norms_[i].weight = copy_of(c.get(name + ".weight", {widths[i]}));
    norms_[i].bias = copy_of(c.get(name + ".bias", {widths[i]}));
  }
  for (int layer = 0; layer < kLstmLayers; ++layer) {
    const int in = layer == 0 ? 60 : 2 * kHidden;
    for (const char* suffix : {"", "_reverse"}) {
      const std::string tail = "_l" + std::to_string(layer) + suffix;
      LstmDirection d;
      d.w_ih = copy_of(c.get("lstm.weight_ih" + tail, {kGates, in}));
      const auto& w_hh = c.get("lstm.weight_hh" + tail, {kGates, kHidden}).values;
      d.w_hh_t.resize(w_hh.size());
      for (int g = 0; g < kGates; ++g)
        for (int k = 0; k < kHidden; ++k)
          d.w_hh_t[static_cast<std::size_t>(k) * kGates + g] =
              w_hh[static_cast<std::size_t>(g) * kHidden + k];
      d.bias = copy_of(c.get("lstm.bias_ih" + tail, {kGates}));
      const auto& b_hh = c.get("lstm.bias_hh" + tail, {kGates}).values;
      for (int g = 0; g < kGates; ++g) d.bias[g] += b_hh[g];
      lstm_.push_back(std::move(d));
    }
  }
  auto linear = [&](const std::string& name, int in, int out) {
    Linear l;
    l.in = in, l.out = out;
    l.weight = copy_of(c.get(name + ".weight", {out, in}));
    l.bias = copy_of(c.get(name + ".bias", {out}));
    return l;
  };
  linear_.push_back(linear("linear.0", 2 * kHidden, kHidden));
  linear_.push_back(linear("linear.1", kHidden, kHidden));
  linear_.push_back(linear("classifier", kHidden, kPowersetClasses));
}

int SpeakerSegmentation::frames(int samples) {
  if (samples < kSincKernel) return 0;
  int t = (samples - kSincKernel) / kSincStride + 1;  // sinc convolution
  t /= 3;                                             // pooling
  t = t >= 5 ? (t - 4) / 3 : 0;                       // convolution, pooling
  t = t >= 5 ? (t - 4) / 3 : 0;
  return t;
}

std::vector<float> SpeakerSegmentation::forward(const float* samples, int count) const {
  const int out_frames = frames(count);
  if (out_frames <= 0) return {};
  // Instance norm of the waveform.
  double sum = 0, squares = 0;
  for (int i = 0; i < count; ++i) sum += samples[i];
  const double mean = sum / count;
  for (int i = 0; i < count; ++i) squares += (samples[i] - mean) * (samples[i] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(squares / count + kNormEps));
  std::vector<float> wave(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    wave[i] = (samples[i] - static_cast<float>(mean)) * inv * wav_norm_weight_ + wav_norm_bias_;

  // Sinc convolution, |.|, pooling, norm: [t1][80], computed in blocks of rows (im2col).
  const int t1 = (count - kSincKernel) / kSincStride + 1;
  std::vector<float> x(static_cast<std::size_t>(t1) * kSincFilters);
  {
    constexpr int block = 512;
    std::vector<float> columns(static_cast<std::size_t>(block) * kSincKernel);
    for (int t0 = 0; t0 < t1; t0 += block) {
      const int rows = std::min(block, t1 - t0);
      for (int r = 0; r < rows; ++r)
        std::copy_n(wave.data() + static_cast<std::size_t>(t0 + r) * kSincStride, kSincKernel,
                    columns.data() + static_cast<std::size_t>(r) * kSincKernel);
      whisper::sgemm(true, rows, kSincFilters, kSincKernel, 1.0f, columns.data(), kSincKernel,
                     sinc_filters_.data(), kSincKernel, 0.0f,
                     x.data() + static_cast<std::size_t>(t0) * kSincFilters, kSincFilters);
    }
    for (float& v : x) v = std::fabs(v);
  }
  int t = 0;
  x = max_pool3(x, t1, kSincFilters, &t);
  norm_leaky(x, t, kSincFilters, norms_[0].weight, norms_[0].bias);

  // Two convolutions of 5 taps, each pooled and normalised.
  auto convolve = [](const std::vector<float>& in, int frames, const Conv& conv, int* out_frames) {
    const int n = frames - conv.kernel + 1;
    *out_frames = n;
    std::vector<float> columns(static_cast<std::size_t>(n) * conv.in * conv.kernel);
    for (int r = 0; r < n; ++r) {
      float* row = columns.data() + static_cast<std::size_t>(r) * conv.in * conv.kernel;
      for (int c = 0; c < conv.in; ++c)
        for (int k = 0; k < conv.kernel; ++k)
          row[c * conv.kernel + k] = in[static_cast<std::size_t>(r + k) * conv.in + c];
    }
    std::vector<float> out(static_cast<std::size_t>(n) * conv.out);
    for (int r = 0; r < n; ++r)
      std::copy(conv.bias.begin(), conv.bias.end(),
                out.begin() + static_cast<std::ptrdiff_t>(r) * conv.out);
    whisper::sgemm(true, n, conv.out, conv.in * conv.kernel, 1.0f, columns.data(),
                   conv.in * conv.kernel, conv.weight.data(), conv.in * conv.kernel, 1.0f,
                   out.data(), conv.out);
    return out;
  };
  int n = 0;
  x = convolve(x, t, conv2_, &n);
  x = max_pool3(x, n, conv2_.out, &t);
  norm_leaky(x, t, conv2_.out, norms_[1].weight, norms_[1].bias);
  x = convolve(x, t, conv3_, &n);
  x = max_pool3(x, n, conv3_.out, &t);
  norm_leaky(x, t, conv3_.out, norms_[2].weight, norms_[2].bias);
  if (t != out_frames) throw internal_error("segmentation: frame count mismatch");

  // Bidirectional LSTM, 4 layers: [t][60] -> [t][256].
  int width = conv3_.out;
  std::vector<float> gates(static_cast<std::size_t>(t) * kGates);
  for (int layer = 0; layer < kLstmLayers; ++layer) {
    std::vector<float> next(static_cast<std::size_t>(t) * 2 * kHidden);
    for (int direction = 0; direction < 2; ++direction) {
      const LstmDirection& d = lstm_[static_cast<std::size_t>(2 * layer + direction)];
      for (int r = 0; r < t; ++r)
        std::copy(d.bias.begin(), d.bias.end(),
                  gates.begin() + static_cast<std::ptrdiff_t>(r) * kGates);
      whisper::sgemm(true, t, kGates, width, 1.0f, x.data(), width, d.w_ih.data(), width, 1.0f,
                     gates.data(), kGates);
      std::vector<float> h(kHidden, 0.0f), cell(kHidden, 0.0f), g(kGates);
      for (int s = 0; s < t; ++s) {
        const int step = direction == 0 ? s : t - 1 - s;
        const float* pre = gates.data() + static_cast<std::size_t>(step) * kGates;
        std::copy(pre, pre + kGates, g.begin());
        for (int k = 0; k < kHidden; ++k)  // g += W_hh h, a column at a time
          whisper::axpy(h[k], d.w_hh_t.data() + static_cast<std::size_t>(k) * kGates, g.data(),
                        kGates);
        float* out =
            next.data() + static_cast<std::size_t>(step) * 2 * kHidden + direction * kHidden;
        // PyTorch's gate order: input, forget, cell, output.
        whisper::sigmoid_in_place(g.data(), 2 * kHidden);
        whisper::tanh_in_place(g.data() + 2 * kHidden, kHidden);
        whisper::sigmoid_in_place(g.data() + 3 * kHidden, kHidden);
        for (int k = 0; k < kHidden; ++k) {
          cell[k] = g[kHidden + k] * cell[k] + g[k] * g[2 * kHidden + k];
          h[k] = cell[k];
        }
        whisper::tanh_in_place(h.data(), kHidden);
        for (int k = 0; k < kHidden; ++k) {
          h[k] *= g[3 * kHidden + k];
          out[k] = h[k];
        }
      }
    }
    x = std::move(next);
    width = 2 * kHidden;
  }

  // Linear layers with leaky ReLU, the classifier, log-softmax.
  for (std::size_t l = 0; l < linear_.size(); ++l) {
    const Linear& layer = linear_[l];
    std::vector<float> y(static_cast<std::size_t>(t) * layer.out);
    for (int r = 0; r < t; ++r)
      std::copy(layer.bias.begin(), layer.bias.end(),
                y.begin() + static_cast<std::ptrdiff_t>(r) * layer.out);
    whisper::sgemm(true, t, layer.out, layer.in, 1.0f, x.data(), layer.in, layer.weight.data(),
                   layer.in, 1.0f, y.data(), layer.out);
    if (l + 1 < linear_.size()) {
      for (float& v : y)
        if (v < 0) v *= kLeakySlope;
    }
    x = std::move(y);
  }
  for (int r = 0; r < t; ++r) {
    float* row = x.data() + static_cast<std::size_t>(r) * kPowersetClasses;
    const float top = *std::max_element(row, row + kPowersetClasses);
    double total = 0;
    for (int k = 0; k < kPowersetClasses; ++k) total += std::exp(row[k] - top);
    const float log_total = static_cast<float>(std::log(total));
    for (int k = 0; k < kPowersetClasses; ++k) row[k] = row[k] - top - log_total;
  }
  return x;
}

std::vector<float> powerset_to_speakers(const std::vector<float>& log_probs) {
  const std::size_t frames = log_probs.size() / kPowersetClasses;
  std::vector<float> speakers(frames * kLocalSpeakers, 0.0f);
  for (std::size_t f = 0; f < frames; ++f) {
    const float* row = log_probs.data() + f * kPowersetClasses;
    const int best = static_cast<int>(std::max_element(row, row + kPowersetClasses) - row);
    for (int s = 0; s < kLocalSpeakers; ++s)
      if (kPowersetSpeakers[best] & (1 << s)) speakers[f * kLocalSpeakers + s] = 1.0f;
  }
  return speakers;
}

}  // namespace sra::speakers
