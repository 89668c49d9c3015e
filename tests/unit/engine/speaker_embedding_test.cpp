// CAM++ run natively against 3D-Speaker's own model on turns of real speech
// (tests/unit/data/make_campplus_reference.py made the references), Kaldi's filterbank shape, and
// what the embeddings are for: turns of one voice closer than turns of two.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/errors.h"
#include "engine/speakers/campplus.h"
#include "engine/speakers/fbank.h"
#include "whisper_test_support.h"

namespace sra::speakers {
namespace {

const CamPlusPlus& campplus() {
  static const CamPlusPlus m([] {
    auto path =
        std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / ".." / "models" / "campplus-zh-en.pt";
    if (!std::filesystem::exists(path))
      ADD_FAILURE() << "run `speech-recognition-api models pull campplus-zh-en` first";
    return path;
  }());
  return m;
}

std::vector<float> speech_turn(const char* file, int first_second, int seconds) {
  std::vector<float> all = audio::decode(test::read_file(test::shared_dir() / file)).samples;
  const std::size_t start = static_cast<std::size_t>(first_second) * 16000;
  const std::size_t end = std::min(all.size(), start + static_cast<std::size_t>(seconds) * 16000);
  return {all.begin() + static_cast<std::ptrdiff_t>(start),
          all.begin() + static_cast<std::ptrdiff_t>(end)};
}

struct TurnCase {
  const char* name;
  const char* file;
  int first_second, seconds;
};
const TurnCase kTurns[] = {{"jfk_0_5", "audio/jfk.wav", 0, 5},
                           {"jfk_5_11", "audio/jfk.wav", 5, 6},
                           {"seed_0_3", "audio/seed-audio.wav", 0, 3},
                           {"mix_20_23", "whisper/audio/words/long_mix.wav", 20, 3}};

TEST(CamPlusPlus, EqualsThreeDSpeakersModelOnRealSpeech) {
  ASSERT_EQ(campplus().dimension(), 192);
  for (const TurnCase& c : kTurns) {
    auto reference = test::read_npy(std::filesystem::path(SRA_UNIT_TEST_DIR) / "data" /
                                    (std::string("campplus_") + c.name + ".npy"));
    std::vector<float> x = speech_turn(c.file, c.first_second, c.seconds);
    std::vector<float> e = campplus().embed(x.data(), static_cast<int>(x.size()));
    ASSERT_EQ(e.size(), reference.values.size()) << c.name;
    double worst = 0;
    for (std::size_t i = 0; i < e.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(e[i] - reference.values[i])));
    EXPECT_LT(worst, 1e-4) << c.name;  // measured at most 1.2e-5 (values of about 0.5)
    EXPECT_GT(cosine_similarity(e, reference.values), 0.99999f) << c.name;
  }
}

TEST(CamPlusPlus, TurnsOfOneVoiceAreCloserThanTurnsOfTwo) {
  auto embed = [](const TurnCase& c) {
    std::vector<float> x = speech_turn(c.file, c.first_second, c.seconds);
    return campplus().embed(x.data(), static_cast<int>(x.size()));
  };
  auto jfk1 = embed(kTurns[0]), jfk2 = embed(kTurns[1]), other = embed(kTurns[2]);
  EXPECT_GT(cosine_similarity(jfk1, jfk2), cosine_similarity(jfk1, other) + 0.2f);
  EXPECT_GT(cosine_similarity(jfk1, jfk2), cosine_similarity(jfk2, other) + 0.2f);
  std::vector<float> too_short(1000, 0.1f);
  EXPECT_THROW(campplus().embed(too_short.data(), 1000), Error);
}

TEST(KaldiFbank, FramesAndFloor) {
  EXPECT_EQ(fbank_frames(399), 0);
  EXPECT_EQ(fbank_frames(400), 1);
  EXPECT_EQ(fbank_frames(16000), 98);
  std::vector<float> silence(16000, 0.0f);
  auto f = kaldi_fbank(silence.data(), 16000, 80);
  ASSERT_EQ(f.size(), 98u * 80u);
  for (float v : f) EXPECT_FLOAT_EQ(v, std::log(1.1920929e-07f));  // log(float epsilon)
}

}  // namespace
}  // namespace sra::speakers
