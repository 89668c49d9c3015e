// Decodings that run at the same time on one engine share decoder passes (StepBatcher), and each
// gets exactly the result it gets alone: same tokens, same log-probabilities to the bit.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/errors.h"
#include "engine/whisper/engine.h"
#include "engine/whisper/thread_budget.h"
#include "whisper_test_support.h"

namespace sra::whisper {
namespace {

TEST(WhisperBatching, ConcurrentDecodingsShareStepsAndKeepTheirResults) {
  WhisperEngine engine(ModelFile::load(test::whisper_model("random-tiny-ml-f32")));
  engine.set_threads(2);
  const int n = 6;
  std::vector<std::vector<float>> features;
  std::vector<DecodingOptions> options;
  for (int i = 0; i < n; ++i) {
    auto clip = pad_or_trim(test::clip_samples("dev/dev_0000" + std::to_string(i) + ".wav"));
    features.push_back(engine.encode(engine.mel(clip, 0)));
    DecodingOptions o;
    o.language = "en";
    o.sample_len = 40;
    if (i == 1) o.beam_size = 3;  // a group of sequences in one request
    if (i == 2) {
      o.temperature = 0.6;  // best_of samples
      o.best_of = 2;
      o.seed = 7;
    }
    options.push_back(o);
  }
  std::vector<DecodingResult> alone;
  for (int i = 0; i < n; ++i) alone.push_back(engine.decode(features[i], options[i]));
  const auto before = engine.batching_stats();

  std::vector<DecodingResult> together(n);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
      threads.emplace_back([&, i] { together[i] = engine.decode(features[i], options[i]); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(together[i].tokens, alone[i].tokens) << "decoding " << i;
      EXPECT_EQ(together[i].avg_logprob, alone[i].avg_logprob) << "decoding " << i;
      EXPECT_EQ(together[i].no_speech_prob, alone[i].no_speech_prob) << "decoding " << i;
    }
  }
  const auto after = engine.batching_stats();
  EXPECT_GT(after.shared, before.shared) << "no pass served two decodings";
  // Fewer passes than steps: sequences per pass above one on average.
  EXPECT_GT(after.sequences - before.sequences, after.batches - before.batches);
  std::cout << "passes " << after.batches - before.batches << ", sequence steps "
            << after.sequences - before.sequences << ", shared passes "
            << after.shared - before.shared << "\n";
  EXPECT_EQ(ThreadBudget::active(), 0);
}

TEST(WhisperBatching, HalfCrossCacheStaysCloseAndBatchesAlike) {
  WhisperEngine exact(ModelFile::load(test::whisper_model("random-tiny-ml-f32")));
  WhisperEngine half(ModelFile::load(test::whisper_model("random-tiny-ml-f32")));
  half.set_half_cross_cache(true);
  for (int i = 0; i < 3; ++i) {
    auto clip = pad_or_trim(test::clip_samples("dev/dev_0000" + std::to_string(i) + ".wav"));
    auto features = exact.encode(exact.mel(clip, 0));
    DecodingOptions o;
    o.language = "en";
    o.sample_len = 30;
    auto a = exact.decode(features, o), b = half.decode(features, o);
    EXPECT_NEAR(a.avg_logprob, b.avg_logprob, 0.1) << i;
    EXPECT_NEAR(a.no_speech_prob, b.no_speech_prob, 0.02) << i;
    // The half cache's own results do not depend on batching either.
    std::vector<DecodingResult> together(2);
    std::thread t([&] { together[0] = half.decode(features, o); });
    together[1] = half.decode(features, o);
    t.join();
    EXPECT_EQ(together[0].tokens, b.tokens);
    EXPECT_EQ(together[1].tokens, b.tokens);
    EXPECT_EQ(together[0].avg_logprob, b.avg_logprob);
  }
  // Word timings read the half cache too (widened per layer for the alignment heads).
  TranscribeOptions t;
  t.decode.language = "en";
  t.temperatures = {0.0};
  t.word_timestamps = true;
  auto timed = half.transcribe(test::clip_samples("dev/dev_00000.wav"), t);
  std::size_t words = 0;
  for (const auto& segment : timed.segments) {
    for (const auto& w : segment.words) {
      EXPECT_LE(w.start, w.end);
      ++words;
    }
  }
  EXPECT_GT(words, 0u);
}

TEST(WhisperBatching, ChunksTranscribedTogetherEqualEachAlone) {
  WhisperEngine engine(ModelFile::load(test::whisper_model("tiny-test-f32")));
  engine.set_threads(2);
  std::vector<std::vector<float>> clips;
  for (auto file : {"dev/dev_00000.wav", "long/long_00001.wav", "dev/dev_00004.wav",
                    "dev/dev_00009.wav", "dev/dev_00012.wav"})
    clips.push_back(test::clip_samples(file));
  std::vector<const std::vector<float>*> chunks;
  for (const auto& c : clips) chunks.push_back(&c);
  TranscribeOptions o;  // timestamps, fallback (a fixed seed), conditioning within a chunk
  o.decode.language = "en";
  o.best_failed_attempt = true;
  o.seek_by_words = true;
  const auto before = engine.batching_stats();
  std::vector<std::size_t> order;
  std::vector<TranscribeResult> together(clips.size());
  engine.transcribe_batch(chunks, o, 3, [&](std::size_t i, TranscribeResult&& r) {
    order.push_back(i);
    together[i] = std::move(r);
  });
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3, 4}));  // in order, each once
  EXPECT_GT(engine.batching_stats().shared, before.shared) << "no pass served two chunks";
  for (std::size_t i = 0; i < clips.size(); ++i) {
    TranscribeResult alone = engine.transcribe(clips[i], o);
    ASSERT_EQ(together[i].segments.size(), alone.segments.size()) << "chunk " << i;
    for (std::size_t k = 0; k < alone.segments.size(); ++k) {
      EXPECT_EQ(together[i].segments[k].tokens, alone.segments[k].tokens) << i << "/" << k;
      EXPECT_EQ(together[i].segments[k].start, alone.segments[k].start) << i << "/" << k;
      EXPECT_EQ(together[i].segments[k].avg_logprob, alone.segments[k].avg_logprob);
    }
    EXPECT_EQ(together[i].text, alone.text);
  }
  // The caller's cancellation stops the batch with its own reason.
  CancelToken cancel;
  cancel.cancel("the client went away");
  o.cancel = &cancel;
  try {
    engine.transcribe_batch(chunks, o, 3, [](std::size_t, TranscribeResult&&) { FAIL(); });
    FAIL() << "a cancelled batch ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::cancelled);
    EXPECT_NE(std::string(e.what()).find("went away"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ThreadBudget::active(), 0);
}

}  // namespace
}  // namespace sra::whisper
