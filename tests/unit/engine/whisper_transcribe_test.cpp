// Long-form transcription: seeking through 30 s windows as OpenAI's transcribe() does, and the
// decoding modes that the short-clip references do not cover.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/errors.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

TranscribeOptions reference_options() {
  // transcribe(temperature=0.0, without_timestamps=True, condition_on_previous_text=False,
  //            language="en", fp16=False)
  TranscribeOptions o;
  o.temperatures = {0.0};
  o.decode.without_timestamps = true;
  o.decode.language = "en";
  o.condition_on_previous_text = false;
  return o;
}

void expect_matches_reference(const std::string& set, const std::string& file) {
  const auto& e = test::engine("tiny-test-f32");
  auto refs = test::read_jsonl(test::whisper_dir() / "reference" /
                               (set + ".tiny-test.openai_transcribe.jsonl"));
  for (const auto& ref : refs) {
    if (ref.at("file").as_string() != file) continue;
    TranscribeResult r = e.transcribe(test::clip_samples("long/" + file), reference_options());
    const auto& segments = ref.at("segments").as_array();
    ASSERT_EQ(r.segments.size(), segments.size()) << file;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& s = segments[i].as_object();
      EXPECT_EQ(r.segments[i].seek, s.at("seek").to_number<std::int64_t>())
          << file << " segment " << i;
      EXPECT_EQ(r.segments[i].tokens, test::int_list(s.at("tokens"))) << file << " segment " << i;
      EXPECT_EQ(r.segments[i].text, std::string(s.at("text").as_string()))
          << file << " segment " << i;
      EXPECT_NEAR(r.segments[i].avg_logprob, s.at("avg_logprob").to_number<double>(), 2e-3);
    }
    EXPECT_EQ(r.text, std::string(ref.at("text").as_string()));
    EXPECT_EQ(r.language, "en");
    return;
  }
  FAIL() << "no reference for " << file;
}

TEST(WhisperTranscribe, LongClipsSeekAsOpenAIDoes) {
  for (auto file : {"long_00000.wav", "long_00001.wav", "long_00002.wav"})
    expect_matches_reference("long", file);
}

TEST(WhisperTranscribe, OneFullWindow) {
  expect_matches_reference("clip30", "clip30_00000.wav");
}

TEST(WhisperDecode, ClipOfThirtySecondsReachesTheSampleLength) {
  const auto& e = test::engine("tiny-test-f32");
  auto ref =
      test::read_jsonl(test::whisper_dir() / "reference" / "clip30.tiny-test.openai.jsonl").at(0);
  DecodingOptions o;
  o.language = "en";
  o.without_timestamps = true;
  DecodingResult r =
      e.decode(e.encode(e.mel(pad_or_trim(test::clip_samples("long/clip30_00000.wav")), 0)), o);
  EXPECT_EQ(r.tokens, test::int_list(ref.at("tokens")));
  EXPECT_EQ(r.tokens.size(), 224u);
  EXPECT_NEAR(r.avg_logprob, ref.at("avg_logprob").to_number<double>(), 2e-3);
}

TEST(WhisperTranscribe, TimestampsMakeOrderedSegmentsAndNeverStall) {
  const auto& e = test::engine("tiny-test-f32");
  for (auto file : {"long/long_00001.wav", "dev/dev_00003.wav"}) {
    auto samples = test::clip_samples(file);
    TranscribeOptions o;  // OpenAI's defaults: timestamps, fallback, conditioning
    o.decode.seed = 7;
    TranscribeResult r = e.transcribe(samples, o);
    ASSERT_FALSE(r.segments.empty()) << file;
    double duration = static_cast<double>(samples.size()) / 16000.0;
    std::string joined;
    for (std::size_t i = 0; i < r.segments.size(); ++i) {
      const auto& s = r.segments[i];
      EXPECT_EQ(s.id, static_cast<int>(i));
      EXPECT_LE(s.start, s.end + 1e-9) << file;
      EXPECT_LE(s.end, duration + 30.0) << file;
      if (i > 0) {
        EXPECT_GE(s.seek, r.segments[i - 1].seek) << file;
      }
      for (int t : s.tokens) EXPECT_LT(t, e.tokenizer().n_vocab());
      joined += s.text;
    }
    EXPECT_EQ(joined, r.text) << file;
  }
  // Silence and noise end too.
  std::vector<float> silence(16000 * 45, 0.0f);
  EXPECT_NO_THROW(e.transcribe(silence, {}));
  std::vector<float> noise(16000 * 35);
  for (std::size_t i = 0; i < noise.size(); ++i)
    noise[i] = static_cast<float>(std::sin(i * 12.9898) * 0.3);
  EXPECT_NO_THROW(e.transcribe(noise, {}));
}

