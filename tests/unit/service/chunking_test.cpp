// Chunking: the `chunking_strategy` values and how speech segments become chunks.
#include "service/chunking.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace sra {
namespace {

TEST(Chunking, NamedStrategies) {
  EXPECT_EQ(parse_chunking("none", "f").mode, ChunkingChoice::Mode::none);
  EXPECT_EQ(parse_chunking(" AUTO ", "f").mode, ChunkingChoice::Mode::automatic);
  ChunkingChoice c = parse_chunking("long", "f");
  EXPECT_EQ(c.mode, ChunkingChoice::Mode::long_only);
  EXPECT_FALSE(c.applies_to(30.0));
  EXPECT_TRUE(c.applies_to(30.5));
  EXPECT_TRUE(parse_chunking("auto", "f").applies_to(1.0));
  EXPECT_FALSE(parse_chunking("none", "f").applies_to(3600.0));
  // Speech is split before a chunk's 30 s, padding included.
  EXPECT_LE(c.vad.max_speech_duration_s + 2 * c.vad.speech_pad_ms / 1000.0, 30.0);
}

TEST(Chunking, ServerVadTakesOpenAIsMembersAndDefaults) {
  ChunkingChoice c = parse_chunking(R"({"type":"server_vad"})", "chunking_strategy");
  EXPECT_EQ(c.mode, ChunkingChoice::Mode::automatic);
  EXPECT_DOUBLE_EQ(c.vad.threshold, 0.5);
  EXPECT_DOUBLE_EQ(c.vad.speech_pad_ms, 300);
  EXPECT_DOUBLE_EQ(c.vad.min_silence_duration_ms, 200);
  // The form's member fields arrive as strings.
  c = parse_chunking(
      R"({"type":"server_vad","threshold":"0.3","prefix_padding_ms":100,"silence_duration_ms":"800"})",
      "chunking_strategy");
  EXPECT_DOUBLE_EQ(c.vad.threshold, 0.3);
  EXPECT_DOUBLE_EQ(c.vad.speech_pad_ms, 100);
  EXPECT_DOUBLE_EQ(c.vad.min_silence_duration_ms, 800);
}

TEST(Chunking, BadValuesNameTheirField) {
  auto field_of = [](const char* text) -> std::string {
    try {
      parse_chunking(text, "chunking_strategy");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_request);
      return e.field().value_or("");
    }
    return "accepted";
  };
  EXPECT_EQ(field_of("sometimes"), "chunking_strategy");
  EXPECT_EQ(field_of("{"), "chunking_strategy");
  EXPECT_EQ(field_of("[1]"), "chunking_strategy");
  EXPECT_EQ(field_of(R"({"threshold":0.5})"), "chunking_strategy[type]");
  EXPECT_EQ(field_of(R"({"type":"semantic_vad"})"), "chunking_strategy[type]");
  EXPECT_EQ(field_of(R"({"type":"server_vad","threshold":1.5})"), "chunking_strategy[threshold]");
  EXPECT_EQ(field_of(R"({"type":"server_vad","threshold":"nan"})"), "chunking_strategy[threshold]");
  EXPECT_EQ(field_of(R"({"type":"server_vad","prefix_padding_ms":2.5})"),
            "chunking_strategy[prefix_padding_ms]");
  EXPECT_EQ(field_of(R"({"type":"server_vad","silence_duration_ms":[1]})"),
            "chunking_strategy[silence_duration_ms]");
  EXPECT_EQ(field_of(R"({"type":"server_vad","colour":"red"})"), "chunking_strategy[colour]");
  EXPECT_EQ(field_of(std::string(600, ' ').c_str()), "chunking_strategy");
}

TEST(Chunking, SegmentsJoinWhileTheSpanFitsAChunk) {
  const std::int64_t s = 16000;
  std::vector<vad::SpeechSegment> speech = {{0, 5 * s},       {8 * s, 20 * s},
                                            {21 * s, 29 * s},  // 29 s together
                                            {31 * s, 40 * s},  // would make 40 s: a new chunk
                                            {41 * s, 95 * s},  // longer than a chunk: its own
                                            {96 * s, 97 * s}};
  auto spans = plan_chunks(speech, 30 * s);
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].start, 0);
  EXPECT_EQ(spans[0].end, 29 * s);
  EXPECT_EQ(spans[1].start, 31 * s);
  EXPECT_EQ(spans[1].end, 40 * s);
  EXPECT_EQ(spans[2].start, 41 * s);
  EXPECT_EQ(spans[2].end, 95 * s);
  EXPECT_EQ(spans[3].start, 96 * s);
  EXPECT_TRUE(plan_chunks({}, 30 * s).empty());
  // Every sample of speech is in exactly one chunk, in order.
  for (std::size_t i = 1; i < spans.size(); ++i) EXPECT_GE(spans[i].start, spans[i - 1].end);
}

}  // namespace
}  // namespace sra
