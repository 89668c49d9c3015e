// InferencePool: the bounded set of threads that run transcriptions, apart from the HTTP I/O
// threads, so that a long transcription never delays /health or other requests.
//
// At most `threads` jobs run at once and at most `queue_size` more wait; try_admit() refuses
// beyond that (the HTTP layer answers 503 with Retry-After). Safe for concurrent use from any
// thread. The destructor waits for admitted jobs to finish.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>

namespace sra {

struct InferencePoolOptions {
  int threads = 1;      // transcriptions that run at the same time
  int queue_size = 16;  // transcriptions that may wait for a thread; more are refused
};

class InferencePool {
 public:
  // Held by an admitted job until it ends; releases its slot on destruction.
  class Ticket {
   public:
    explicit Ticket(std::atomic<int>* count) : count_(count) {}
    Ticket(Ticket&& other) noexcept : count_(std::exchange(other.count_, nullptr)) {}
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (count_) count_->fetch_sub(1);
    }

   private:
    std::atomic<int>* count_;
  };

  explicit InferencePool(InferencePoolOptions options)
      : options_(options), pool_(static_cast<std::size_t>(options.threads)) {}
  ~InferencePool() { pool_.join(); }

  // A ticket if a slot is free, else nullptr.
  std::unique_ptr<Ticket> try_admit() {
    int now = admitted_.fetch_add(1) + 1;
    if (now > options_.threads + options_.queue_size) {
      admitted_.fetch_sub(1);
      return nullptr;
    }
    return std::make_unique<Ticket>(&admitted_);
  }

  // A ticket only if a thread is free now (nothing would wait behind others), else nullptr: for
  // work that is worth doing only at once (a live session's partial text).
  std::unique_ptr<Ticket> try_admit_idle() {
    int now = admitted_.fetch_add(1) + 1;
    if (now > options_.threads) {
      admitted_.fetch_sub(1);
      return nullptr;
    }
    return std::make_unique<Ticket>(&admitted_);
  }

  // Whether try_admit() would refuse now (a hint: another thread may take or free a slot).
  bool full() const { return admitted_.load() >= options_.threads + options_.queue_size; }

  boost::asio::thread_pool::executor_type executor() { return pool_.get_executor(); }
  int admitted() const { return admitted_.load(); }
  const InferencePoolOptions& options() const { return options_; }

 private:
  InferencePoolOptions options_;
  std::atomic<int> admitted_{0};
  boost::asio::thread_pool pool_;
};

}  // namespace sra
