// Speaker labels put into a transcription: words by the turn that covers them, segments cut at
// speaker changes; the labels and the request options.
#include "service/speaker_labels.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/errors.h"

namespace sra {
namespace {

TEST(SpeakerLabels, LettersAndBack) {
  EXPECT_EQ(speaker_label(0), "A");
  EXPECT_EQ(speaker_label(25), "Z");
  EXPECT_EQ(speaker_label(26), "AA");
  EXPECT_EQ(speaker_label(27), "AB");
  for (int i = 0; i < 800; ++i) EXPECT_EQ(speaker_label_index(speaker_label(i)), i);
  EXPECT_EQ(speaker_label_index(""), -1);
  EXPECT_EQ(speaker_label_index("Alice"), -1);
}

TEST(SpeakerLabels, WordsTakeTheirTurnsAndSegmentsAreCut) {
  Transcription t;
  Segment s;
  s.start = 0;
  s.end = 4;
  s.text = " Hello there. Hi.";
  s.tokens = {1, 2, 3};
  s.words = {{" Hello", 0.0, 0.5, 0.9}, {" there.", 0.6, 1.2, 0.9}, {" Hi.", 2.5, 3.0, 0.8}};
  t.segments = {s, Segment{.id = 1, .start = 5, .end = 6, .text = " (no words)"}};
  speakers::Diarization d;
  d.turns = {{0.0, 1.3, 0}, {2.4, 3.2, 1}, {4.9, 6.5, 1}};
  d.speakers = 2;
  label_transcription(t, d);
  ASSERT_EQ(t.segments.size(), 3u);
  EXPECT_EQ(t.segments[0].speaker, "A");
  EXPECT_EQ(t.segments[0].text, " Hello there.");
  EXPECT_EQ(t.segments[0].start, 0);
  EXPECT_EQ(t.segments[0].end, 1.2);
  EXPECT_TRUE(t.segments[0].tokens.empty());  // the tokens were the whole segment's
  EXPECT_EQ(t.segments[1].speaker, "B");
  EXPECT_EQ(t.segments[1].text, " Hi.");
  EXPECT_EQ(t.segments[1].end, 4);
  EXPECT_EQ(t.segments[2].speaker, "B");  // by its time, having no words
  EXPECT_EQ(t.segments[2].id, 2);
  EXPECT_TRUE(t.diarized);
  ASSERT_EQ(t.speaker_turns.size(), 3u);
  EXPECT_EQ(t.speaker_turns[1].speaker, "B");
}

TEST(SpeakerLabels, RequestOptionsAreChecked) {
  EXPECT_FALSE(diarization_requested({}));
  EXPECT_FALSE(diarization_requested({{"diarize", "false"}}));
  auto o = diarization_requested({{"diarize", "true"}, {"num_speakers", "3"}});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->num_speakers, 3);
  auto field_of = [](std::map<std::string, std::string> options) {
    try {
      diarization_requested(options);
    } catch (const Error& e) {
      return e.field().value_or("");
    }
    return std::string("accepted");
  };
  EXPECT_EQ(field_of({{"num_speakers", "2"}}), "num_speakers");  // without diarize
  EXPECT_EQ(field_of({{"diarize", "true"}, {"max_speakers", "65"}}), "max_speakers");
  EXPECT_EQ(field_of({{"diarize", "true"}, {"min_speakers", "5"}, {"max_speakers", "2"}}),
            "min_speakers");
  EXPECT_EQ(field_of({{"diarize", "true"}, {"num_speakers", "9"}, {"max_speakers", "4"}}),
            "num_speakers");
  EXPECT_EQ(field_of({{"diarize", "maybe"}}), "diarize");
}

// A unit vector along axis `i` of 4, turned by `mix` toward axis (i + 1) % 4.
std::vector<float> voice(int i, float mix = 0) {
  std::vector<float> v(4, 0.0f);
  v[static_cast<std::size_t>(i)] = std::sqrt(1 - mix * mix);
  v[static_cast<std::size_t>((i + 1) % 4)] = mix;
  return v;
}

TEST(SpeakerLabels, KnownVoicesNameTheSpeakersTheyMatch) {
  speakers::Diarization d;
  d.speakers = 3;
  d.centroids = {voice(0), voice(1), voice(2)};
  // "B" is a known name: the unknown speakers' letters skip it. Each voice names one speaker,
  // the closest pair first ("bob" is nearer speaker 1 than "carol" is); a voice matching none
  // names none.
  const std::vector<KnownVoice> known = {
      {"carol", voice(1, 0.4f)}, {"bob", voice(1, 0.1f)}, {"B", voice(3)}};
  EXPECT_EQ(speaker_names(d, known, 0.5f), (std::vector<std::string>{"A", "bob", "C"}));
  EXPECT_EQ(speaker_names(d, {}, 0.5f), (std::vector<std::string>{"A", "B", "C"}));
  // Below the similarity asked for, no name is given.
  EXPECT_EQ(speaker_names(d, {{"bob", voice(3, 0.3f)}}, 0.5f),
            (std::vector<std::string>{"A", "B", "C"}));

  Transcription t;
  t.segments = {Segment{.id = 0, .start = 0, .end = 1, .text = " hi"}};
  d.turns = {{0.0, 1.0, 1}};
  label_transcription(t, d, speaker_names(d, known, 0.5f));
  EXPECT_EQ(t.segments[0].speaker, "bob");
  EXPECT_EQ(t.speaker_turns[0].speaker, "bob");
}

TEST(SpeakerLabels, KnownSpeakersAreChecked) {
  auto field_of = [](std::vector<std::string> names) {
    std::vector<KnownSpeaker> known;
    for (auto& n : names) known.push_back({n, "clip"});
    try {
      check_known_speakers(known);
    } catch (const Error& e) {
      return e.field().value_or("");
    }
    return std::string("accepted");
  };
  EXPECT_EQ(field_of({"agent", "customer", "Zoë", "B"}), "accepted");
  EXPECT_EQ(field_of({"a", "b", "c", "d", "e"}), "known_speaker_names[]");  // more than 4
  EXPECT_EQ(field_of({"agent", "agent"}), "known_speaker_names[]");
  EXPECT_EQ(field_of({""}), "known_speaker_names[]");
  EXPECT_EQ(field_of({" agent"}), "known_speaker_names[]");
  EXPECT_EQ(field_of({"a\nb"}), "known_speaker_names[]");
  EXPECT_EQ(field_of({"\xff\xfe"}), "known_speaker_names[]");  // not UTF-8
  EXPECT_EQ(field_of({std::string(65, 'x')}), "known_speaker_names[]");
}

}  // namespace
}  // namespace sra
