// StepBatcher: merges the one-token decoder steps of the decodings that run at the same time on
// one engine (concurrent requests, each one sequence or a group of beams or samples) into one
// Decoder pass. Decoding reads every weight once per step whatever the number of sequences, so k
// sequences in one pass cost little more than one (bench/whisper-batching.md).
//
// Flat combining: a thread whose step is pending and finds no batch running runs the next batch
// (the pending steps, oldest first, up to kGemvMaxRows sequences) for everyone, with the threads
// of the callers it serves (ThreadBudget::Borrow); the others wait for their logits. Before it
// runs, it waits at most kGather for decodings that are between two steps (filtering logits,
// sampling) to submit theirs. A result never depends on the batch it was computed in: the
// kernels compute each row alike (simd_kernels.h) and each sequence attends to its own audio.
//
// Thread-safe; the engine owns one and its decodings use it from their threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <vector>

#include "engine/whisper/decoder.h"
#include "engine/whisper/engine.h"

namespace sra::whisper {

class StepBatcher {
 public:
  // The longest a batch waits for the steps of decodings between two steps.
  static constexpr std::chrono::microseconds kGather{1500};

  explicit StepBatcher(const Decoder& decoder) : decoder_(decoder) {}

  // Marks a decoding in its step loop: while one lives, a batch waits briefly for its steps.
  class Decoding {
   public:
    explicit Decoding(StepBatcher& batcher);
    ~Decoding();
    Decoding(const Decoding&) = delete;
    Decoding& operator=(const Decoding&) = delete;

   private:
    StepBatcher& batcher_;
  };

  // Feeds tokens[i] to the sequence of caches[i] (all attending to `cross`) and returns their
  // logits, tokens.size() x n_vocab. Blocks until its batch has run; may run it. Throws what the
  // pass threw, or internal_error for a full context.
  std::vector<float> step(const std::vector<int>& tokens, std::vector<SelfCache*>& caches,
                          const CrossCache& cross);

  using Stats = StepBatcherStats;
  Stats stats() const;

 private:
  struct Request {
    const std::vector<int>* tokens;
    std::vector<SelfCache*>* caches;
    const CrossCache* cross;
    std::vector<float> logits;
    std::exception_ptr error;
    bool done = false;
  };
  void run_batch(std::unique_lock<std::mutex>& lock);

  const Decoder& decoder_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Request*> pending_;
  bool running_ = false;
  int decoding_ = 0;  // decodings in their step loop
  Stats stats_;
};

}  // namespace sra::whisper
