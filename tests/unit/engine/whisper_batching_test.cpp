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

}  // namespace
}  // namespace sra::whisper