TEST(WhisperTranscribe, FallbackRaisesTheTemperature) {
  const auto& e = test::engine("tiny-test-f32");
  TranscribeOptions o = reference_options();
  o.temperatures = {0.0, 0.5, 1.0};
  o.compression_ratio_threshold = 0.0;  // every result "too repetitive": fall back to the end
  o.decode.seed = 1;
  TranscribeResult r = e.transcribe(test::clip_samples("dev/dev_00000.wav"), o);
  ASSERT_EQ(r.segments.size(), 1u);
  EXPECT_DOUBLE_EQ(r.segments[0].temperature, 1.0);
  // The tiny model's average log-probability is below -1 here, which alone falls back.
  o.compression_ratio_threshold = 2.4;
  r = e.transcribe(test::clip_samples("dev/dev_00000.wav"), o);
  EXPECT_GT(r.segments[0].temperature, 0.0);
  o.logprob_threshold.reset();
  r = e.transcribe(test::clip_samples("dev/dev_00000.wav"), o);
  EXPECT_DOUBLE_EQ(r.segments[0].temperature, 0.0);
}

TEST(WhisperTranscribe, KeepBestAttemptKeepsTheMostProbableOfTheFailedOnes) {
  const auto& e = test::engine("tiny-test-f32");
  TranscribeOptions o = reference_options();
  o.temperatures = {0.0, 0.5, 1.0};
  o.logprob_threshold = 0.0;  // every attempt fails (no log-probability is above 0)
  o.no_speech_threshold.reset();
  const auto clip = test::clip_samples("dev/dev_00000.wav");
  // Each attempt alone, as the fallback runs it (the same seeds: the same window and attempt).
  std::vector<TranscribeSegment> attempts;
  for (std::size_t n = 1; n <= o.temperatures.size(); ++n) {
    TranscribeOptions prefix = o;
    prefix.temperatures.assign(o.temperatures.begin(), o.temperatures.begin() + n);
    attempts.push_back(e.transcribe(clip, prefix).segments.at(0));
  }
  o.best_failed_attempt = true;
  TranscribeResult r = e.transcribe(clip, o);
  ASSERT_EQ(r.segments.size(), 1u);
  auto best = std::max_element(attempts.begin(), attempts.end(),
                               [](auto& a, auto& b) { return a.avg_logprob < b.avg_logprob; });
  ASSERT_NE(best, attempts.end() - 1) << "here an earlier attempt is the best: the test can fail";
  EXPECT_EQ(r.segments[0].tokens, best->tokens);
  EXPECT_DOUBLE_EQ(r.segments[0].avg_logprob, best->avg_logprob);
  EXPECT_DOUBLE_EQ(r.segments[0].temperature, 1.0);  // the last one: the prompt resets after it
  // Those under the compression ratio threshold come first, whatever their log-probability.
  o.compression_ratio_threshold = attempts[0].compression_ratio - 1e-6;  // the greedy one is over
  r = e.transcribe(clip, o);
  bool others_under = false;
  for (std::size_t i = 1; i < attempts.size(); ++i)
    others_under |= attempts[i].compression_ratio <= *o.compression_ratio_threshold;
  if (others_under) EXPECT_NE(r.segments[0].tokens, attempts[0].tokens);
}

TEST(WhisperTranscribe, TheDefaultSeedGivesOneTranscriptAndMinusOneDrawsNew) {
  const auto& e = test::engine("tiny-test-f32");
  TranscribeOptions o = reference_options();
  o.temperatures = {1.0};  // sampling only
  o.decode.without_timestamps = false;
  const auto clip = test::clip_samples("long/long_00001.wav");
  TranscribeResult a = e.transcribe(clip, o), b = e.transcribe(clip, o);
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < a.segments.size(); ++i)
    EXPECT_EQ(a.segments[i].tokens, b.segments[i].tokens);
  o.decode.seed.reset();
  bool differs = false;
  for (int run = 0; run < 5 && !differs; ++run) differs = e.transcribe(clip, o).text != a.text;
  EXPECT_TRUE(differs) << "five random seeds gave the fixed seed's transcript";
}

