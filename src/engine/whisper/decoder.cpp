#include "engine/whisper/decoder.h"

#include <cmath>

#include "core/errors.h"
#include "engine/whisper/kernels.h"

namespace sra::whisper {

Decoder::Decoder(const ModelFile& file) {
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

CrossCache Decoder::cross_cache(const std::vector<float>& encoder_out, bool half) const {
  CrossCache c;
  c.n_audio_ctx = static_cast<int>(encoder_out.size() / static_cast<std::size_t>(d_));
  const int T = c.n_audio_ctx, dh = d_ / heads_;
  c.half = half && dh % 16 == 0 && dh <= 256;  // the half kernels' shapes (every Whisper's)
  // The f32 keys and values are written where the cache keeps them (no copies of a layer's);
  // halves go through one layer's scratch.
  const std::size_t size = encoder_out.size();
  std::vector<float> k(size), kt_scratch, v_scratch;
  if (c.half) {
    kt_scratch.resize(size);
    v_scratch.resize(size);
  }
  for (const auto& a : cross_) {
    float* kt = c.half ? kt_scratch.data() : c.kt.emplace_back(size).data();
    float* v = c.half ? v_scratch.data() : c.v.emplace_back(size).data();
    linear(encoder_out.data(), T, d_, *a.key_w, nullptr, k.data(), cross_math_);
    linear(encoder_out.data(), T, d_, *a.value_w, a.value_b, v, cross_math_);
    for (int j = 0; j < T; ++j) {
      const float* row = k.data() + static_cast<std::size_t>(j) * d_;
      for (int h = 0; h < heads_; ++h) {
        float* head = kt + static_cast<std::size_t>(h) * dh * T;
        for (int e = 0; e < dh; ++e) head[static_cast<std::size_t>(e) * T + j] = row[h * dh + e];
      }
    }
    if (c.half) {
      simd().to_half(kt, c.kt16.emplace_back(size).data(), size);
      simd().to_half(v, c.v16.emplace_back(size).data(), size);
    }
  }
  return c;
}

std::vector<float> Decoder::forward(const std::vector<std::vector<int>>& tokens,
                                    std::vector<SelfCache*>& caches, const CrossCache& cross,
                                    CrossAttentionTap* tap) const {
  return forward(tokens, caches, std::vector<const CrossCache*>(tokens.size(), &cross), tap);
}

std::vector<float> Decoder::forward(const std::vector<std::vector<int>>& tokens,
                                    std::vector<SelfCache*>& caches,
                                    const std::vector<const CrossCache*>& crosses,
                                    CrossAttentionTap* tap) const {
  const int batch = static_cast<int>(tokens.size());
  if (batch == 0) return {};
  if (crosses.size() != tokens.size() || caches.size() != tokens.size())
    throw internal_error("decoder batch with unequal lists");
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
      const float* p = positions_->data + static_cast<std::size_t>(cache.length + i) * d;
      float* row = x.data() + (static_cast<std::size_t>(b) * n_new + i) * d;
      simd().widen_rows(token_embedding_->type, token_embedding_->raw,
                        token_embedding_->row_bytes(), d, id, id + 1, row);
      simd().add(p, row, static_cast<std::size_t>(d));
    }
  }

  std::vector<float> h(rd), q(rd), k(rd), v(rd), attn(rd), proj(rd);
  std::vector<float> scores;  // cross-attention scores, when tapped
  std::vector<AttentionPart> parts(static_cast<std::size_t>(batch));
  for (std::size_t l = 0; l < self_.size(); ++l) {
    // Causal self-attention over each sequence's cache plus its new tokens.
    const AttentionWeights& a = self_[l];
    layer_norm(x.data(), rows, d, *a.ln_w, *a.ln_b, h.data());
    linear(h.data(), rows, d, *a.query_w, a.query_b, q.data(), step_math_);
    linear(h.data(), rows, d, *a.key_w, nullptr, k.data(), step_math_);
    linear(h.data(), rows, d, *a.value_w, a.value_b, v.data(), step_math_);
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
      parts[static_cast<std::size_t>(b)] = {q.data() + at, ck.data(), cv.data(), attn.data() + at,
                                            n_new,         total,     past};
    }
    attention_parts(parts, d, d, d, heads_, dh, scale, false);
    linear(attn.data(), rows, d, *a.out_w, a.out_b, proj.data(), step_math_);
    add_in_place(proj.data(), x.data(), rd);

