#include "engine/speakers/campplus.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "core/errors.h"
#include "engine/speakers/fbank.h"
#include "engine/torch/torch_checkpoint.h"
#include "engine/whisper/blas.h"
#include "engine/whisper/kernels.h"

namespace sra::speakers {
namespace {

constexpr int kMels = 80;
constexpr int kChannels = 32;       // the 2-D front end's feature maps
constexpr int kSegment = 100;       // frames of the context masks' segment pooling
constexpr int kColumnBlock = 4096;  // output positions per im2col block
constexpr float kBatchNormEps = 1e-5f;

// An allocator whose resize() leaves new floats uninitialised: every map is written in full by
// the layer that makes it, so zero-filling first would only cost time.
template <typename T>
struct UninitialisedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitialisedAllocator<U>;
  };
  UninitialisedAllocator() = default;
  template <typename U>
  UninitialisedAllocator(const UninitialisedAllocator<U>&) {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using Floats = std::vector<float, UninitialisedAllocator<float>>;

// Feature maps [c][f][t] (2-D front end) or a sequence [c][t] (f == 1).
struct Maps {
  int c = 0, f = 1, t = 0;
  Floats v;
  float* row(int channel, int freq = 0) {
    return v.data() + (static_cast<std::size_t>(channel) * f + freq) * t;
  }
  const float* row(int channel, int freq = 0) const {
    return v.data() + (static_cast<std::size_t>(channel) * f + freq) * t;
  }
};

void relu(Floats& x) {
  for (float& v : x) v = std::max(v, 0.0f);
}

}  // namespace

namespace {

// Reads what the network's building blocks need from the state dict.
struct Reader {
  const torch::TorchCheckpoint& c;

