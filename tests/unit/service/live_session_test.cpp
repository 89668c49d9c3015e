#include "service/live_session.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "audio/decoder.h"
#include "core/errors.h"
#include "test_paths.h"

namespace sra {
namespace {

using Kind = LiveEvent::Kind;

Transcription said(std::vector<std::pair<std::string, double>> segments) {
  Transcription t;
  double start = 0;
  for (auto& [text, end] : segments) {
    Segment s;
    s.text = " " + text;
    s.start = start;
    s.end = end;
    start = end;
    t.text += s.text;
    t.segments.push_back(s);
  }
  return t;
}

std::vector<float> seconds_of(double seconds, float value = 0.01f) {
  return std::vector<float>(static_cast<std::size_t>(seconds * kSampleRate), value);
}

LiveSession manual_session(LiveSettings settings = {}) {
  LiveSession live(settings, nullptr);
  LiveConfig config;
  config.turn.server_vad = false;
  config.language = "en";
  config.prompt = "Kennedy";
  live.configure(config);
  return live;
}

std::string deltas(const std::vector<LiveEvent>& events) {
  std::string text;
  for (const auto& e : events) {
    if (e.kind == Kind::delta) text += e.text;
  }
  return text;
}

TEST(LiveSession, PartialsConfirmAgreedWordsAndTheFinalCompletesTheTurn) {
  LiveSession live = manual_session();
  std::vector<LiveEvent> events;
  auto audio = seconds_of(1.2);
  live.append(audio.data(), audio.size(), events);
  auto work = live.next_work();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->kind, LiveWork::Kind::partial);
  EXPECT_EQ(work->audio.samples.size(), audio.size());
  EXPECT_EQ(work->options.at("temperature"), "0");
  EXPECT_EQ(work->options.at("language"), "en");
  EXPECT_EQ(work->options.at("prompt"), "Kennedy");
  EXPECT_FALSE(live.next_work());  // one work out at a time
  live.finish(*work, said({{"And so my", 1.2}}), events);
  EXPECT_EQ(deltas(events), "");

  EXPECT_FALSE(live.next_work());  // less than REALTIME_PARTIAL_SECONDS of new audio
  auto more = seconds_of(1.0);
  live.append(more.data(), more.size(), events);
  work = live.next_work();
  ASSERT_TRUE(work);
  live.finish(*work, said({{"And so my fellow", 2.2}}), events);
  EXPECT_EQ(deltas(events), "And so my");

  live.commit(events);
  ASSERT_EQ(events.back().kind, Kind::committed);
  EXPECT_EQ(events.back().previous_item_id, "");
  const std::string item = events.back().item_id;
  work = live.next_work();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->kind, LiveWork::Kind::final);
  EXPECT_EQ(work->audio.samples.size(), audio.size() + more.size());
  EXPECT_EQ(work->options.count("temperature"), 0u);  // as a one-shot request
  live.finish(*work, said({{"And so my fellow Americans.", 2.2}}), events);
  EXPECT_EQ(deltas(events), "And so my fellow Americans.");
  ASSERT_EQ(events.back().kind, Kind::completed);
  EXPECT_EQ(events.back().text, "And so my fellow Americans.");
  EXPECT_EQ(events.back().item_id, item);
  EXPECT_NEAR(events.back().seconds, 2.2, 1e-9);
  EXPECT_EQ(live.pending_turns(), 0u);

  // The next turn names the previous one.
  live.append(audio.data(), audio.size(), events);
  live.commit(events);
  EXPECT_EQ(events.back().previous_item_id, item);
}

TEST(LiveSession, AFinalThatDisagreesStillCompletesWithItsOwnText) {
  LiveSession live = manual_session();
  std::vector<LiveEvent> events;
  auto audio = seconds_of(2);
  live.append(audio.data(), audio.size(), events);
  live.finish(*live.next_work(), said({{"ask not what", 2}}), events);
  live.append(audio.data(), audio.size(), events);
  live.finish(*live.next_work(), said({{"ask not what your", 4}}), events);
  EXPECT_EQ(deltas(events), "ask not what");
  live.commit(events);
  live.finish(*live.next_work(), said({{"Ask not what your country", 4}}), events);
  // The words said match by their letters: the rest follows.
  EXPECT_EQ(deltas(events), "ask not what your country");
  EXPECT_EQ(events.back().text, "Ask not what your country");

  // A final that reads a said word differently: the deltas go on after it, and `completed` has
  // the final's own text.
  events.clear();
  live.append(audio.data(), audio.size(), events);
  live.finish(*live.next_work(), said({{"for you, ask whet", 2}}), events);
  live.append(audio.data(), audio.size(), events);
  live.finish(*live.next_work(), said({{"for you, ask whet you", 4}}), events);
  live.commit(events);
  live.finish(*live.next_work(), said({{"For you, ask what you can do", 4}}), events);
  EXPECT_EQ(deltas(events), "for you, ask whet you can do");
  EXPECT_EQ(events.back().text, "For you, ask what you can do");
}

