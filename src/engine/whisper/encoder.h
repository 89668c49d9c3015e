// Encoder: Whisper's audio encoder (two convolutions with GELU, sinusoidal positions, pre-norm
// transformer blocks, final layer norm) over one 30 s log-mel window.
//
// Holds pointers into a ModelFile, which must outlive it. forward() allocates its own scratch,
// so one Encoder may run concurrently on several threads.
#pragma once

#include <memory>
#include <vector>

#include "core/cancel.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/mel.h"
#include "engine/whisper/model_file.h"

namespace sra::whisper {

struct AttentionWeights {
  const Tensor* ln_w;
  const Tensor* ln_b;
  const Tensor* query_w;
  const Tensor* query_b;
  const Tensor* key_w;
  const Tensor* value_w;
  const Tensor* value_b;
  const Tensor* out_w;
  const Tensor* out_b;
};

struct MlpWeights {
  const Tensor* ln_w;
  const Tensor* ln_b;
  const Tensor* fc1_w;
  const Tensor* fc1_b;
  const Tensor* fc2_w;
  const Tensor* fc2_b;
};

// Looks up `<prefix>.query.weight` ... with width d; throws if missing or misshapen.
AttentionWeights attention_weights(const ModelFile& file, const std::string& prefix,
                                   const std::string& ln_prefix, int d);
MlpWeights mlp_weights(const ModelFile& file, const std::string& prefix, int d);
// apply_mlp's intermediate rows, kept by a caller that runs many layers (their pages are then
// faulted in and written once, not once per layer).
struct MlpBuffers {
  std::vector<float> normed, hidden, out;
};
// x[n, d] += mlp(layer_norm(x)), its products computed as `math` says.
void apply_mlp(const MlpWeights& w, float* x, int n, int d, LinearMath math, MlpBuffers& buffers);
void apply_mlp(const MlpWeights& w, float* x, int n, int d, LinearMath math = LinearMath::exact);

class Encoder {
 public:
  explicit Encoder(const ModelFile& file);
  // The window must have n_mels x 3000 values; returns n_audio_ctx x n_audio_state values.
  // `cancel`, when given, is checked before each layer (a superseded job stops within one).
  std::vector<float> forward(const Mel& mel, const CancelToken* cancel = nullptr) const;
  // How the linear layers compute (exact unless set; set before the first forward()).
  void set_math(LinearMath math) { math_ = math; }

 private:
  int d_, heads_, n_ctx_, n_mels_;
  const Tensor *conv1_w_, *conv1_b_, *conv2_w_, *conv2_b_, *positions_, *ln_post_w_, *ln_post_b_;
  std::vector<AttentionWeights> attention_;
  std::vector<MlpWeights> mlp_;
  LinearMath math_ = LinearMath::exact;
};

}  // namespace sra::whisper
