// What a request controls of the vocabulary: token log-probabilities, keyterm biasing (trie,
// bonuses, take-back; exactness without terms) and detection among allowed languages.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/errors.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

std::vector<float> features_of(const WhisperEngine& e, const std::string& clip) {
  return e.encode(e.mel(pad_or_trim(test::clip_samples(clip)), 0));
}

DecodingOptions english_text_only() {
  DecodingOptions o;
  o.language = "en";
  o.without_timestamps = true;
  return o;
}

// The sampled tokens' own log-probabilities add up (with the end of text's, which is not a
// token of the result) to what avg_logprob averages, greedy and beam search alike.
TEST(WhisperTokenLogprobs, EachSampledTokenHasItsOwn) {
  const auto& e = test::engine("tiny-test-f32");
  auto refs = test::read_jsonl(test::whisper_dir() / "reference" / "dev.tiny-test.openai.jsonl");
  for (int beams : {0, 4}) {
    for (std::size_t i = 0; i < 6; ++i) {
      std::string file(refs[i].at("file").as_string());
      DecodingOptions o = english_text_only();
      if (beams) o.beam_size = beams;
      DecodingResult r = e.decode(features_of(e, "dev/" + file), o);
      ASSERT_EQ(r.token_logprobs.size(), r.tokens.size()) << file;
      double sum = 0;
      for (float lp : r.token_logprobs) {
        EXPECT_LE(lp, 0.0f);
        sum += lp;
      }
      const double total = r.avg_logprob * static_cast<double>(r.tokens.size() + 1);
      EXPECT_GE(sum, total - 1e-3) << file;  // the end of text's share is <= 0
      if (!beams) {
        EXPECT_EQ(r.tokens, test::int_list(refs[i].at("tokens"))) << file;
      }
    }
  }
}

TEST(KeytermBias, BonusesFollowTheTrieAndAreTakenBack) {
  const auto& e = test::engine("tiny-test-f32");
  const Tokenizer& tok = e.tokenizer();
  KeytermBias bias(tok, {"yellow green", "  ", "nine"}, 2.0f);
  ASSERT_FALSE(bias.empty());
  const std::vector<int> yellow_green = tok.encode(" yellow green");
  const std::vector<int> nine = tok.encode(" nine");
  ASSERT_GE(yellow_green.size(), 2u);
  std::vector<float> logits(static_cast<std::size_t>(tok.n_vocab()), 0.0f);

  // Nothing matched yet: every term's first token gets the boost, nothing else.
  KeytermState s;
  bias.apply(s, -1, logits.data());
  EXPECT_FLOAT_EQ(logits[static_cast<std::size_t>(yellow_green[0])], 2.0f);
  EXPECT_FLOAT_EQ(logits[static_cast<std::size_t>(nine[0])], 2.0f);
  const int other = tok.encode(" down")[0];
  EXPECT_FLOAT_EQ(logits[static_cast<std::size_t>(other)], 0.0f);

  // Part of a term matched: its continuation gets the boost plus what the match earned.
  s = bias.advance(s, -1, yellow_green[0]);
  EXPECT_FLOAT_EQ(s.earned, 2.0f);
  std::fill(logits.begin(), logits.end(), 0.0f);
  bias.apply(s, yellow_green[0], logits.data());
  EXPECT_FLOAT_EQ(logits[static_cast<std::size_t>(yellow_green[1])], 4.0f);
  // Leaving the partial match gives its bonus back; continuing costs nothing.
  EXPECT_FLOAT_EQ(bias.take_back(s, other), -2.0f);
  EXPECT_FLOAT_EQ(bias.take_back(s, yellow_green[1]), 0.0f);
  EXPECT_EQ(bias.advance(s, yellow_green[0], other).node, -1);

  // A whole term keeps its bonus.
  KeytermState done = bias.advance(KeytermState{}, -1, nine[0]);
  for (std::size_t i = 1; i < nine.size(); ++i) done = bias.advance(done, nine[i - 1], nine[i]);
  EXPECT_FLOAT_EQ(bias.take_back(done, other), 0.0f);

  // A term longer than 16 tokens is refused, naming the field.
  try {
    KeytermBias(tok,
                {"nine nine nine nine nine nine nine nine nine nine nine nine nine nine nine "
                 "nine nine"},
                1.0f);
    FAIL() << "a 17-token term was accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.field().value_or(""), "keyterms");
  }
  EXPECT_TRUE(KeytermBias(tok, {" ", ""}, 1.0f).empty());
}