TEST(LiveSession, CommitsNeedAudioAndManualTurnsAreBounded) {
  LiveSettings settings;
  settings.max_turn_seconds = 3;
  LiveSession live = manual_session(settings);
  std::vector<LiveEvent> events;
  EXPECT_THROW(live.commit(events), Error);
  auto tiny = seconds_of(0.05);
  live.append(tiny.data(), tiny.size(), events);
  EXPECT_THROW(live.commit(events), Error);  // under 100 ms
  auto two = seconds_of(2);
  live.append(two.data(), two.size(), events);
  try {
    live.append(two.data(), two.size(), events);
    FAIL() << "a manual turn past REALTIME_MAX_TURN_SECONDS was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::too_large);
  }
  live.commit(events);  // what was taken is still there
  auto work = live.next_work();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->audio.samples.size(), tiny.size() + two.size());
  live.fail(*work, "model failed", events);
  EXPECT_EQ(events.back().kind, Kind::failed);
  EXPECT_EQ(live.pending_turns(), 0u);
}

TEST(LiveSession, TheTurnBoundHoldsWhenNoTurnIsOpen) {
  LiveSettings settings;
  settings.max_turn_seconds = 10;
  LiveSession live = manual_session(settings);
  std::vector<LiveEvent> events;
  auto long_append = seconds_of(25);
  try {
    live.append(long_append.data(), long_append.size(), events);
    FAIL() << "a first append past REALTIME_MAX_TURN_SECONDS was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::too_large);
  }
  EXPECT_EQ(live.buffered_samples(), 0u);
  EXPECT_THROW(live.commit(events), Error);  // nothing was taken
}

TEST(LiveSession, WhatASessionHoldsIsBoundedWhateverTheSlicing) {
  LiveSettings settings;
  settings.max_turn_seconds = 5;
  settings.max_buffered_seconds = 12;
  LiveSession live = manual_session(settings);
  std::vector<LiveEvent> events;
  auto turn = seconds_of(4);
  // Committed turns wait (no work is taken): 3 x 4 s fill 12 s, the next append is refused whole.
  for (int i = 0; i < 3; ++i) {
    live.append(turn.data(), turn.size(), events);
    live.commit(events);
  }
  EXPECT_EQ(live.buffered_samples(), 3 * turn.size());
  auto one = seconds_of(0.5);
  try {
    live.append(one.data(), one.size(), events);
    FAIL() << "the session took audio past REALTIME_MAX_BUFFERED_SECONDS";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unavailable);
  }
  EXPECT_EQ(live.buffered_samples(), 3 * turn.size());
  // A turn's audio leaves with its final work: room again.
  auto work = live.next_work();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->samples, turn.size());
  EXPECT_EQ(live.buffered_samples(), 2 * turn.size());
  live.append(one.data(), one.size(), events);
  live.finish(*work, said({{"x", 1}}), events);
  EXPECT_EQ(events.back().kind, Kind::completed);
  EXPECT_DOUBLE_EQ(events.back().seconds, 4.0);
}

TEST(LiveSession, TheWindowIsCutAfterConfirmedSegments) {
  LiveSettings settings;
  settings.trim_seconds = 3;
  LiveSession live = manual_session(settings);
  std::vector<LiveEvent> events;
  auto chunk = seconds_of(2);
  live.append(chunk.data(), chunk.size(), events);
  live.finish(*live.next_work(), said({{"One two.", 1.5}, {"three", 2}}), events);
  live.append(chunk.data(), chunk.size(), events);
  // 4 s > 3 s: "One two." is confirmed and its segment ends at 1.5 s: the window starts there.
  live.finish(*live.next_work(), said({{"One two.", 1.5}, {"three four", 4}}), events);
  EXPECT_EQ(deltas(events), "One two. three");
  live.append(chunk.data(), chunk.size(), events);
  auto work = live.next_work();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->audio.samples.size(), static_cast<std::size_t>(4.5 * kSampleRate));
  EXPECT_EQ(work->options.at("prompt"), "Kennedy One two.");
  // The new window's hypothesis starts with the confirmed "three".
  live.finish(*work, said({{"three four five", 4.5}}), events);
  EXPECT_EQ(deltas(events), "One two. three four");
}

