#include "core/dotenv.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace sra {
namespace {

std::map<std::string, std::string> parse(const std::string& text, const EnvLookup& lookup = {}) {
  return parse_dotenv(text, ".env", lookup);
}

TEST(Dotenv, PlainValuesCommentsAndBlankLines) {
  auto v = parse("# a comment\n\nMODEL=whisper\n  STORAGE = local  \nEMPTY=\n");
  EXPECT_EQ(v.at("MODEL"), "whisper");
  EXPECT_EQ(v.at("STORAGE"), "local");
  EXPECT_EQ(v.at("EMPTY"), "");
  EXPECT_EQ(v.size(), 3u);
}

TEST(Dotenv, ExportPrefix) {
  auto v = parse("export MESSAGE_BUS=embedded\nexport  X=1");
  EXPECT_EQ(v.at("MESSAGE_BUS"), "embedded");
  EXPECT_EQ(v.at("X"), "1");
}

TEST(Dotenv, InlineCommentsNeedASpace) {
  auto v = parse("A=value # comment\nB=value#not-a-comment\nC='quoted # kept' # dropped\n");
  EXPECT_EQ(v.at("A"), "value");
  EXPECT_EQ(v.at("B"), "value#not-a-comment");
  EXPECT_EQ(v.at("C"), "quoted # kept");
}

TEST(Dotenv, SingleQuotesAreLiteral) {
  auto v = parse("A='a ${HOME} \\n b'\n");
  EXPECT_EQ(v.at("A"), "a ${HOME} \\n b");
}

TEST(Dotenv, DoubleQuotesHaveEscapesAndSpanLines) {
  auto v = parse("A=\"line1\\nline2 \\\"q\\\"\"\nB=\"multi\nline\"\nC=after\n");
  EXPECT_EQ(v.at("A"), "line1\nline2 \"q\"");
  EXPECT_EQ(v.at("B"), "multi\nline");
  EXPECT_EQ(v.at("C"), "after");
}

TEST(Dotenv, ExpansionPrefersTheEnvironmentThenEarlierValues) {
  EnvLookup env = [](const std::string& k) -> std::optional<std::string> {
    if (k == "FROM_ENV") return std::string("env");
    return std::nullopt;
  };
  auto v = parse(
      "BASE=/data\nA=${BASE}/files\nB=\"${FROM_ENV}-x\"\nC=${MISSING:-fallback}\n"
      "D='${BASE}'\n",
      env);
  EXPECT_EQ(v.at("A"), "/data/files");
  EXPECT_EQ(v.at("B"), "env-x");
  EXPECT_EQ(v.at("C"), "fallback");
  EXPECT_EQ(v.at("D"), "${BASE}");
}

TEST(Dotenv, WindowsLineEndings) {
  auto v = parse("A=1\r\nB='2'\r\n");
  EXPECT_EQ(v.at("A"), "1");
  EXPECT_EQ(v.at("B"), "2");
}

TEST(Dotenv, BareKeyHasNoValue) {
  auto v = parse("JUST_A_KEY\nA=1\n");
  EXPECT_EQ(v.count("JUST_A_KEY"), 0u);
  EXPECT_EQ(v.at("A"), "1");
}

void expect_error_at(const std::string& text, const std::string& where) {
  try {
    parse(text);
    FAIL() << "no error for: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
  }
}

TEST(Dotenv, MalformedLinesNameFileAndLine) {
  expect_error_at("A=1\nthis is not valid\n", ".env:2:");
  expect_error_at("A=1\n\nB='unterminated\n", ".env:3:");
  expect_error_at("A=\"open\nstill open\n", ".env:1:");
  expect_error_at("A='x' trailing\n", ".env:1:");
  expect_error_at("=value\n", ".env:1:");
}

}  // namespace
}  // namespace sra
