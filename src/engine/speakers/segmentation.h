// SpeakerSegmentation: pyannote's segmentation-3.0 network (PyanNet: SincNet over the waveform, a
// 4-layer bidirectional LSTM, two linear layers and a powerset classifier), run natively from its
// published PyTorch checkpoint (no Python, no ONNX runtime). For a chunk of 16 kHz audio (10 s in
// training) it gives, per output frame, the log-probabilities of 7 powerset classes: nobody,
// local speaker 1, 2 or 3 alone, and the pairs {1,2}, {1,3}, {2,3} (at most 3 speakers per chunk,
// 2 at a time). The numbers are PyTorch's within float32 rounding (tests/unit/engine compare them
// with pyannote.audio's own model on real speech).
//
// Frame i of a chunk covers samples [270 i, 270 i + 991): the receptive field of the network's
// convolutions and poolings (16.875 ms steps, 61.9 ms wide).
//
// Immutable after loading; forward() may run on any number of threads at once.
#pragma once

#include <array>
#include <filesystem>
#include <vector>

namespace sra::speakers {

inline constexpr int kSegmentationRate = 16000;
inline constexpr int kSegmentationChunk = 160000;  // samples of the chunks the model was trained on
inline constexpr int kPowersetClasses = 7;
inline constexpr int kLocalSpeakers = 3;
inline constexpr int kFrameStep = 270;     // samples between output frames
inline constexpr int kFrameSamples = 991;  // samples one output frame sees

// The local speakers in each powerset class, as bits (class 4 = speakers 1 and 2 = 0b011).
inline constexpr std::array<int, kPowersetClasses> kPowersetSpeakers = {0, 1, 2, 4, 3, 5, 6};

class SpeakerSegmentation {
 public:
  // Loads pyannote's checkpoint (`pytorch_model.bin`). Throws sra::Error(config) naming the file
  // and the tensor when it is not that network.
  explicit SpeakerSegmentation(const std::filesystem::path& checkpoint);

  // Output frames for `samples` input samples (0 when fewer than one frame's worth).
  static int frames(int samples);

  // Log-probabilities [frames(count)][7] of `count` samples of 16 kHz mono audio.
  std::vector<float> forward(const float* samples, int count) const;

 private:
  struct Conv {
    int in = 0, out = 0, kernel = 0;
    std::vector<float> weight;  // [out][in * kernel]
    std::vector<float> bias;    // [out]
  };
  struct Norm {
    std::vector<float> weight, bias;  // InstanceNorm1d's affine parameters, per channel
  };
  struct LstmDirection {
    std::vector<float> w_ih, bias;  // [512][in], b_ih + b_hh [512]
    std::vector<float> w_hh_t;      // W_hh transposed, [128][512]: a step is 128 axpys
  };
  struct Linear {
    int in = 0, out = 0;
    std::vector<float> weight, bias;  // [out][in], [out]
  };

  float wav_norm_weight_ = 1, wav_norm_bias_ = 0;
  std::vector<float> sinc_filters_;  // [80][251]
  Conv conv2_, conv3_;
  std::array<Norm, 3> norms_;
  std::vector<LstmDirection> lstm_;  // layer-major: forward, backward, forward, ...
  std::vector<Linear> linear_;       // two hidden layers, then the classifier
};

// The probability that each local speaker speaks in each frame: [frames][3] from [frames][7]
// log-probabilities, each frame's most likely class taken as its truth (pyannote's
// powerset-to-multilabel conversion, hard).
std::vector<float> powerset_to_speakers(const std::vector<float>& log_probs);

}  // namespace sra::speakers
