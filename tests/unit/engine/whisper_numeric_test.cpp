// Each stage of the engine on its own against OpenAI's float32 arrays for dev_00000.
#include <gtest/gtest.h>

#include <cmath>

#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

using test::engine;
using test::read_npy;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

class NumericStages : public ::testing::TestWithParam<std::string> {};

TEST_P(NumericStages, MelEncoderAndFirstLogits) {
  const std::string model = GetParam();
  const auto& e = engine(model);
  auto dir = test::whisper_dir() / "reference" / "numeric";
  auto ref_mel = read_npy(dir / (model.substr(0, model.rfind("-f32")) + "_dev_00000_mel.npy"));
  auto ref_enc =
      read_npy(dir / (model.substr(0, model.rfind("-f32")) + "_dev_00000_encoder_out.npy"));
  auto ref_logits =
      read_npy(dir / (model.substr(0, model.rfind("-f32")) + "_dev_00000_first_logits.npy"));

  Mel mel = e.mel(pad_or_trim(test::clip_samples("dev/dev_00000.wav")), 0);
  ASSERT_EQ(mel.n_mels, static_cast<int>(ref_mel.shape[0]));
  ASSERT_EQ(mel.n_frames, static_cast<int>(ref_mel.shape[1]));
  EXPECT_LT(max_abs_diff(mel.data, ref_mel.values), 1e-4);

  std::vector<float> enc = e.encode(mel);
  EXPECT_LT(max_abs_diff(enc, ref_enc.values), 1e-3);

  // Logits after <|startoftranscript|><|en|><|transcribe|><|notimestamps|>.
  const SpecialTokens& sp = e.tokenizer().special();
  Decoder decoder(e.file());
  CrossCache cross = decoder.cross_cache(enc);
  SelfCache cache;
  std::vector<SelfCache*> caches{&cache};
  std::vector<int> prompt{sp.sot, e.tokenizer().language_token("en"), sp.transcribe,
                          sp.no_timestamps};
  std::vector<float> hidden = decoder.forward({prompt}, caches, cross);
  std::vector<float> logits = decoder.logits(hidden.data() + 3 * decoder.width(), 1);
  EXPECT_LT(max_abs_diff(logits, ref_logits.values), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(RandomModels, NumericStages,
                         ::testing::Values("random-tiny-ml-f32", "random-v3-small-f32"));

}  // namespace
}  // namespace sra::whisper
