// Decoder: Whisper's text decoder (token and learned position embeddings, pre-norm blocks of
// causal self-attention, cross-attention over the encoder output and MLP, final layer norm,
// logits through the tied token embedding), with a key/value cache per sequence.
//
// Holds pointers into a ModelFile, which must outlive it. The Decoder itself is immutable;
// all state lives in the caches the caller owns, so one Decoder may serve several threads.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/whisper/encoder.h"
#include "engine/whisper/model_file.h"

namespace sra::whisper {

// Keys and values of the self-attention of one sequence, per layer; grows as tokens are added.
// A plain value: copying it forks the sequence (beam search does).
struct SelfCache {
  int length = 0;                     // positions held
  std::vector<std::vector<float>> k;  // per layer: length x d
  std::vector<std::vector<float>> v;
};

// Keys and values of the cross-attention, computed once per encoder output; in f32 (exact), or
// rounded to IEEE halves (half the memory, and of the bytes each decoded token reads).
struct CrossCache {
  int n_audio_ctx = 0;
  bool half = false;                             // which of the two forms is filled
  std::vector<std::vector<float>> kt;            // per layer, per head: d_head rows of keys
  std::vector<std::vector<float>> v;             // per layer: n_audio_ctx x d
  std::vector<std::vector<std::uint16_t>> kt16;  // the same as halves
  std::vector<std::vector<std::uint16_t>> v16;
};

// Asks Decoder::forward for the cross-attention scores of some heads (batch of one sequence):
// q.k / sqrt(d_head) before the softmax, as OpenAI's qkv_attention returns them.
struct CrossAttentionTap {
  std::vector<std::pair<int, int>> heads;  // (layer, head) pairs to record
  std::vector<std::vector<float>> scores;  // per pair, filled by forward: n_new x n_audio_ctx
};

class Decoder {
 public:
  explicit Decoder(const ModelFile& file);

  // `half`: keep the keys and values as IEEE halves.
  CrossCache cross_cache(const std::vector<float>& encoder_out, bool half = false) const;
  // How the products are computed (exact unless set; set before first use): cross_cache()'s keys
  // and values with `math`; with LinearMath::int8, forward()'s and logits()' products over
  // quantized weights in int8 blocks when they have few rows (int8_gemv.h), exactly otherwise
  // (and always exactly with LinearMath::bf16).
  void set_math(LinearMath math) {
    cross_math_ = math;
    step_math_ = math == LinearMath::int8 || math == LinearMath::int8_blocks
                     ? LinearMath::int8_blocks
                     : LinearMath::exact;
  }

  // Feeds `n_new` tokens to each sequence (tokens[b] has n_new ids; caches[b] is extended) and
  // returns the final hidden states after layer norm: (batch * n_new) x d, sequence-major.
  // `tap`, when given (batch of one only), receives the cross-attention scores it asks for.
  std::vector<float> forward(const std::vector<std::vector<int>>& tokens,
                             std::vector<SelfCache*>& caches, const CrossCache& cross,
                             CrossAttentionTap* tap = nullptr) const;
  // The same with each sequence attending to its own audio (crosses[b]): sequences of several
  // windows, or of several requests, in one pass over the weights.
  std::vector<float> forward(const std::vector<std::vector<int>>& tokens,
                             std::vector<SelfCache*>& caches,
                             const std::vector<const CrossCache*>& crosses,
                             CrossAttentionTap* tap = nullptr) const;
  // Logits of `rows` hidden states: rows x n_vocab.
  std::vector<float> logits(const float* hidden, int rows) const;

  int width() const { return d_; }
  int n_vocab() const { return n_vocab_; }
  int n_ctx() const { return n_ctx_; }

 private:
  int d_, heads_, n_ctx_, n_vocab_;
  const Tensor *token_embedding_, *positions_, *ln_w_, *ln_b_;
  std::vector<AttentionWeights> self_;
  std::vector<AttentionWeights> cross_;
  std::vector<MlpWeights> mlp_;
  LinearMath cross_math_ = LinearMath::exact;
  LinearMath step_math_ = LinearMath::exact;
};

}  // namespace sra::whisper
