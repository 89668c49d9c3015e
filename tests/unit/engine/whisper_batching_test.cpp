// Decodings that run at the same time on one engine share decoder passes (StepBatcher), and each
// gets exactly the result it gets alone: same tokens, same log-probabilities to the bit.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

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

}  // namespace
}  // namespace sra::whisper