TEST(LiveSession, ServerVadFindsTheTurnsOfRealSpeech) {
  const auto model_path =
      std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / ".." / "models" / "silero_vad-v6.2.3.onnx";
  ASSERT_TRUE(std::filesystem::exists(model_path))
      << "scripts/test.sh pulls it: speech-recognition-api models pull silero-v6.2.3";
  auto vad = std::make_shared<const vad::SileroVad>(model_path);
  LiveSession live({}, vad);
  LiveConfig config;  // server_vad, 0.5, 300 ms padding, 500 ms silence
  live.configure(config);
  AudioBuffer jfk = audio::decode(test::read_file(test::shared_dir() / "audio" / "jfk.wav"));
  std::vector<float> stream = seconds_of(1.0, 0.0f);
  stream.insert(stream.end(), jfk.samples.begin(), jfk.samples.end());
  auto silence = seconds_of(1.5, 0.0f);
  stream.insert(stream.end(), silence.begin(), silence.end());
  std::vector<LiveEvent> events;
  for (std::size_t at = 0; at < stream.size(); at += 1600) {  // 100 ms appends
    const std::size_t n = std::min<std::size_t>(1600, stream.size() - at);
    live.append(stream.data() + at, n, events);
  }
  std::vector<std::int64_t> starts, stops;
  std::size_t committed = 0;
  for (const auto& e : events) {
    if (e.kind == Kind::speech_started) starts.push_back(e.audio_ms);
    if (e.kind == Kind::speech_stopped) stops.push_back(e.audio_ms);
    if (e.kind == Kind::committed) ++committed;
  }
  // jfk.wav: its speech starts about 0.3 s in and pauses for over half a second between phrases.
  ASSERT_GE(starts.size(), 2u);
  EXPECT_EQ(starts.size(), stops.size());
  EXPECT_EQ(committed, stops.size());
  EXPECT_GE(starts[0], 1000);
  EXPECT_LE(starts[0], 1500);
  EXPECT_GE(stops.back(), 11000);  // the last word ends near 11 s of jfk.wav
  for (std::size_t i = 0; i < starts.size(); ++i) {
    EXPECT_LT(starts[i], stops[i]);
    if (i) {
      EXPECT_GE(starts[i], stops[i - 1]);  // turns never overlap
    }
  }
  // The session holds the open turn's audio and the padding before one, never the stream.
  EXPECT_LT(
      live.buffered_samples(), static_cast<std::size_t>(kSampleRate) + [&] {
        std::size_t committed_audio = 0;
        for (std::size_t i = 0; i < stops.size(); ++i)
          committed_audio += static_cast<std::size_t>((stops[i] - starts[i]) * 16);
        return committed_audio;
      }());
  // Every committed turn's audio is exactly its span.
  for (std::size_t i = 0; i < stops.size(); ++i) {
    auto work = live.next_work();
    ASSERT_TRUE(work);
    EXPECT_EQ(work->kind, LiveWork::Kind::final);
    EXPECT_NEAR(static_cast<double>(work->audio.samples.size()) / kSampleRate,
                (stops[i] - starts[i]) / 1000.0, 0.002);
    live.finish(*work, said({{"x", 1}}), events);
  }
}

