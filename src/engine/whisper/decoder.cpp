#include "engine/whisper/decoder.h"

#include <cmath>

#include "core/errors.h"
#include "engine/whisper/kernels.h"

namespace sra::whisper {

Decoder::Decoder(const ModelFile& file) : file_(file) {
  const HParams& h = file.hparams();
  d_ = h.n_text_state;
  heads_ = h.n_text_head;
  n_ctx_ = h.n_text_ctx;
  n_vocab_ = h.n_vocab;
  const std::int64_t D = d_;
  token_embedding_ = &file.tensor("decoder.token_embedding.weight", {n_vocab_, D});
  positions_ = &file.tensor("decoder.positional_embedding", {n_ctx_, D});
  ln_w_ = &file.tensor("decoder.ln.weight", {D});
  ln_b_ = &file.tensor("decoder.ln.bias", {D});
  if (h.n_audio_state != d_) {
    throw config_error("whisper model " + file.path().string() +
                       ": encoder and decoder widths differ");
  }
  for (int i = 0; i < h.n_text_layer; ++i) {
    std::string p = "decoder.blocks." + std::to_string(i);
    self_.push_back(attention_weights(file, p + ".attn", p + ".attn_ln", d_));
    cross_.push_back(attention_weights(file, p + ".cross_attn", p + ".cross_attn_ln", d_));
    mlp_.push_back(mlp_weights(file, p, d_));
  }
}

CrossCache Decoder::cross_cache(const std::vector<float>& encoder_out) const {
  CrossCache c;
  c.n_audio_ctx = static_cast<int>(encoder_out.size() / static_cast<std::size_t>(d_));
  for (const auto& a : cross_) {
    std::vector<float> k(encoder_out.size()), v(encoder_out.size());
    linear(encoder_out.data(), c.n_audio_ctx, d_, *a.key_w, nullptr, k.data());
    linear(encoder_out.data(), c.n_audio_ctx, d_, *a.value_w, a.value_b, v.data());
    c.k.push_back(std::move(k));
    c.v.push_back(std::move(v));
  }
  return c;
}

std::vector<float> Decoder::forward(const std::vector<std::vector<int>>& tokens,
                                    std::vector<SelfCache*>& caches, const CrossCache& cross,
                                    CrossAttentionTap* tap) const {
  const int batch = static_cast<int>(tokens.size());
  if (batch == 0) return {};
  if (tap) {
    if (batch != 1) throw internal_error("cross-attention tap on a batch of several sequences");
    tap->scores.assign(tap->heads.size(), {});
  }
  const int n_new = static_cast<int>(tokens[0].size());
  const int d = d_, dh = d / heads_, rows = batch * n_new;
  const std::size_t rd = static_cast<std::size_t>(rows) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));

  std::vector<float> x(rd);
  for (int b = 0; b < batch; ++b) {
    SelfCache& cache = *caches[static_cast<std::size_t>(b)];
    if (static_cast<int>(tokens[static_cast<std::size_t>(b)].size()) != n_new) {
      throw internal_error("decoder batch with unequal token counts");
    }
    if (cache.length + n_new > n_ctx_) {
      throw internal_error("decoder context of " + std::to_string(n_ctx_) + " tokens exceeded");
    }
    if (cache.k.empty()) {
      cache.k.resize(self_.size());
      cache.v.resize(self_.size());
    }
    for (int i = 0; i < n_new; ++i) {
      int id = tokens[static_cast<std::size_t>(b)][static_cast<std::size_t>(i)];
      if (id < 0 || id >= n_vocab_) throw internal_error("token id out of range");
      const float* e = token_embedding_->data + static_cast<std::size_t>(id) * d;
      const float* p = positions_->data + static_cast<std::size_t>(cache.length + i) * d;
      float* row = x.data() + (static_cast<std::size_t>(b) * n_new + i) * d;
      for (int j = 0; j < d; ++j) row[j] = e[j] + p[j];
    }
  }

  std::vector<float> h(rd), q(rd), k(rd), v(rd), attn(rd), proj(rd);
  std::vector<float> scores;
  for (std::size_t l = 0; l < self_.size(); ++l) {
    // Causal self-attention over each sequence's cache plus its new tokens.
    const AttentionWeights& a = self_[l];
    layer_norm(x.data(), rows, d, *a.ln_w, *a.ln_b, h.data());
    linear(h.data(), rows, d, *a.query_w, a.query_b, q.data());
    linear(h.data(), rows, d, *a.key_w, nullptr, k.data());
    linear(h.data(), rows, d, *a.value_w, a.value_b, v.data());
    for (int b = 0; b < batch; ++b) {
      SelfCache& cache = *caches[static_cast<std::size_t>(b)];
      const int past = cache.length, total = past + n_new;
      std::vector<float>& ck = cache.k[l];
      std::vector<float>& cv = cache.v[l];
      ck.resize(static_cast<std::size_t>(total) * d);
      cv.resize(static_cast<std::size_t>(total) * d);
      const std::size_t at = static_cast<std::size_t>(b) * n_new * d;
      std::copy(k.begin() + at, k.begin() + at + static_cast<std::size_t>(n_new) * d,
                ck.begin() + static_cast<std::size_t>(past) * d);
      std::copy(v.begin() + at, v.begin() + at + static_cast<std::size_t>(n_new) * d,
                cv.begin() + static_cast<std::size_t>(past) * d);
      scores.resize(static_cast<std::size_t>(n_new) * total);
      for (int head = 0; head < heads_; ++head) {
        const std::size_t off = static_cast<std::size_t>(head) * dh;
        matmul_bt(q.data() + at + off, d, ck.data() + off, d, scores.data(), total, n_new, total,
                  dh, scale);
        for (int i = 0; i < n_new; ++i) {  // new token i sees positions 0 .. past + i
          float* row = scores.data() + static_cast<std::size_t>(i) * total;
          for (int j = past + i + 1; j < total; ++j) row[j] = -INFINITY;
        }
        softmax_rows(scores.data(), n_new, total, total);
        matmul(scores.data(), total, cv.data() + off, d, attn.data() + at + off, d, n_new, dh,
               total);
      }
    }
    linear(attn.data(), rows, d, *a.out_w, a.out_b, proj.data());
    for (std::size_t i = 0; i < rd; ++i) x[i] += proj[i];

    // Cross-attention over the audio: all rows of the batch at once.
    const AttentionWeights& c = cross_[l];
    const int T = cross.n_audio_ctx;
    layer_norm(x.data(), rows, d, *c.ln_w, *c.ln_b, h.data());
    linear(h.data(), rows, d, *c.query_w, c.query_b, q.data());
    scores.resize(static_cast<std::size_t>(rows) * T);
    for (int head = 0; head < heads_; ++head) {
      const std::size_t off = static_cast<std::size_t>(head) * dh;
      matmul_bt(q.data() + off, d, cross.k[l].data() + off, d, scores.data(), T, rows, T, dh,
                scale);
      if (tap) {
        for (std::size_t i = 0; i < tap->heads.size(); ++i) {
          if (tap->heads[i] == std::pair<int, int>(static_cast<int>(l), head))
            tap->scores[i] = scores;
        }
      }
      softmax_rows(scores.data(), rows, T, T);
      matmul(scores.data(), T, cross.v[l].data() + off, d, attn.data() + off, d, rows, dh, T);
    }
    linear(attn.data(), rows, d, *c.out_w, c.out_b, proj.data());
    for (std::size_t i = 0; i < rd; ++i) x[i] += proj[i];

    apply_mlp(mlp_[l], x.data(), rows, d);
  }
  for (auto* cache : caches) cache->length += n_new;
  layer_norm(x.data(), rows, d, *ln_w_, *ln_b_, x.data());
  return x;
}

std::vector<float> Decoder::logits(const float* hidden, int rows) const {
  std::vector<float> out(static_cast<std::size_t>(rows) * n_vocab_);
  matmul_bt(hidden, d_, token_embedding_->data, d_, out.data(), n_vocab_, rows, n_vocab_, d_, 1.0f);
  return out;
}

}  // namespace sra::whisper
