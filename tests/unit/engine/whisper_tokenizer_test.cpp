#include <gtest/gtest.h>

#include "engine/whisper/tokenizer.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

TEST(WhisperTokenizer, EncodesAndDecodesEveryDevTranscript) {
  const Tokenizer& tok = test::engine("tiny-test-f32").tokenizer();
  auto clips = test::read_jsonl(test::whisper_dir() / "audio" / "dev" / "dev.jsonl");
  ASSERT_EQ(clips.size(), 50u);
  for (const auto& clip : clips) {
    std::string text(clip.at("text").as_string());
    std::vector<int> tokens = test::int_list(clip.at("tokens"));
    EXPECT_EQ(tok.encode(text), tokens) << text;
    EXPECT_EQ(tok.decode(tokens), text);
  }
}

TEST(WhisperTokenizer, MultilingualReferenceTextsDecodeByteForByte) {
  for (auto [model, ref] : {std::pair{"random-tiny-ml-f32", "random-tiny-ml"},
                            std::pair{"random-v3-small-f32", "random-v3-small"}}) {
    const Tokenizer& tok = test::engine(model).tokenizer();
    for (const auto& r : test::read_jsonl(test::whisper_dir() / "reference" /
                                          (std::string("dev.") + ref + ".openai.jsonl"))) {
      std::string text = tok.decode(test::int_list(r.at("tokens")));
      std::size_t b = text.find_first_not_of(" \t\n\r\f\v"),
                  e = text.find_last_not_of(" \t\n\r\f\v");
      text = b == std::string::npos ? "" : text.substr(b, e - b + 1);
      EXPECT_EQ(text, std::string(r.at("text").as_string()));
    }
  }
}

TEST(WhisperTokenizer, SpecialTokensForEachVocabulary) {
  const SpecialTokens& en = test::engine("tiny-test-f32").tokenizer().special();
  EXPECT_EQ(en.eot, 50256);
  EXPECT_EQ(en.sot, 50257);
  EXPECT_EQ(en.translate, 50357);
  EXPECT_EQ(en.transcribe, 50358);
  EXPECT_EQ(en.sot_lm, 50359);
  EXPECT_EQ(en.sot_prev, 50360);
  EXPECT_EQ(en.no_speech, 50361);
  EXPECT_EQ(en.no_timestamps, 50362);
  EXPECT_EQ(en.timestamp_begin, 50363);
  const Tokenizer& ml = test::engine("random-tiny-ml-f32").tokenizer();
  EXPECT_EQ(ml.special().eot, 50257);
  EXPECT_EQ(ml.special().num_languages, 99);
  EXPECT_EQ(ml.language_token("en"), 50259);
  EXPECT_EQ(ml.special().transcribe, 50359);
  EXPECT_EQ(ml.special().no_timestamps, 50363);
  EXPECT_EQ(ml.language_token("yue"), -1);
  const Tokenizer& v3 = test::engine("random-v3-small-f32").tokenizer();
  EXPECT_EQ(v3.special().num_languages, 100);
  EXPECT_EQ(v3.language_token("yue"), 50358);
  EXPECT_EQ(v3.special().transcribe, 50360);
  EXPECT_EQ(v3.special().no_timestamps, 50364);
  EXPECT_EQ(ml.decode({50258, 50259, 50359, 50363, 50364}),
            "<|startoftranscript|><|en|><|transcribe|><|notimestamps|>");
}

TEST(WhisperTokenizer, NonSpeechTokensAreOpenAIs) {
  auto nst = test::engine("random-tiny-ml-f32").tokenizer().non_speech_tokens();
  // The two ids OpenAI's list has and whisper.cpp's lacks (reference/random_models.json).
  EXPECT_TRUE(std::binary_search(nst.begin(), nst.end(), 873));
  EXPECT_TRUE(std::binary_search(nst.begin(), nst.end(), 3268));
  EXPECT_GT(nst.size(), 80u);
  EXPECT_LT(nst.size(), 100u);
}

TEST(WhisperTokenizer, InvalidUtf8IsReplacedAsPythonDoes) {
  EXPECT_EQ(utf8_replace_invalid("abc"), "abc");
  EXPECT_EQ(utf8_replace_invalid("\xe4\xb8"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8_replace_invalid("\xe4\xb8\xad"), "\xe4\xb8\xad");
  EXPECT_EQ(utf8_replace_invalid("\xff"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8_replace_invalid("\xe4"
                                 "A"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(utf8_replace_invalid("\xf0\x9f\x98"
                                 "A"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(utf8_replace_invalid("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_replace_invalid("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(WhisperTokenizer, EncodingRoundTripsArbitraryText) {
  const Tokenizer& tok = test::engine("random-tiny-ml-f32").tokenizer();
  for (std::string text : {" Hello, world! It's 2026 -- isn't it?", "  two  spaces\nnew line\t tab",
                           " Привет, мир", " 日本語のテキスト", " émigré café", " ♪♪ music ♪"}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
  EXPECT_EQ(tok.encode(" -").size(), 1u);
}

}  // namespace
}  // namespace sra::whisper