// Without terms, or with a zero boost, decoding is OpenAI's to the token; a strong boost brings
// a term in, and the reported log-probabilities stay the model's own.
TEST(KeytermBias, ExactWithoutBonusAndEffectiveWithOne) {
  const auto& e = test::engine("tiny-test-f32");
  auto refs = test::read_jsonl(test::whisper_dir() / "reference" / "dev.tiny-test.openai.jsonl");
  int brought_in = 0, absent_before = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    std::string file(refs[i].at("file").as_string());
    auto features = features_of(e, "dev/" + file);
    const std::vector<int> want = test::int_list(refs[i].at("tokens"));
    for (float boost : {0.0f, 5.0f}) {
      DecodingOptions o = english_text_only();
      o.keyterms =
          std::make_shared<const KeytermBias>(e.tokenizer(), std::vector<std::string>{}, boost);
      EXPECT_EQ(e.decode(features, o).tokens, want) << file;
    }
    DecodingOptions zero = english_text_only();
    zero.keyterms = std::make_shared<const KeytermBias>(e.tokenizer(),
                                                        std::vector<std::string>{"yellow"}, 0.0f);
    DecodingResult unbiased = e.decode(features, zero);
    EXPECT_EQ(unbiased.tokens, want) << file;

    if (std::string(refs[i].at("text").as_string()).find("yellow") != std::string::npos) continue;
    ++absent_before;
    DecodingOptions strong = english_text_only();
    strong.keyterms = std::make_shared<const KeytermBias>(e.tokenizer(),
                                                          std::vector<std::string>{"yellow"}, 8.0f);
    DecodingResult r = e.decode(features, strong);
    if (r.text.find("yellow") == std::string::npos) continue;
    ++brought_in;
    // The forced term is one the model itself thought unlikely: its own log-probability says so.
    const int yellow = e.tokenizer().encode(" yellow")[0];
    for (std::size_t t = 0; t < r.tokens.size(); ++t) {
      if (r.tokens[t] == yellow) {
        EXPECT_LT(r.token_logprobs[t], std::log(0.5f)) << file;
      }
    }
  }
  EXPECT_GT(absent_before, 0);
  EXPECT_EQ(brought_in, absent_before);
}

TEST(WhisperLanguage, DetectionAmongAllowedLanguagesKeepsTheirRatios) {
  const auto& e = test::engine("random-tiny-ml-f32");
  auto features = features_of(e, "dev/dev_00000.wav");
  auto all = e.detect_language(features);
  auto two = e.detect_language(features, {"de", "fr"});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NEAR(two["de"] + two["fr"], 1.0, 1e-9);
  EXPECT_NEAR(two["de"] / two["fr"], all["de"] / all["fr"], 1e-6 * all["de"] / all["fr"]);
  // decode() without a language picks the likelier of the allowed ones.
  DecodingOptions o;
  o.sample_len = 3;
  o.allowed_languages = {"de", "fr"};
  EXPECT_EQ(e.decode(features, o).language, two["de"] > two["fr"] ? "de" : "fr");
  try {
    e.detect_language(features, {"xx"});
    FAIL() << "no allowed language known, yet detection ran";
  } catch (const Error& err) {
    EXPECT_EQ(err.field().value_or(""), "allowed_languages");
  }
}

}  // namespace
}  // namespace sra::whisper
