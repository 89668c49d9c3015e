// CamPlusPlus: 3D-Speaker's CAM++ speaker-embedding network (a 2-D convolutional front end over
// log mel filterbanks, then densely connected TDNN blocks with context-aware masking, statistics
// pooling and a dense layer), run natively from its published PyTorch state dict
// (campplus_cn_en_common.pt: trained on Chinese and English speech). embed() turns 16 kHz speech
// into one vector per speaker turn; turns of one voice lie close in cosine similarity. The numbers
// are PyTorch's within float32 rounding (tests/unit/engine compare them with 3D-Speaker's model).
//
// Immutable after loading; embed() may run on any number of threads at once.
#pragma once

#include <filesystem>
#include <vector>

namespace sra::speakers {

class CamPlusPlus {
 public:
  // Loads the state dict. Throws sra::Error(config) naming the file and the tensor when it is
  // not CAM++ (80 mel bins, 3 dense blocks of 12, 24 and 16 layers).
  explicit CamPlusPlus(const std::filesystem::path& checkpoint);

  // The embedding (dimension()) of `count` samples of 16 kHz mono speech: Kaldi filterbanks,
  // mean-normalised over the turn, through the network. At least 0.1 s of audio; throws
  // sra::Error(invalid_request) for less.
  std::vector<float> embed(const float* samples, int count) const;

  int dimension() const { return dimension_; }

 private:
  struct Norm {  // eval-mode batch norm folded: y = x * scale + shift
    std::vector<float> scale, shift;
  };
  struct Conv {  // a convolution's weights, [out][in * kernel (* kernel)]
    int in = 0, out = 0, kernel = 1;
    std::vector<float> weight, bias;  // bias may be empty
  };
  struct ResBlock {
    Conv conv1, conv2, shortcut;  // shortcut.out == 0: identity
    Norm bn1, bn2, shortcut_bn;
    int stride = 1;  // along frequency
  };
  struct DenseTdnnLayer {
    Norm norm1, norm2;
    Conv linear1, local, context1, context2;
  };
  struct Block {
    std::vector<DenseTdnnLayer> layers;
    int dilation = 1;
    Norm transit_norm;
    Conv transit;
  };

  Conv head_conv1_, head_conv2_;
  Norm head_bn1_, head_bn2_;
  std::vector<ResBlock> res_blocks_;
  Conv tdnn_;
  Norm tdnn_norm_;
  std::vector<Block> blocks_;
  Norm out_norm_;
  Conv dense_;
  Norm dense_norm_;
  int dimension_ = 0;
};

// Cosine similarity of two vectors of the same length (0 when either is zero).
float cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace sra::speakers