    // Cross-attention over each sequence's audio.
    const AttentionWeights& c = cross_[l];
    layer_norm(x.data(), rows, d, *c.ln_w, *c.ln_b, h.data());
    linear(h.data(), rows, d, *c.query_w, c.query_b, q.data(), step_math_);
    if (!tap) {
      // Consecutive sequences over the same audio (beams, samples) make one part: their queries
      // are rows of one attention over the audio, which is then read once for all of them.
      std::vector<AttentionPart> cross_parts;
      for (int b = 0; b < batch;) {
        const CrossCache* cross = crosses[static_cast<std::size_t>(b)];
        int e = b + 1;
        while (e < batch && crosses[static_cast<std::size_t>(e)] == cross) ++e;
        const std::size_t at = static_cast<std::size_t>(b) * n_new * d;
        AttentionPart part{q.data() + at,    nullptr,         nullptr,
                           attn.data() + at, (e - b) * n_new, cross->n_audio_ctx};
        if (cross->half) {
          part.k_half = cross->kt16[l].data();
          part.v_half = cross->v16[l].data();
        } else {
          part.k = cross->kt[l].data();
          part.v = cross->v[l].data();
        }
        cross_parts.push_back(part);
        b = e;
      }
      attention_parts(cross_parts, d, d, d, heads_, dh, scale, true);
    } else {  // the scores of some heads are wanted too: per head, in the open
      const CrossCache& cross = *crosses[0];
      const int T = cross.n_audio_ctx;
      std::vector<float> wide_kt, wide_v;  // an f16 cache, widened for this layer
      if (cross.half) {
        wide_kt.resize(cross.kt16[l].size());
        wide_v.resize(cross.v16[l].size());
        simd().widen_rows(WeightType::f16, cross.kt16[l].data(), cross.kt16[l].size() * 2,
                          static_cast<int>(wide_kt.size()), 0, 1, wide_kt.data());
        simd().widen_rows(WeightType::f16, cross.v16[l].data(), cross.v16[l].size() * 2,
                          static_cast<int>(wide_v.size()), 0, 1, wide_v.data());
      }
      const float* layer_kt = cross.half ? wide_kt.data() : cross.kt[l].data();
      const float* layer_v = cross.half ? wide_v.data() : cross.v[l].data();
      scores.resize(static_cast<std::size_t>(rows) * T);
      for (int head = 0; head < heads_; ++head) {
        const std::size_t off = static_cast<std::size_t>(head) * dh;
        matmul(q.data() + off, d, layer_kt + off * T, T, scores.data(), T, rows, T, dh);
        for (float& value : scores) value *= scale;
        for (std::size_t i = 0; i < tap->heads.size(); ++i) {
          if (tap->heads[i] == std::pair<int, int>(static_cast<int>(l), head))
            tap->scores[i] = scores;
        }
        softmax_rows(scores.data(), rows, T, T);
        matmul(scores.data(), T, layer_v + off, d, attn.data() + off, d, rows, dh, T);
      }
    }
    linear(attn.data(), rows, d, *c.out_w, c.out_b, proj.data(), step_math_);
    add_in_place(proj.data(), x.data(), rd);

    apply_mlp(mlp_[l], x.data(), rows, d, step_math_);
  }
  for (auto* cache : caches) cache->length += n_new;
  layer_norm(x.data(), rows, d, *ln_w_, *ln_b_, x.data());
  return x;
}

std::vector<float> Decoder::logits(const float* hidden, int rows) const {
  std::vector<float> out(static_cast<std::size_t>(rows) * n_vocab_);
  linear(hidden, rows, d_, *token_embedding_, nullptr, out.data(), step_math_);
  return out;
}

}  // namespace sra::whisper
