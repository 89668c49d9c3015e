// decode() on every short clip against OpenAI's own outputs: token ids and text exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

struct Case {
  std::string model;      // model file name
  std::string reference;  // dev.<reference>.openai.jsonl
  std::optional<int> sample_len;
};

class DecodeMatchesOpenAI : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeMatchesOpenAI, EveryDevClip) {
  const Case& c = GetParam();
  const auto& e = test::engine(c.model);
  auto refs = test::read_jsonl(test::whisper_dir() / "reference" /
                               ("dev." + c.reference + ".openai.jsonl"));
  ASSERT_EQ(refs.size(), 50u);
  DecodingOptions options;
  options.language = "en";
  options.without_timestamps = true;
  options.sample_len = c.sample_len;
  int exact = 0;
  for (const auto& ref : refs) {
    std::string file(ref.at("file").as_string());
    Mel mel = e.mel(pad_or_trim(test::clip_samples("dev/" + file)), 0);
    DecodingResult r = e.decode(e.encode(mel), options);
    std::vector<int> want = test::int_list(ref.at("tokens"));
    EXPECT_EQ(r.tokens, want) << file;
    EXPECT_EQ(r.text, std::string(ref.at("text").as_string())) << file;
    EXPECT_NEAR(r.avg_logprob, ref.at("avg_logprob").to_number<double>(), 2e-3) << file;
    EXPECT_NEAR(r.no_speech_prob, ref.at("no_speech_prob").to_number<double>(), 1e-4) << file;
    exact += r.tokens == want;
  }
  EXPECT_EQ(exact, 50);
}

INSTANTIATE_TEST_SUITE_P(Models, DecodeMatchesOpenAI,
                         ::testing::Values(Case{"tiny-test-f32", "tiny-test", std::nullopt},
                                           Case{"tiny-test-f16", "tiny-test", std::nullopt},
                                           Case{"random-tiny-ml-f32", "random-tiny-ml", 30},
                                           Case{"random-v3-small-f32", "random-v3-small", 30}),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace sra::whisper
