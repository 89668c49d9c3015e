// The numeric and text steps of OpenAI's word timing, on inputs small enough to work by hand.
#include <gtest/gtest.h>

#include "engine/whisper/word_timing.h"
#include "engine/whisper_test_support.h"

namespace sra::whisper {
namespace {

TEST(WhisperWordTiming, DtwFollowsTheCheapestPath) {
  // Diagonal then right costs 0; right then diagonal costs 1.
  auto [rows, cols] = dtw({0, 1, 1, 1, 0, 0}, 2, 3);
  EXPECT_EQ(rows, (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(cols, (std::vector<int>{0, 1, 2}));
}

TEST(WhisperWordTiming, DtwBreaksTiesAsOpenAIDoes) {
  // Equal costs everywhere: only a strictly smaller predecessor wins, else the left one.
  auto [rows, cols] = dtw({0, 0, 0, 0}, 2, 2);
  EXPECT_EQ(rows, (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(cols, (std::vector<int>{0, 0, 1}));
}

TEST(WhisperWordTiming, DtwPathVisitsEveryRowAndColumn) {
  std::vector<double> x(5 * 40);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 7919) % 13) - 6;
  auto [rows, cols] = dtw(x, 5, 40);
  ASSERT_EQ(rows.size(), cols.size());
  EXPECT_EQ(rows.front(), 0);
  EXPECT_EQ(cols.front(), 0);
  EXPECT_EQ(rows.back(), 4);
  EXPECT_EQ(cols.back(), 39);
  for (std::size_t k = 1; k < rows.size(); ++k) {
    EXPECT_GE(rows[k] - rows[k - 1], 0);
    EXPECT_LE(rows[k] - rows[k - 1], 1);
    EXPECT_GE(cols[k] - cols[k - 1], 0);
    EXPECT_LE(cols[k] - cols[k - 1], 1);
    EXPECT_GT(rows[k] - rows[k - 1] + cols[k] - cols[k - 1], 0);
  }
}

TEST(WhisperWordTiming, MedianFilterReflectsAtTheEdges) {
  // Padded by reflection: 5 1 5 2 8 3 8.
  std::vector<float> x{1, 5, 2, 8, 3};
  EXPECT_EQ(median_filter(x, 1, 5, 3), (std::vector<float>{5, 2, 5, 3, 8}));
  // Two rows are filtered independently.
  std::vector<float> two{1, 5, 2, 8, 3, 0, 0, 9, 0, 0};
  EXPECT_EQ(median_filter(two, 2, 5, 3), (std::vector<float>{5, 2, 5, 3, 8, 0, 0, 0, 0, 0}));
  // A row no longer than half the width stays as it is.
  std::vector<float> short_row{3, 1, 2};
  EXPECT_EQ(median_filter(short_row, 1, 3, 7), short_row);
}

TEST(WhisperWordTiming, RoundsAsPythonDoes) {
  EXPECT_EQ(python_round(0.125, 2), 0.12);  // an exact tie goes to even
  EXPECT_EQ(python_round(0.375, 2), 0.38);
  EXPECT_EQ(python_round(2.675, 2), 2.67);  // 2.675 is 2.67499999... in binary
  EXPECT_EQ(python_round(9.220000000000002, 2), 9.22);
  EXPECT_EQ(python_round(-0.004, 2), -0.0);
}

TEST(WhisperWordTiming, PunctuationJoinsItsNeighbours) {
  std::vector<WordTiming> a{{" \"", {1}, 0, 0, 0},
                            {" Hello", {2}, 0, 0, 0},
                            {",", {3}, 0, 0, 0},
                            {" world", {4}, 0, 0, 0},
                            {".", {5}, 0, 0, 0}};
  merge_punctuations(a, "\"'\u201c\u00bf([{-",
                     "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001");
  std::vector<std::string> words;
  for (const auto& w : a) words.push_back(w.word);
  EXPECT_EQ(words, (std::vector<std::string>{"", " \" Hello,", "", " world.", ""}));
  EXPECT_EQ(a[1].tokens, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(a[3].tokens, (std::vector<int>{4, 5}));
  EXPECT_TRUE(a[0].tokens.empty());
}

TEST(WhisperWordTiming, KnownModelsUseOpenAIsHeadsOthersTheLastHalf) {
  HParams base;
  base.n_text_layer = 6;
  base.n_text_state = 512;
  base.n_text_head = 8;
  base.n_mels = 80;
  auto heads = alignment_heads(base, true);
  EXPECT_EQ(heads, (std::vector<std::pair<int, int>>{
                       {3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}}));
  EXPECT_EQ(alignment_heads(base, false).size(), 5u);  // base.en
  HParams other = base;
  other.n_text_layer = 3;
  other.n_text_head = 2;
  EXPECT_EQ(alignment_heads(other, true),
            (std::vector<std::pair<int, int>>{{1, 0}, {1, 1}, {2, 0}, {2, 1}}));
  // large-v3-turbo (OpenAI's mask decoded: 4 layers x 20 heads) and large-v3 differ only in
  // their decoder depth; large-v2 has 80 mels.
  HParams turbo;
  turbo.n_text_layer = 4;
  turbo.n_text_state = 1280;
  turbo.n_text_head = 20;
  turbo.n_mels = 128;
  EXPECT_EQ(alignment_heads(turbo, true),
            (std::vector<std::pair<int, int>>{{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}}));
  HParams v3 = turbo;
  v3.n_text_layer = 32;
  EXPECT_EQ(alignment_heads(v3, true).size(), 10u);
  EXPECT_EQ(alignment_heads(v3, true).front(), (std::pair<int, int>{7, 0}));
  HParams v2 = v3;
  v2.n_mels = 80;
  EXPECT_EQ(alignment_heads(v2, true).size(), 23u);
  EXPECT_EQ(alignment_heads(v2, true).back(), (std::pair<int, int>{27, 15}));
}

TEST(WhisperWordTiming, TokensGroupIntoWordsAtSpacesAndPunctuation) {
  const WhisperEngine& engine = test::engine("tiny-test-f32");
  const Tokenizer& tok = engine.tokenizer();
  std::vector<int> tokens = tok.encode(" Hello, wonderful world!");
  tokens.push_back(tok.special().eot);
  std::vector<std::string> words;
  std::vector<std::vector<int>> word_tokens;
  split_to_word_tokens(tok, tokens, "en", words, word_tokens);
  EXPECT_EQ(words, (std::vector<std::string>{" Hello", ",", " wonderful", " world", "!",
                                             "<|endoftext|>"}));
  std::size_t total = 0;
  for (const auto& t : word_tokens) total += t.size();
  EXPECT_EQ(total, tokens.size());
  // Languages without spaces split at characters; a character split over tokens stays whole.
  std::vector<int> ja = tok.encode("\u65e5\u672c\u8a9e");
  words.clear();
  word_tokens.clear();
  split_to_word_tokens(tok, ja, "ja", words, word_tokens);
  EXPECT_EQ(words, (std::vector<std::string>{"\u65e5", "\u672c", "\u8a9e"}));
}

}  // namespace
}  // namespace sra::whisper
