// pyannote's segmentation-3.0 network run natively against pyannote.audio's own model on real
// speech (tests/unit/data/make_segmentation_reference.py made the references), and the PyTorch
// checkpoint reader on files that are not checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/errors.h"
#include "engine/speakers/segmentation.h"
#include "engine/torch/torch_checkpoint.h"
#include "whisper_test_support.h"

namespace sra::speakers {
namespace {

std::filesystem::path checkpoint() {
  auto path = std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / ".." / "models" /
              "pyannote-segmentation-3.0.bin";
  if (!std::filesystem::exists(path))
    ADD_FAILURE() << "run `speech-recognition-api models pull pyannote-segmentation-3.0` first";
  return path;
}

const SpeakerSegmentation& segmentation_model() {
  static const SpeakerSegmentation m(checkpoint());
  return m;
}

std::vector<float> chunk_of(const std::filesystem::path& file, int first_second) {
  std::vector<float> all = audio::decode(test::read_file(file)).samples;
  std::vector<float> out(kSegmentationChunk, 0.0f);
  const std::size_t start = static_cast<std::size_t>(first_second) * kSegmentationRate;
  for (std::size_t i = 0; i < out.size() && start + i < all.size(); ++i) out[i] = all[start + i];
  return out;
}

struct ChunkCase {
  const char* name;
  const char* file;  // under the shared folder
  int first_second;
};

class SegmentationMatchesPyannote : public ::testing::TestWithParam<ChunkCase> {};

TEST_P(SegmentationMatchesPyannote, LogProbabilitiesOfEveryFrame) {
  const ChunkCase& c = GetParam();
  auto reference = test::read_npy(std::filesystem::path(SRA_UNIT_TEST_DIR) / "data" /
                                  (std::string("segmentation_") + c.name + ".npy"));
  ASSERT_EQ(reference.shape, (std::vector<std::size_t>{589, 7}));
  std::vector<float> x = chunk_of(test::shared_dir() / c.file, c.first_second);
  ASSERT_EQ(SpeakerSegmentation::frames(kSegmentationChunk), 589);
  std::vector<float> y = segmentation_model().forward(x.data(), kSegmentationChunk);
  ASSERT_EQ(y.size(), reference.values.size());
  double worst = 0;
  int same_class = 0;
  for (std::size_t f = 0; f < 589; ++f) {
    const float* a = y.data() + f * 7;
    const float* b = reference.values.data() + f * 7;
    for (int k = 0; k < 7; ++k)
      worst = std::max(worst, static_cast<double>(std::fabs(a[k] - b[k])));
    same_class += std::max_element(a, a + 7) - a == std::max_element(b, b + 7) - b;
  }
  EXPECT_LT(worst, 2e-4) << c.name;  // measured 2.7e-5
  EXPECT_EQ(same_class, 589) << c.name;
  // The speakers of each frame: jfk has one, the mix's window two.
  auto speakers = powerset_to_speakers(y);
  std::array<int, 3> active{};
  for (std::size_t f = 0; f < 589; ++f)
    for (int s = 0; s < 3; ++s) active[s] += speakers[f * 3 + s] > 0;
  int present = 0;
  for (int s = 0; s < 3; ++s) present += active[s] > 50;
  EXPECT_EQ(present, std::string(c.name) == "jfk" ? 1 : 2) << c.name;
}

INSTANTIATE_TEST_SUITE_P(RealSpeech, SegmentationMatchesPyannote,
                         ::testing::Values(ChunkCase{"jfk", "audio/jfk.wav", 0},
                                           ChunkCase{"long_mix_20s",
                                                     "whisper/audio/words/long_mix.wav", 20}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SpeakerSegmentation, FramesFollowTheReceptiveField) {
  EXPECT_EQ(SpeakerSegmentation::frames(0), 0);
  EXPECT_EQ(SpeakerSegmentation::frames(250), 0);
  EXPECT_EQ(SpeakerSegmentation::frames(16000), 56);
  // A shorter chunk runs too (the last window of a file).
  std::vector<float> x(48000, 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * std::sin(0.05f * static_cast<float>(i));
  auto y = segmentation_model().forward(x.data(), static_cast<int>(x.size()));
  ASSERT_EQ(y.size(), static_cast<std::size_t>(SpeakerSegmentation::frames(48000)) * 7);
  for (std::size_t f = 0; f < y.size() / 7; ++f) {
    double total = 0;
    for (int k = 0; k < 7; ++k) total += std::exp(y[f * 7 + k]);
    EXPECT_NEAR(total, 1.0, 1e-4);
  }
}

// The fuzzer's seed, made with torch.save(): a state dict under "state_dict" holding a transposed
// (strided) float32 view, float16, bfloat16 and int64 tensors, beside plain values.
TEST(TorchCheckpoint, ReadsTensorsOfEveryStorageTypeAndLayout) {
  const torch::TorchCheckpoint c(std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / "fuzz" /
                                 "corpus" / "fuzz_torch_checkpoint" / "small.pt");
  EXPECT_EQ(c.tensors().size(), 4u);
  const auto& w = c.get("layer.weight", {4, 3});  // arange(12).reshape(3, 4).t()
  EXPECT_EQ(w.values, (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(c.get("layer.bias", {2}).values, (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(c.get("bf", {2}).values, (std::vector<float>{1.25f, 2.5f}));
  const auto& steps = c.get("state_dict.steps");
  EXPECT_TRUE(steps.shape.empty());
  EXPECT_EQ(steps.values, std::vector<float>{7});
}

TEST(TorchCheckpoint, RefusesWhatIsNotACheckpoint) {
  EXPECT_THROW(torch::TorchCheckpoint(std::string_view("not a zip"), "junk"), Error);
  // A Whisper ggml file is no checkpoint either.
  EXPECT_THROW(torch::TorchCheckpoint(test::whisper_model("tiny-test-f32")), Error);
  // The fuzzer's find: a tuple opcode that pops below a mark left the mark above the stack.
  EXPECT_THROW(torch::TorchCheckpoint(std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / "fuzz" /
                                      "corpus" / "fuzz_torch_checkpoint" / "mark-above-stack.pt"),
               Error);
  const torch::TorchCheckpoint c(checkpoint());
  EXPECT_EQ(c.get("lstm.weight_ih_l0", {512, 60}).count(), 512u * 60u);
  EXPECT_THROW(c.get("lstm.weight_ih_l0", {60, 512}), Error);
  EXPECT_THROW(c.get("no.such.tensor"), Error);
}

}  // namespace
}  // namespace sra::speakers
