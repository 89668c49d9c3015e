// faster-whisper's speech segmentation and time map on probabilities small enough to follow by
// hand (the integration tests compare both with faster-whisper's own code on real audio).
#include <gtest/gtest.h>

#include "engine/vad/speech_timestamps.h"
#include "service/voice_activity.h"

namespace sra::vad {
namespace {

std::vector<std::pair<std::int64_t, std::int64_t>> pairs(const std::vector<SpeechSegment>& s) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const auto& x : s) out.emplace_back(x.start, x.end);
  return out;
}

TEST(VadSpeechTimestamps, SpeechEndsAfterEnoughSilence) {
  std::vector<float> p{0.1f, 0.1f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
  VadOptions o;
  o.min_silence_duration_ms = 64;  // two windows
  o.speech_pad_ms = 0;
  EXPECT_EQ(pairs(speech_timestamps(p, 5120, o)), (decltype(pairs({})){{1024, 2048}}));
  o.speech_pad_ms = 32;  // one window each side
  EXPECT_EQ(pairs(speech_timestamps(p, 5120, o)), (decltype(pairs({})){{512, 2560}}));
  o.min_speech_duration_ms = 64;  // 1024 samples is not longer than 1024: dropped
  EXPECT_TRUE(speech_timestamps(p, 5120, o).empty());
  o.min_speech_duration_ms = 0;
  o.threshold = 0.95;  // nothing reaches it
  EXPECT_TRUE(speech_timestamps(p, 5120, o).empty());
}

TEST(VadSpeechTimestamps, CloseNeighboursShareTheGap) {
  std::vector<float> p{0.1f, 0.1f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f, 0.9f, 0.9f, 0.1f};
  VadOptions o;
  o.min_silence_duration_ms = 64;
  o.speech_pad_ms = 32;  // the gap of 1536 is wider than two pads: each gets its pad
  EXPECT_EQ(pairs(speech_timestamps(p, 5120, o)), (decltype(pairs({})){{512, 2560}, {3072, 5120}}));
  o.speech_pad_ms = 64;  // narrower than two pads: split in the middle
  EXPECT_EQ(pairs(speech_timestamps(p, 5120, o)), (decltype(pairs({})){{0, 2816}, {2816, 5120}}));
}

TEST(VadSpeechTimestamps, LongSpeechIsSplit) {
  std::vector<float> p(40, 0.9f);
  VadOptions o;
  o.speech_pad_ms = 0;
  o.max_speech_duration_s = 0.5;  // 8000 - 512 samples
  auto s = speech_timestamps(p, 40 * 512, o);
  ASSERT_GE(s.size(), 2u);
  for (const auto& x : s) EXPECT_LE(x.end - x.start, 8000);
  EXPECT_EQ(s.front().start, 0);
}

TEST(VadSpeechMap, TimesMapBackThroughTheRemovedSilence) {
  SpeechMap map({{16000, 32000}, {48000, 64000}});  // 1 s, then 2 s of silence removed
  EXPECT_DOUBLE_EQ(map.original_time(0.5), 1.5);
  EXPECT_DOUBLE_EQ(map.original_time(1.5), 3.5);
  EXPECT_DOUBLE_EQ(map.original_time(1.0), 3.0);        // a start at the boundary: the next one
  EXPECT_DOUBLE_EQ(map.original_time(1.0, true), 2.0);  // an end at the boundary: its own
  EXPECT_EQ(map.segment_index(9.0), 1u);                // past the end: the last segment
}

TEST(VadSpeechMap, WordsKeepTheSegmentOfTheirMiddle) {
  SpeechOnly speech;
  speech.segments = {{16000, 32000}, {48000, 64000}};
  Transcription t;
  Segment s;
  s.start = 0.9;
  s.end = 1.3;
  s.words = {{" a", 0.90, 0.98, 1}, {" b", 0.98, 1.30, 1}};
  t.segments = {s};
  restore_times(t, speech);
  const auto& w = t.segments[0].words;
  EXPECT_DOUBLE_EQ(w[0].start, 1.9);  // middle 0.94: the first segment (1 s removed)
  EXPECT_DOUBLE_EQ(w[0].end, 1.98);
  EXPECT_DOUBLE_EQ(w[1].start, 2.98);  // middle 1.14: the second segment (2 s removed)
  EXPECT_DOUBLE_EQ(w[1].end, 3.3);
  EXPECT_DOUBLE_EQ(t.segments[0].start, 1.9);
  EXPECT_DOUBLE_EQ(t.segments[0].end, 3.3);
}

}  // namespace
}  // namespace sra::vad
