#include "models/pocketsphinx_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <sstream>

#include "audio/decoder.h"
#include "core/errors.h"
#include "test_paths.h"
#include "word_error_rate.h"

namespace sra {
namespace {

std::unique_ptr<Model> default_model() {
  return make_pocketsphinx_model(pocketsphinx_options_from(Config()));
}

AudioBuffer raw_pcm16(const std::string& bytes) {
  AudioBuffer a;
  a.samples.resize(bytes.size() / 2);
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    std::int16_t v;
    std::memcpy(&v, bytes.data() + 2 * i, 2);
    a.samples[i] = static_cast<float>(v) / 32768.0f;
  }
  return a;
}

TEST(PocketSphinx, GoForwardTenMeters) {
  auto model = default_model();
  auto audio = raw_pcm16(test::read_file(test::pocketsphinx_testdata() / "goforward.raw"));
  EXPECT_EQ(model->transcribe(audio, {}).text, "go forward ten meters");
}

TEST(PocketSphinx, LibrivoxWordErrorRateIsBounded) {
  auto model = default_model();
  auto dir = test::pocketsphinx_testdata() / "librivox";
  std::istringstream refs(test::read_file(dir / "transcription"));
  std::string line;
  std::size_t errors = 0, words = 0;
  while (std::getline(refs, line)) {
    auto open = line.rfind('(');
    std::string id = line.substr(open + 1, line.rfind(')') - open - 1);
    std::string ref = line.substr(0, open);
    ref = ref.substr(ref.find("<s>") + 3);
    ref = ref.substr(0, ref.find("</s>"));
    auto audio = audio::decode(test::read_file(dir / (id + ".wav")));
    auto t = model->transcribe(audio, {});
    auto r = test::word_errors(ref, t.text);
    errors += r.errors;
    words += r.reference_words;
  }
  ASSERT_GT(words, 50u);
  double wer = static_cast<double>(errors) / words;
  EXPECT_LT(wer, 0.35) << "word error rate " << wer;
}

TEST(PocketSphinx, ConcurrentCallsGiveTheSameText) {
  auto model = default_model();
  auto audio = raw_pcm16(test::read_file(test::pocketsphinx_testdata() / "goforward.raw"));
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < 4; ++i) {
    results.push_back(
        std::async(std::launch::async, [&] { return model->transcribe(audio, {}).text; }));
  }
  for (auto& r : results) EXPECT_EQ(r.get(), "go forward ten meters");
}

TEST(PocketSphinx, LongAudioIsCutIntoTimedSegments) {
  PocketSphinxOptions options = pocketsphinx_options_from(Config());
  options.chunk_seconds = 4;
  auto model = make_pocketsphinx_model(options);
  auto audio = audio::decode(test::read_file(test::shared_dir() / "audio" / "seed-audio.wav"));
  Transcription t = model->transcribe(audio, {});
  ASSERT_GE(t.segments.size(), 3u);
  EXPECT_NEAR(t.duration, audio.seconds(), 1e-6);
  for (std::size_t i = 1; i < t.segments.size(); ++i) {
    EXPECT_GE(t.segments[i].start, t.segments[i - 1].end - 1e-9);
    EXPECT_LE(t.segments[i].end - t.segments[i].start, 4.0 + 1e-9);
  }
}

TEST(PocketSphinx, MissingModelFilesNameTheVariable) {
  PocketSphinxOptions options = pocketsphinx_options_from(Config());
  options.dictionary = "/nonexistent.dict";
  try {
    make_pocketsphinx_model(options);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("POCKETSPHINX_DICT"), std::string::npos);
  }
}

}  // namespace
}  // namespace sra
