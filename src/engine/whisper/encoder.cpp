#include "engine/whisper/encoder.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "engine/whisper/kernels.h"

namespace sra::whisper {

AttentionWeights attention_weights(const ModelFile& f, const std::string& p, const std::string& ln,
                                   int d) {
  const std::int64_t D = d;
  return {&f.tensor(ln + ".weight", {D}),         &f.tensor(ln + ".bias", {D}),
          &f.tensor(p + ".query.weight", {D, D}), &f.tensor(p + ".query.bias", {D}),
          &f.tensor(p + ".key.weight", {D, D}),   &f.tensor(p + ".value.weight", {D, D}),
          &f.tensor(p + ".value.bias", {D}),      &f.tensor(p + ".out.weight", {D, D}),
          &f.tensor(p + ".out.bias", {D})};
}

MlpWeights mlp_weights(const ModelFile& f, const std::string& p, int d) {
  const std::int64_t D = d;
  return {&f.tensor(p + ".mlp_ln.weight", {D}),       &f.tensor(p + ".mlp_ln.bias", {D}),
          &f.tensor(p + ".mlp.0.weight", {4 * D, D}), &f.tensor(p + ".mlp.0.bias", {4 * D}),
          &f.tensor(p + ".mlp.2.weight", {D, 4 * D}), &f.tensor(p + ".mlp.2.bias", {D})};
}

// Rows apply_mlp computes at a time (a multiple of the int8 products' 48-row tasks).
constexpr int kMlpChunkRows = 384;

void apply_mlp(const MlpWeights& w, float* x, int n, int d, LinearMath math, MlpBuffers& buffers) {
  // Rows in chunks: each row's result is the same, and the 4x wider hidden rows of a chunk (3 MiB
  // for base) stay in the caches instead of a whole window's (12 MiB) passing through memory.
  const int chunk = std::min(n, kMlpChunkRows);
  const std::size_t cd = static_cast<std::size_t>(chunk) * d;
  buffers.normed.resize(cd);  // every value is written below: what a resize keeps is not read
  buffers.hidden.resize(4 * cd);
  buffers.out.resize(cd);
  float* h = buffers.normed.data();
  float* mid = buffers.hidden.data();
  float* out = buffers.out.data();
  for (int r0 = 0; r0 < n; r0 += chunk) {
    const int rows = std::min(chunk, n - r0);
    const std::size_t rd = static_cast<std::size_t>(rows) * d;
    float* xr = x + static_cast<std::size_t>(r0) * d;
    layer_norm(xr, rows, d, *w.ln_w, *w.ln_b, h);
    linear(h, rows, d, *w.fc1_w, w.fc1_b, mid, math);
    gelu(mid, 4 * rd);
    linear(mid, rows, 4 * d, *w.fc2_w, w.fc2_b, out, math);
    add_in_place(out, xr, rd);
  }
}

void apply_mlp(const MlpWeights& w, float* x, int n, int d, LinearMath math) {
  MlpBuffers buffers;
  apply_mlp(w, x, n, d, math, buffers);
}

Encoder::Encoder(const ModelFile& file) {
  const HParams& h = file.hparams();
  d_ = h.n_audio_state;
  heads_ = h.n_audio_head;
  n_ctx_ = h.n_audio_ctx;
  n_mels_ = h.n_mels;
  const std::int64_t D = d_;
  conv1_w_ = &file.tensor("encoder.conv1.weight", {D, n_mels_, 3});
  conv1_b_ = &file.tensor("encoder.conv1.bias", {D});
  conv2_w_ = &file.tensor("encoder.conv2.weight", {D, D, 3});
  conv2_b_ = &file.tensor("encoder.conv2.bias", {D});
  positions_ = &file.tensor("encoder.positional_embedding", {n_ctx_, D});
  ln_post_w_ = &file.tensor("encoder.ln_post.weight", {D});
  ln_post_b_ = &file.tensor("encoder.ln_post.bias", {D});
  for (int i = 0; i < h.n_audio_layer; ++i) {
    std::string p = "encoder.blocks." + std::to_string(i);
    attention_.push_back(attention_weights(file, p + ".attn", p + ".attn_ln", d_));
    mlp_.push_back(mlp_weights(file, p, d_));
  }
}

std::vector<float> Encoder::forward(const Mel& mel, const CancelToken* cancel) const {
  if (mel.n_mels != n_mels_ || mel.n_frames != 2 * n_ctx_) {
    throw internal_error("encoder input must be " + std::to_string(n_mels_) + " x " +
                         std::to_string(2 * n_ctx_));
  }
  const int T = n_ctx_, d = d_, dh = d / heads_;
  const std::size_t td = static_cast<std::size_t>(T) * d;
  std::vector<float> x(td);
  {  // the convolutions' buffers are gone before the layers' are made
    // The mel window is [n_mels, frames]; the convolutions take time-major input.
    std::vector<float> frames(static_cast<std::size_t>(mel.n_frames) * n_mels_);
    for (int m = 0; m < n_mels_; ++m) {
      for (int t = 0; t < mel.n_frames; ++t)
        frames[static_cast<std::size_t>(t) * n_mels_ + m] = mel.at(m, t);
    }
    std::vector<float> c1(static_cast<std::size_t>(mel.n_frames) * d);
    conv1d_k3(frames.data(), mel.n_frames, n_mels_, 1, *conv1_w_, *conv1_b_, c1.data());
    gelu(c1.data(), c1.size());
    conv1d_k3(c1.data(), mel.n_frames, d, 2, *conv2_w_, *conv2_b_, x.data());
  }
  gelu(x.data(), x.size());
  add_in_place(positions_->data, x.data(), td);

  std::vector<float> h(td), q(td), k(td), v(td), attn(td), proj(td);
  MlpBuffers mlp;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  for (std::size_t l = 0; l < attention_.size(); ++l) {
    if (cancel) cancel->check();
    const AttentionWeights& a = attention_[l];
    layer_norm(x.data(), T, d, *a.ln_w, *a.ln_b, h.data());
    linear(h.data(), T, d, *a.query_w, a.query_b, q.data(), math_);
    linear(h.data(), T, d, *a.key_w, nullptr, k.data(), math_);
    linear(h.data(), T, d, *a.value_w, a.value_b, v.data(), math_);
    if (math_ == LinearMath::bf16) {
      attention_bf16(q.data(), d, k.data(), v.data(), d, T, T, heads_, dh, scale, attn.data(), d);
    } else {
      attention(q.data(), d, k.data(), v.data(), d, T, T, heads_, dh, scale, -1, attn.data(), d);
    }
    linear(attn.data(), T, d, *a.out_w, a.out_b, proj.data(), math_);
    add_in_place(proj.data(), x.data(), td);
    apply_mlp(mlp_[l], x.data(), T, d, math_, mlp);
  }
  layer_norm(x.data(), T, d, *ln_post_w_, *ln_post_b_, x.data());
  return x;
}

}  // namespace sra::whisper
