#include "service/local_agreement.h"

#include <gtest/gtest.h>

namespace sra {
namespace {

std::vector<HypothesisWord> hyp(const std::string& text) {
  return hypothesis_words({text});
}

TEST(LocalAgreement, ConfirmsWhatTwoHypothesesAgreeOn) {
  LocalAgreement a;
  EXPECT_TRUE(a.update(hyp("And so my")).empty());  // nothing to agree with yet
  EXPECT_EQ(a.update(hyp("And so my fellow")), (std::vector<std::string>{"And", "so", "my"}));
  EXPECT_EQ(a.pending(), (std::vector<std::string>{"fellow"}));
  // The next hypothesis repeats the confirmed words (with other punctuation) and goes on.
  EXPECT_EQ(a.update(hyp("and so my fellow Americans, ask")), (std::vector<std::string>{"fellow"}));
  EXPECT_EQ(a.confirmed_in_hypothesis(), 4u);
  // A hypothesis that changes its mind confirms nothing of the changed part.
  EXPECT_TRUE(a.update(hyp("And so my fellow citizens ask")).empty());
  EXPECT_EQ(a.update(hyp("And so my fellow citizens ask not")),
            (std::vector<std::string>{"citizens", "ask"}));
}

TEST(LocalAgreement, FindsConfirmedWordsWhenTheHypothesisDropsOne) {
  LocalAgreement a;
  a.update(hyp("one two three four"));
  a.update(hyp("one two three four five"));
  ASSERT_EQ(a.in_window().size(), 4u);
  // "one" is gone (the window was re-heard differently): the last confirmed words are found.
  EXPECT_TRUE(a.update(hyp("two three four five six")).size() == 1);
  EXPECT_EQ(a.in_window().back(), "five");
}

TEST(LocalAgreement, ForgetsWordsThatLeftTheWindow) {
  LocalAgreement a;
  a.update(hyp("first segment. second"));
  a.update(hyp("first segment. second one"));
  ASSERT_EQ(a.in_window().size(), 3u);
  a.forget(2);  // the window was cut after "first segment."
  EXPECT_EQ(a.in_window(), (std::vector<std::string>{"second"}));
  EXPECT_EQ(a.update(hyp("second one more")), (std::vector<std::string>{"one"}));
}

TEST(LocalAgreement, ConfirmRestTakesThePendingWords) {
  LocalAgreement a;
  a.update(hyp("a b c"));
  a.update(hyp("a b d e"));
  EXPECT_EQ(a.confirm_rest(), (std::vector<std::string>{"d", "e"}));
  EXPECT_TRUE(a.pending().empty());
  EXPECT_EQ(a.in_window().size(), 4u);
}

TEST(LocalAgreement, WordsKeepTheirSegment) {
  auto words = hypothesis_words({" Hello there.", " How are you?"});
  ASSERT_EQ(words.size(), 5u);
  EXPECT_EQ(words[1].text, "there.");
  EXPECT_EQ(words[1].segment, 0);
  EXPECT_EQ(words[2].segment, 1);
  EXPECT_EQ(word_key("Americans,"), "americans");
  EXPECT_EQ(word_key("..."), "...");
}

}  // namespace
}  // namespace sra