// However the client slices its audio, the turns are the same: one append of the whole stream
// gives the events of 100 ms appends.
TEST(LiveSession, OneLargeAppendGivesTheTurnsOfSmallOnes) {
  const auto model_path =
      std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / ".." / "models" / "silero_vad-v6.2.3.onnx";
  ASSERT_TRUE(std::filesystem::exists(model_path));
  auto vad = std::make_shared<const vad::SileroVad>(model_path);
  AudioBuffer jfk = audio::decode(test::read_file(test::shared_dir() / "audio" / "jfk.wav"));
  std::vector<float> stream;
  for (int i = 0; i < 3; ++i) {
    auto gap = seconds_of(1.0, 0.0f);
    stream.insert(stream.end(), gap.begin(), gap.end());
    stream.insert(stream.end(), jfk.samples.begin(), jfk.samples.end());
  }
  auto spans = [&](std::size_t piece) {
    LiveSession live({}, vad);
    live.configure(LiveConfig{});
    std::vector<LiveEvent> events;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
      live.append(stream.data() + at, std::min(piece, stream.size() - at), events);
    }
    std::vector<std::pair<Kind, std::int64_t>> out;
    for (const auto& e : events) {
      if (e.kind == Kind::speech_started || e.kind == Kind::speech_stopped) {
        out.emplace_back(e.kind, e.audio_ms);
      }
    }
    std::vector<std::size_t> sizes;
    while (auto work = live.next_work()) {
      if (work->kind != LiveWork::Kind::final) break;
      sizes.push_back(work->samples);
      live.finish(*work, said({{"x", 1}}), events);
    }
    return std::pair{out, sizes};
  };
  auto small = spans(1600);
  auto whole = spans(stream.size());
  ASSERT_GE(small.first.size(), 6u);
  EXPECT_EQ(whole.first, small.first);
  EXPECT_EQ(whole.second, small.second);
}

}  // namespace
}  // namespace sra

namespace sra {
namespace {

// semantic_vad: Silero finds the pauses, smart-turn decides. On jfk.wav it keeps phrases that
// server_vad cuts apart together, asks the model only at pauses, and still ends the last turn
// within the eagerness's longest wait; without a model it is refused and the session stays as it
// was.
TEST(LiveSession, SemanticVadWaitsOutPausesThatDoNotEndAThought) {
  const auto models = std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / ".." / "models";
  ASSERT_TRUE(std::filesystem::exists(models / "smart-turn-v3.2-cpu.onnx"))
      << "scripts/test.sh pulls it: speech-recognition-api models pull smart-turn-v3.2";
  auto vad = std::make_shared<const vad::SileroVad>(models / "silero_vad-v6.2.3.onnx");
  auto turn = std::make_shared<const vad::SmartTurn>(models / "smart-turn-v3.2-cpu.onnx");
  AudioBuffer jfk = audio::decode(test::read_file(test::shared_dir() / "audio" / "jfk.wav"));
  std::vector<float> stream = seconds_of(1.0, 0.0f);
  stream.insert(stream.end(), jfk.samples.begin(), jfk.samples.end());
  auto silence = seconds_of(5.0, 0.0f);
  stream.insert(stream.end(), silence.begin(), silence.end());
  auto stops_of = [&](bool semantic, int* checks) {
    LiveSession live({}, vad, [&] { return turn; });
    LiveConfig config;
    config.turn.semantic = semantic;
    live.configure(config);
    std::vector<LiveEvent> events;
    for (std::size_t at = 0; at < stream.size(); at += 1600) {
      live.append(stream.data() + at, std::min<std::size_t>(1600, stream.size() - at), events);
    }
    std::vector<std::int64_t> stops;
    for (const auto& e : events)
      if (e.kind == Kind::speech_stopped) stops.push_back(e.audio_ms);
    if (checks) *checks = live.turn_checks();
    return stops;
  };
  int checks = 0;
  const auto server = stops_of(false, nullptr);
  const auto semantic = stops_of(true, &checks);
  ASSERT_GE(server.size(), 3u);
  ASSERT_GE(semantic.size(), 1u);
  EXPECT_LT(semantic.size(), server.size());
  EXPECT_GE(checks, static_cast<int>(semantic.size()));    // a judgement at every pause...
  EXPECT_LE(checks, 4 * static_cast<int>(server.size()));  // ...and only at pauses
  EXPECT_GE(semantic.back(), 11000);                       // jfk's last word, 1 s in
  EXPECT_LE(semantic.back(), 12000 + 4000 + 100);          // auto's longest wait

  LiveSession without({}, vad);
  LiveConfig config;
  config.turn.semantic = true;
  EXPECT_THROW(without.configure(config), Error);
  EXPECT_FALSE(without.config().turn.semantic);
  EXPECT_EQ(semantic_policy(Eagerness::automatic).max_wait_ms, 4000);
  EXPECT_EQ(semantic_policy(Eagerness::low).max_wait_ms, 8000);
  EXPECT_EQ(semantic_policy(Eagerness::high).max_wait_ms, 2000);
}

}  // namespace
}  // namespace sra