  template <typename Norm>
  Norm norm(const std::string& name, int channels, bool affine = true) const {
    const auto& mean = c.get(name + ".running_mean", {channels}).values;
    const auto& var = c.get(name + ".running_var", {channels}).values;
    Norm n;
    n.scale.resize(static_cast<std::size_t>(channels));
    n.shift.resize(static_cast<std::size_t>(channels));
    for (int i = 0; i < channels; ++i) {
      const float w = affine ? c.get(name + ".weight", {channels}).values[i] : 1.0f;
      const float b = affine ? c.get(name + ".bias", {channels}).values[i] : 0.0f;
      n.scale[i] = w / std::sqrt(var[i] + kBatchNormEps);
      n.shift[i] = b - mean[i] * n.scale[i];
    }
    return n;
  }
  template <typename Conv>
  Conv conv(const std::string& name, std::vector<std::int64_t> shape, bool bias) const {
    Conv v;
    v.out = static_cast<int>(shape[0]);
    v.in = static_cast<int>(shape[1]);
    v.kernel = shape.size() > 2 ? static_cast<int>(shape[2]) : 1;
    v.weight = c.get(name + ".weight", shape).values;
    if (bias) v.bias = c.get(name + ".bias", {shape[0]}).values;
    return v;
  }
};

}  // namespace

namespace {

// y[c] = x[c] * scale[c] + shift[c] over each channel's rows, then ReLU when asked; in place.
template <typename Norm>
void apply(Maps& x, const Norm& n, bool with_relu) {
  const std::size_t per_channel = static_cast<std::size_t>(x.f) * x.t;
  for (int c = 0; c < x.c; ++c) {
    float* p = x.v.data() + c * per_channel;
    for (std::size_t i = 0; i < per_channel; ++i) {
      float v = p[i] * n.scale[c] + n.shift[c];
      p[i] = with_relu ? std::max(v, 0.0f) : v;
    }
  }
}

// 2-D convolution with a k x k kernel (k = 3: padding 1; k = 1: none), stride (stride, 1).
template <typename Conv>
Maps conv2d(const Maps& x, const Conv& w, int stride) {
  const int k = w.kernel, pad = k / 2;
  Maps y;
  y.c = w.out;
  y.f = (x.f + 2 * pad - k) / stride + 1;
  y.t = x.t;
  y.v.resize(static_cast<std::size_t>(y.c) * y.f * y.t);  // every value written by sgemm
  const int positions = y.f * y.t, rows = x.c * k * k;
  std::unique_ptr<float[]> columns(new float[static_cast<std::size_t>(rows) * kColumnBlock]);
  for (int p0 = 0; p0 < positions; p0 += kColumnBlock) {
    const int n = std::min(kColumnBlock, positions - p0);
    for (int ci = 0; ci < x.c; ++ci)
      for (int kf = 0; kf < k; ++kf)
        for (int kt = 0; kt < k; ++kt) {
          float* col = columns.get() + static_cast<std::size_t>((ci * k + kf) * k + kt) * n;
          // Runs of one output row: a shifted copy of one input row, zeros past its edges.
          for (int j = 0; j < n;) {
            const int p = p0 + j, fo = p / y.t, to = p % y.t;
            const int run = std::min(n - j, y.t - to);
            const int fi = fo * stride + kf - pad;
            float* out = col + j;
            if (fi < 0 || fi >= x.f) {
              std::fill_n(out, run, 0.0f);
            } else {
              const float* in = x.row(ci, fi);
              const int shift = kt - pad;  // out[i] = in[to + i + shift]
              const int first = std::clamp(-(to + shift), 0, run);
              const int last = std::clamp(x.t - (to + shift), first, run);
              std::fill_n(out, first, 0.0f);
              std::copy(in + to + shift + first, in + to + shift + last, out + first);
              std::fill(out + last, out + run, 0.0f);
            }
            j += run;
          }
        }
    whisper::sgemm(false, y.c, n, rows, 1.0f, w.weight.data(), rows, columns.get(), n, 0.0f,
                   y.v.data() + p0, positions);
  }
  return y;
}

// 1-D convolution over [c][t] with `dilation`, `stride`, `padding`; adds the bias if any.
template <typename Conv>
Maps conv1d(const Maps& x, const Conv& w, int stride, int dilation, int padding) {
  Maps y;
  y.c = w.out;
  y.t = (x.t + 2 * padding - dilation * (w.kernel - 1) - 1) / stride + 1;
  y.v.resize(static_cast<std::size_t>(y.c) * y.t);  // every value written by sgemm
  const int rows = x.c * w.kernel;
  if (w.kernel == 1 && stride == 1 && padding == 0) {
    whisper::sgemm(false, y.c, y.t, x.c, 1.0f, w.weight.data(), x.c, x.v.data(), x.t, 0.0f,
                   y.v.data(), y.t);
  } else {
    Floats columns(static_cast<std::size_t>(rows) * std::min(kColumnBlock, y.t));
    for (int t0 = 0; t0 < y.t; t0 += kColumnBlock) {
      const int n = std::min(kColumnBlock, y.t - t0);
      for (int ci = 0; ci < x.c; ++ci)
        for (int kk = 0; kk < w.kernel; ++kk) {
          float* col = columns.data() + static_cast<std::size_t>(ci * w.kernel + kk) * n;
          for (int j = 0; j < n; ++j) {
            const int ti = (t0 + j) * stride + kk * dilation - padding;
            col[j] = ti >= 0 && ti < x.t ? x.row(ci)[ti] : 0.0f;
          }
        }
      whisper::sgemm(false, y.c, n, rows, 1.0f, w.weight.data(), rows, columns.data(), n, 0.0f,
                     y.v.data() + t0, y.t);
    }
  }
  if (!w.bias.empty())
    for (int c = 0; c < y.c; ++c)
      for (int t = 0; t < y.t; ++t) y.row(c)[t] += w.bias[c];
  return y;
}

// x with each channel normalised (and ReLU'd when asked), into a new map.
template <typename Norm>
Maps normalized(const Maps& x, const Norm& n, bool with_relu) {
  Maps y;
  y.c = x.c, y.f = x.f, y.t = x.t;
  y.v.resize(x.v.size());
  const std::size_t per_channel = static_cast<std::size_t>(x.f) * x.t;
  for (int c = 0; c < x.c; ++c) {
    const float* in = x.v.data() + c * per_channel;
    float* out = y.v.data() + c * per_channel;
    for (std::size_t i = 0; i < per_channel; ++i) {
      const float v = in[i] * n.scale[c] + n.shift[c];
      out[i] = with_relu ? std::max(v, 0.0f) : v;
    }
  }
  return y;
}

}  // namespace

CamPlusPlus::CamPlusPlus(const std::filesystem::path& checkpoint) {
  const torch::TorchCheckpoint c(checkpoint);
  const Reader r{c};
  head_conv1_ = r.conv<Conv>("head.conv1", {kChannels, 1, 3, 3}, false);
  head_bn1_ = r.norm<Norm>("head.bn1", kChannels);
  for (const char* layer : {"head.layer1", "head.layer2"}) {
    for (int b = 0; b < 2; ++b) {
      const std::string name = std::string(layer) + "." + std::to_string(b);
      ResBlock block;
      block.stride = b == 0 ? 2 : 1;
      block.conv1 = r.conv<Conv>(name + ".conv1", {kChannels, kChannels, 3, 3}, false);
      block.bn1 = r.norm<Norm>(name + ".bn1", kChannels);
      block.conv2 = r.conv<Conv>(name + ".conv2", {kChannels, kChannels, 3, 3}, false);
      block.bn2 = r.norm<Norm>(name + ".bn2", kChannels);
      if (block.stride != 1) {
        block.shortcut = r.conv<Conv>(name + ".shortcut.0", {kChannels, kChannels, 1, 1}, false);
        block.shortcut_bn = r.norm<Norm>(name + ".shortcut.1", kChannels);
      }
      res_blocks_.push_back(std::move(block));
    }
  }
  head_conv2_ = r.conv<Conv>("head.conv2", {kChannels, kChannels, 3, 3}, false);
  head_bn2_ = r.norm<Norm>("head.bn2", kChannels);

  const int head_out = kChannels * (kMels / 8);
  tdnn_ = r.conv<Conv>("xvector.tdnn.linear", {128, head_out, 5}, false);
  tdnn_norm_ = r.norm<Norm>("xvector.tdnn.nonlinear.batchnorm", 128);
  int channels = 128;
  const int layers[3] = {12, 24, 16}, dilations[3] = {1, 2, 2};
  for (int b = 0; b < 3; ++b) {
    Block block;
    block.dilation = dilations[b];
    const std::string prefix = "xvector.block" + std::to_string(b + 1) + ".tdnnd";
    for (int l = 0; l < layers[b]; ++l) {
      const std::string name = prefix + std::to_string(l + 1);
      const int in = channels + l * 32;
      DenseTdnnLayer layer;
      layer.norm1 = r.norm<Norm>(name + ".nonlinear1.batchnorm", in);
      layer.linear1 = r.conv<Conv>(name + ".linear1", {128, in, 1}, false);
      layer.norm2 = r.norm<Norm>(name + ".nonlinear2.batchnorm", 128);
      layer.local = r.conv<Conv>(name + ".cam_layer.linear_local", {32, 128, 3}, false);
      layer.context1 = r.conv<Conv>(name + ".cam_layer.linear1", {64, 128, 1}, true);
      layer.context2 = r.conv<Conv>(name + ".cam_layer.linear2", {32, 64, 1}, true);
      block.layers.push_back(std::move(layer));
    }
    channels += layers[b] * 32;
    const std::string transit = "xvector.transit" + std::to_string(b + 1);
    block.transit_norm = r.norm<Norm>(transit + ".nonlinear.batchnorm", channels);
    block.transit = r.conv<Conv>(transit + ".linear", {channels / 2, channels, 1}, false);
    channels /= 2;
    blocks_.push_back(std::move(block));
  }
  out_norm_ = r.norm<Norm>("xvector.out_nonlinear.batchnorm", channels);
  const auto& dense = c.get("xvector.dense.linear.weight");
  if (dense.shape.size() != 3 || dense.shape[1] != 2 * channels || dense.shape[2] != 1)
    throw config_error(checkpoint.string() + ": xvector.dense.linear.weight is not [N, " +
                       std::to_string(2 * channels) + ", 1]");
  dimension_ = static_cast<int>(dense.shape[0]);
  dense_ = r.conv<Conv>("xvector.dense.linear", {dimension_, 2 * channels, 1}, false);
  dense_norm_ = r.norm<Norm>("xvector.dense.nonlinear.batchnorm", dimension_, false);
}

std::vector<float> CamPlusPlus::embed(const float* samples, int count) const {
  const int frames = fbank_frames(count);
  if (frames < 8) throw invalid_request("a speaker embedding needs at least 0.1 s of audio");
  std::vector<float> features = kaldi_fbank(samples, count, kMels);
  subtract_mean(features, kMels);

  // The 2-D front end over [1][80 mels][frames].
  Maps x;
  x.c = 1, x.f = kMels, x.t = frames;
  x.v.resize(features.size());
  for (int t = 0; t < frames; ++t)
    for (int m = 0; m < kMels; ++m)
      x.v[static_cast<std::size_t>(m) * frames + t] =
          features[static_cast<std::size_t>(t) * kMels + m];
  x = conv2d(x, head_conv1_, 1);
  apply(x, head_bn1_, true);
  for (const ResBlock& b : res_blocks_) {
    Maps y = conv2d(x, b.conv1, b.stride);
    apply(y, b.bn1, true);
    y = conv2d(y, b.conv2, 1);
    apply(y, b.bn2, false);
    if (b.shortcut.out > 0) {
      Maps s = conv2d(x, b.shortcut, b.stride);
      apply(s, b.shortcut_bn, false);
      for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] += s.v[i];
    } else {
      for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] += x.v[i];
    }
    relu(y.v);
    x = std::move(y);
  }
  x = conv2d(x, head_conv2_, 2);
  apply(x, head_bn2_, true);
  x.c *= x.f;  // [32][10][t] read as [320][t]
  x.f = 1;

  // The densely connected TDNN.
  x = conv1d(x, tdnn_, 2, 1, 2);
  apply(x, tdnn_norm_, true);
  for (const Block& block : blocks_) {
    int channels = x.c;  // once the block's layers have added theirs
    for (const DenseTdnnLayer& layer : block.layers) channels += layer.local.out;
    x.v.reserve(static_cast<std::size_t>(channels) * x.t);
    for (const DenseTdnnLayer& layer : block.layers) {
      Maps h = conv1d(normalized(x, layer.norm1, true), layer.linear1, 1, 1, 0);
      apply(h, layer.norm2, true);
      Maps y = conv1d(h, layer.local, 1, block.dilation, block.dilation);
      // The context-aware mask: each frame sees the turn's mean plus its 100-frame segment's
      // mean; the mask is computed once per segment.
      const int segments = (h.t + kSegment - 1) / kSegment;
      Maps context;
      context.c = h.c, context.t = segments;
      context.v.assign(static_cast<std::size_t>(h.c) * segments, 0.0f);
      for (int c = 0; c < h.c; ++c) {
        const float* row = h.row(c);
        double total = 0;
        for (int t = 0; t < h.t; ++t) total += row[t];
        const float mean = static_cast<float>(total / h.t);
        for (int s = 0; s < segments; ++s) {
          const int begin = s * kSegment, end = std::min(h.t, begin + kSegment);
          double part = 0;
          for (int t = begin; t < end; ++t) part += row[t];
          context.row(c)[s] = mean + static_cast<float>(part / (end - begin));
        }
      }
      Maps hidden = conv1d(context, layer.context1, 1, 1, 0);
      relu(hidden.v);
      Maps mask = conv1d(hidden, layer.context2, 1, 1, 0);
      whisper::sigmoid_in_place(mask.v.data(), mask.v.size());
      for (int c = 0; c < y.c; ++c)
        for (int t = 0; t < y.t; ++t) y.row(c)[t] *= mask.row(c)[t / kSegment];
      x.v.insert(x.v.end(), y.v.begin(), y.v.end());  // [c][t] rows: concatenation of channels
      x.c += y.c;
    }
    apply(x, block.transit_norm, true);
    x = conv1d(x, block.transit, 1, 1, 0);
  }
  apply(x, out_norm_, true);

  // Statistics pooling (mean, unbiased standard deviation), the dense layer, its batch norm.
  Maps stats;
  stats.c = 2 * x.c, stats.t = 1;
  stats.v.resize(static_cast<std::size_t>(stats.c));
  for (int c = 0; c < x.c; ++c) {
    const float* row = x.row(c);
    double total = 0;
    for (int t = 0; t < x.t; ++t) total += row[t];
    const double mean = total / x.t;
    double squares = 0;
    for (int t = 0; t < x.t; ++t) squares += (row[t] - mean) * (row[t] - mean);
    stats.v[c] = static_cast<float>(mean);
    stats.v[x.c + c] = static_cast<float>(std::sqrt(squares / std::max(1, x.t - 1)));
  }
  Maps embedding = conv1d(stats, dense_, 1, 1, 0);
  apply(embedding, dense_norm_, false);
  return std::vector<float>(embedding.v.begin(), embedding.v.end());
}

float cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? static_cast<float>(dot / std::sqrt(na * nb)) : 0.0f;
}

}  // namespace sra::speakers