TEST(WhisperDecode, BeamOfOneIsGreedyAndWiderBeamsScoreAtLeastAsWell) {
  const auto& e = test::engine("tiny-test-f32");
  for (auto file : {"dev_00000.wav", "dev_00007.wav", "dev_00021.wav"}) {
    auto features = e.encode(e.mel(pad_or_trim(test::clip_samples(std::string("dev/") + file)), 0));
    DecodingOptions greedy;
    greedy.language = "en";
    greedy.without_timestamps = true;
    DecodingResult g = e.decode(features, greedy);
    DecodingOptions beam1 = greedy;
    beam1.beam_size = 1;
    EXPECT_EQ(e.decode(features, beam1).tokens, g.tokens) << file;
    DecodingOptions beam5 = greedy;
    beam5.beam_size = 5;
    DecodingResult b = e.decode(features, beam5);
    // Beam search ranks by sum / length; its pick is at least as likely per token as greedy's.
    double b_score =
        b.avg_logprob * (b.tokens.size() + 1) / std::max<std::size_t>(1, b.tokens.size());
    double g_score =
        g.avg_logprob * (g.tokens.size() + 1) / std::max<std::size_t>(1, g.tokens.size());
    EXPECT_GE(b_score, g_score - 1e-4) << file;
  }
}

TEST(WhisperDecode, SamplingWithBestOfIsReproducibleWithASeed) {
  const auto& e = test::engine("tiny-test-f32");
  auto features = e.encode(e.mel(pad_or_trim(test::clip_samples("dev/dev_00002.wav")), 0));
  DecodingOptions o;
  o.language = "en";
  o.temperature = 0.8;
  o.best_of = 3;
  o.seed = 42;
  DecodingResult a = e.decode(features, o), b = e.decode(features, o);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_DOUBLE_EQ(a.temperature, 0.8);
}

TEST(WhisperDecode, InvalidOptionCombinationsAreRefused) {
  const auto& e = test::engine("tiny-test-f32");
  auto features = e.encode(e.mel(pad_or_trim(test::clip_samples("dev/dev_00002.wav")), 0));
  DecodingOptions o;
  o.beam_size = 2;
  o.best_of = 2;
  EXPECT_THROW(e.decode(features, o), Error);
  DecodingOptions p;
  p.patience = 2.0;
  EXPECT_THROW(e.decode(features, p), Error);
  DecodingOptions q;
  q.best_of = 3;  // at temperature 0
  EXPECT_THROW(e.decode(features, q), Error);
}

TEST(WhisperLanguage, DetectionCoversEveryLanguageOfTheVocabulary) {
  for (auto [model, count] :
       {std::pair{"random-tiny-ml-f32", 99}, std::pair{"random-v3-small-f32", 100}}) {
    const auto& e = test::engine(model);
    auto features = e.encode(e.mel(pad_or_trim(test::clip_samples("dev/dev_00000.wav")), 0));
    auto probs = e.detect_language(features);
    EXPECT_EQ(static_cast<int>(probs.size()), count) << model;
    double sum = 0;
    for (auto& [code, p] : probs) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-6);
    EXPECT_EQ(probs.count("yue"), count == 100 ? 1u : 0u);
    // decode() without a language detects it and reports the most likely one.
    DecodingOptions o;
    o.sample_len = 5;
    DecodingResult r = e.decode(features, o);
    auto best = std::max_element(probs.begin(), probs.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
    EXPECT_EQ(r.language, best->first);
    EXPECT_EQ(r.language_probs.size(), probs.size());
  }
  EXPECT_THROW(test::engine("tiny-test-f32").detect_language(std::vector<float>(1500 * 64)), Error);
}

TEST(WhisperDecode, TranslateUsesTheTranslateToken) {
  const auto& e = test::engine("random-tiny-ml-f32");
  auto features = e.encode(e.mel(pad_or_trim(test::clip_samples("dev/dev_00001.wav")), 0));
  DecodingOptions t;
  t.language = "en";
  t.without_timestamps = true;
  t.sample_len = 10;
  DecodingOptions tr = t;
  tr.task = "translate";
  // Different task tokens in the prompt lead to different logits, hence (almost surely) tokens.
  EXPECT_NE(e.decode(features, t).avg_logprob, e.decode(features, tr).avg_logprob);
}

}  // namespace
}  // namespace sra::whisper
