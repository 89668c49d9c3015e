// srt and vtt from word times, laid out as whisper.utils' subtitle writers do; verbose_json's
// words list in OpenAI's shape.
#include "http/formats.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra::http {
namespace {

Transcription two_segments() {
  Transcription t;
  Segment a;
  a.start = 0;
  a.end = 1.5;
  a.text = " Hello big world.";
  a.words = {{" Hello", 0.0, 0.5, 0.9}, {" big", 0.5, 1.0, 0.9}, {" world.", 1.0, 1.5, 0.9}};
  Segment b;
  b.start = 5;
  b.end = 6;
  b.text = " Next line";
  b.words = {{" Next", 5.0, 5.5, 0.9}, {" line", 5.5, 6.0, 0.9}};
  t.segments = {a, b};
  t.text = "Hello big world. Next line";
  t.duration = 6;
  return t;
}

std::string srt(const Transcription& t, SubtitleOptions o) {
  RenderOptions r;
  r.subtitles = o;
  return render(t, ResponseFormat::srt, "transcribe", r);
}

TEST(SubtitleLayout, WithoutOptionsACuePerSegment) {
  EXPECT_EQ(srt(two_segments(), {}),
            "1\n00:00:00,000 --> 00:00:01,500\nHello big world.\n\n"
            "2\n00:00:05,000 --> 00:00:06,000\nNext line\n\n");
}

TEST(SubtitleLayout, LineWidthAndCountBreakCuesAndLongPauses) {
  SubtitleOptions o;
  o.max_line_width = 10;
  o.max_line_count = 1;
  EXPECT_EQ(srt(two_segments(), o),
            "1\n00:00:00,000 --> 00:00:01,000\nHello big\n\n"
            "2\n00:00:01,000 --> 00:00:01,500\nworld.\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nNext line\n\n");
  o.max_line_count = 2;
  EXPECT_EQ(srt(two_segments(), o),
            "1\n00:00:00,000 --> 00:00:01,500\nHello big\nworld.\n\n"
            "2\n00:00:05,000 --> 00:00:06,000\nNext line\n\n");
}

TEST(SubtitleLayout, WordsPerLine) {
  SubtitleOptions o;
  o.max_words_per_line = 2;
  EXPECT_EQ(srt(two_segments(), o),
            "1\n00:00:00,000 --> 00:00:01,000\nHello big\n\n"
            "2\n00:00:01,000 --> 00:00:01,500\nworld.\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nNext line\n\n");
}

TEST(SubtitleLayout, HighlightedWordsAndTheGapsBetweenThem) {
  Transcription t;
  Segment s;
  s.start = 0;
  s.end = 1;
  s.text = " Hello world";
  s.words = {{" Hello", 0.0, 0.5, 1}, {" world", 0.7, 1.0, 1}};
  t.segments = {s};
  RenderOptions r;
  r.subtitles.highlight_words = true;
  EXPECT_EQ(render(t, ResponseFormat::vtt, "transcribe", r),
            "WEBVTT\n\n"
            "00:00:00.000 --> 00:00:00.500\n<u>Hello</u> world\n\n"
            "00:00:00.500 --> 00:00:00.700\nHello world\n\n"
            "00:00:00.700 --> 00:00:01.000\nHello <u>world</u>\n\n");
}

TEST(SubtitleLayout, NoWordsMeansACuePerSegmentWithText) {
  Transcription t = two_segments();
  for (auto& s : t.segments) s.words.clear();
  t.segments[0].text = " a --> b";
  EXPECT_EQ(srt(t, {}),
            "1\n00:00:00,000 --> 00:00:01,500\na -> b\n\n"
            "2\n00:00:05,000 --> 00:00:06,000\nNext line\n\n");
}

TEST(SubtitleLayout, OptionsAreCheckedAgainstTheirBounds) {
  auto fields = [](std::map<std::string, std::string> m) {
    return [m](const std::string& name) -> std::optional<std::string> {
      auto it = m.find(name);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  SubtitleOptions o = parse_subtitle_options(
      fields({{"max_line_width", "42"}, {"highlight_words", "true"}, {"max_line_count", "none"}}));
  EXPECT_EQ(o.max_line_width, 42);
  EXPECT_TRUE(o.highlight_words);
  EXPECT_FALSE(o.max_line_count);
  EXPECT_TRUE(o.any());
  try {
    parse_subtitle_options(fields({{"max_line_width", "0"}}));
    FAIL() << "0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "max_line_width");
  }
  EXPECT_THROW(parse_subtitle_options(fields({{"max_words_per_line", "1e9"}})), Error);
  // A cue holds at most 10 lines of 200 characters: highlight_words writes a cue per word, each
  // with its whole cue, so these bound the response.
  EXPECT_THROW(parse_subtitle_options(fields({{"max_line_width", "201"}})), Error);
  EXPECT_THROW(parse_subtitle_options(fields({{"max_line_count", "11"}})), Error);
}

TEST(VerboseJson, WordsInOpenAIsShapeAndSegmentsOnRequest) {
  RenderOptions r;
  r.words = true;
  r.segments = false;
  auto v = verbose_json(two_segments(), "transcribe", r).as_object();
  EXPECT_FALSE(v.contains("segments"));
  const auto& words = v.at("words").as_array();
  ASSERT_EQ(words.size(), 5u);
  EXPECT_EQ(words[0].as_object().at("word").as_string(), "Hello");
  EXPECT_EQ(words[2].as_object().at("word").as_string(), "world.");
  EXPECT_EQ(words[3].as_object().at("start").as_double(), 5.0);
  EXPECT_EQ(words[0].as_object().at("probability").as_double(), 0.9);
  r.segments = true;
  EXPECT_EQ(
      verbose_json(two_segments(), "transcribe", r).as_object().at("segments").as_array().size(),
      2u);
  EXPECT_FALSE(verbose_json(two_segments(), "transcribe").as_object().contains("words"));
}

}  // namespace
}  // namespace sra::http
