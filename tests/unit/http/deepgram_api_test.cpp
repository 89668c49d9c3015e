#include "http/deepgram_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sra::http {
namespace {

namespace json = boost::json;

Transcription two_sentences() {
  Transcription t;
  t.duration = 6;
  t.language = "en";
  Segment a;
  a.text = " Hello, world. How are you?";
  a.words = {{" Hello,", 0.0, 0.4, 0.9}, {" world.", 0.5, 0.9, 0.8}, {" How", 1.0, 1.2, 0.7},
             {" are", 1.2, 1.4, 0.6},    {" you", 1.4, 1.6, 0.5},    {"?", 1.6, 1.6, 0.4}};
  Segment b;
  b.text = " Fine.";
  b.words = {{" Fine.", 4.0, 4.5, 1.0}};
  t.segments = {a, b};
  t.text = a.text + b.text;
  return t;
}

TEST(DeepgramApi, PlainWordsDropTheirPunctuationAndCase) {
  EXPECT_EQ(deepgram_plain_word(" Americans,"), "americans");
  EXPECT_EQ(deepgram_plain_word("\"Don't!\""), "don't");
  EXPECT_EQ(deepgram_plain_word(" 1963."), "1963");
  EXPECT_EQ(deepgram_plain_word(" ?"), "");
}

TEST(DeepgramApi, WordsTranscriptUtterancesAndParagraphs) {
  DeepgramRender r{.punctuate = true,
                   .utterances = true,
                   .utterance_split = 1.0,
                   .paragraphs = true,
                   .detected_language = true,
                   .request_id = "rid",
                   .model = "whisper",
                   .tags = {"a"},
                   .created = "2026-01-01T00:00:00.000Z"};
  json::object body = deepgram_response(two_sentences(), r);
  const auto& channel = body.at("results").at("channels").at(0).as_object();
  EXPECT_EQ(channel.at("detected_language").as_string(), "en");
  const auto& alt = channel.at("alternatives").at(0).as_object();
  // A punctuation-only word joins the word before it.
  EXPECT_EQ(alt.at("transcript").as_string(), "Hello, world. How are you? Fine.");
  ASSERT_EQ(alt.at("words").as_array().size(), 6u);
  EXPECT_EQ(alt.at("words").at(4).at("word").as_string(), "you");
  EXPECT_EQ(alt.at("words").at(4).at("punctuated_word").as_string(), "you?");
  EXPECT_NEAR(alt.at("confidence").as_double(), (0.9 + 0.8 + 0.7 + 0.6 + 0.5 + 1.0) / 6, 1e-3);
  // Utterances split at the 2.4 s pause; paragraphs at pauses of 1.5 s, sentences at . ? !
  const auto& utterances = body.at("results").at("utterances").as_array();
  ASSERT_EQ(utterances.size(), 2u);
  EXPECT_EQ(utterances[0].at("transcript").as_string(), "Hello, world. How are you?");
  EXPECT_EQ(utterances[1].at("start").as_double(), 4.0);
  const auto& paragraphs = alt.at("paragraphs").at("paragraphs").as_array();
  ASSERT_EQ(paragraphs.size(), 2u);
  ASSERT_EQ(paragraphs[0].at("sentences").as_array().size(), 2u);
  EXPECT_EQ(paragraphs[0].at("sentences").at(1).at("text").as_string(), "How are you?");
  EXPECT_EQ(paragraphs[0].at("num_words").as_int64(), 5);
  EXPECT_EQ(body.at("metadata").at("request_id").as_string(), "rid");
  EXPECT_EQ(body.at("metadata").at("tags").at(0).as_string(), "a");
}

TEST(DeepgramApi, UnpunctuatedTranscriptIsThePlainWords) {
  json::object body = deepgram_response(two_sentences(), DeepgramRender{});
  const auto& alt = body.at("results").at("channels").at(0).at("alternatives").at(0).as_object();
  EXPECT_EQ(alt.at("transcript").as_string(), "hello world how are you fine");
  EXPECT_FALSE(alt.at("words").at(0).as_object().contains("punctuated_word"));
  EXPECT_FALSE(body.at("results").as_object().contains("utterances"));
}

TEST(DeepgramApi, ErrorsNameTheParameterAtFault) {
  Response res = deepgram_error_response(invalid_field("utt_split", "expected a number"), "r1");
  EXPECT_EQ(res.result_int(), 400);
  json::object body = json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("err_code").as_string(), "Bad Request");
  EXPECT_EQ(body.at("err_msg").as_string(), "utt_split: expected a number");
  EXPECT_EQ(body.at("request_id").as_string(), "r1");
  EXPECT_EQ(deepgram_error_response(unauthorized("no"), "r").result_int(), 401);
}

TEST(QueryParameters, DecodedInOrderWithRepeats) {
  auto q = query_parameters("/v1/listen?keyterm=fellow+Americans&keyterm=caf%C3%A9&tag=&x");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"keyterm", "fellow Americans"}));
  EXPECT_EQ(q[1].second, "caf\xc3\xa9");
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"tag", ""}));
  EXPECT_EQ(q[3].first, "x");
  EXPECT_THROW(query_parameters("/?a=%zz"), Error);
  EXPECT_THROW(query_parameters("/?a=%4"), Error);
  std::string many = "/?";
  for (int i = 0; i < 129; ++i) many += "a=1&";
  EXPECT_THROW(query_parameters(many), Error);
}

}  // namespace
}  // namespace sra::http
