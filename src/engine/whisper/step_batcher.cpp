#include "engine/whisper/step_batcher.h"

#include "core/errors.h"
#include "engine/whisper/simd_kernels.h"
#include "engine/whisper/thread_budget.h"

namespace sra::whisper {

StepBatcher::Decoding::Decoding(StepBatcher& batcher) : batcher_(batcher) {
  std::lock_guard lock(batcher_.mutex_);
  ++batcher_.decoding_;
}

StepBatcher::Decoding::~Decoding() {
  std::lock_guard lock(batcher_.mutex_);
  --batcher_.decoding_;
  batcher_.changed_.notify_all();  // a batch waiting for this decoding's step stops waiting
}

std::vector<float> StepBatcher::step(const std::vector<int>& tokens,
                                     std::vector<SelfCache*>& caches, const CrossCache& cross) {
  if (tokens.size() != caches.size() || tokens.empty())
    throw internal_error("decoder step with unequal lists");
  // Checked here, so that one decoding's fault never fails the others' batch.
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (caches[i]->length + 1 > decoder_.n_ctx())
      throw internal_error("decoder context of " + std::to_string(decoder_.n_ctx()) +
                           " tokens exceeded");
    if (tokens[i] < 0 || tokens[i] >= decoder_.n_vocab())
      throw internal_error("token id out of range");
  }
  Request request{&tokens, &caches, &cross, {}, nullptr, false};
  std::unique_lock lock(mutex_);
  pending_.push_back(&request);
  changed_.notify_all();
  while (!request.done) {
    if (!running_) {
      run_batch(lock);
    } else {
      changed_.wait(lock);
    }
  }
  if (request.error) std::rethrow_exception(request.error);
  return std::move(request.logits);
}

void StepBatcher::run_batch(std::unique_lock<std::mutex>& lock) {
  running_ = true;
  // Wait (briefly) for the decodings between two steps.
  const auto deadline = std::chrono::steady_clock::now() + kGather;
  changed_.wait_until(lock, deadline,
                      [&] { return static_cast<int>(pending_.size()) >= decoding_; });
  std::vector<Request*> batch;
  int rows = 0;
  while (!pending_.empty()) {
    Request* r = pending_.front();
    const int n = static_cast<int>(r->tokens->size());
    if (!batch.empty() && rows + n > kGemvMaxRows) break;
    batch.push_back(r);
    rows += n;
    pending_.pop_front();
  }
  lock.unlock();

  std::vector<std::vector<int>> tokens;
  std::vector<SelfCache*> caches;
  std::vector<const CrossCache*> crosses;
  for (Request* r : batch) {
    for (std::size_t i = 0; i < r->tokens->size(); ++i) {
      tokens.push_back({(*r->tokens)[i]});
      caches.push_back((*r->caches)[i]);
      crosses.push_back(r->cross);
    }
  }
  std::exception_ptr error;
  std::vector<float> logits;
  try {
    // The callers served wait meanwhile: their threads work on the batch.
    ThreadBudget::Borrow threads(static_cast<int>(batch.size()) - 1);
    std::vector<float> hidden = decoder_.forward(tokens, caches, crosses);
    logits = decoder_.logits(hidden.data(), rows);
  } catch (...) {
    error = std::current_exception();
  }

  lock.lock();
  const std::size_t vocab = static_cast<std::size_t>(decoder_.n_vocab());
  std::size_t row = 0;
  for (Request* r : batch) {
    const std::size_t n = r->tokens->size();
    if (error) {
      r->error = error;
    } else {
      r->logits.assign(logits.begin() + static_cast<std::ptrdiff_t>(row * vocab),
                       logits.begin() + static_cast<std::ptrdiff_t>((row + n) * vocab));
    }
    row += n;
    r->done = true;
  }
  ++stats_.batches;
  stats_.sequences += static_cast<std::uint64_t>(rows);
  if (batch.size() > 1) ++stats_.shared;
  running_ = false;
  changed_.notify_all();
}

StepBatcher::Stats StepBatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace sra::whisper
