// MemoryBudget: a bound on the bytes a kind of buffer (uploads held in memory, say) may take in
// the whole process, so that many clients at once cannot together exhaust memory that each is
// allowed alone.
//
// A Reservation is taken empty and grows as its owner's buffer does; grow() fails, taking nothing,
// once the budget would pass its bound; the bytes come back when the Reservation is destroyed.
// Safe for concurrent use from any thread; the budget must outlive its reservations.
#pragma once

#include <atomic>
#include <cstddef>

namespace sra {

class MemoryBudget {
 public:
  explicit MemoryBudget(std::size_t bound) : bound_(bound) {}

  class Reservation {
   public:
    explicit Reservation(MemoryBudget& budget) : budget_(&budget) {}
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() { budget_->used_.fetch_sub(bytes_); }

    // Reserves `more` bytes; false (nothing taken) when the budget cannot spare them.
    bool grow(std::size_t more) {
      std::size_t used = budget_->used_.load();
      do {
        if (used + more > budget_->bound_) return false;
      } while (!budget_->used_.compare_exchange_weak(used, used + more));
      bytes_ += more;
      return true;
    }
    std::size_t bytes() const { return bytes_; }

   private:
    MemoryBudget* budget_;
    std::size_t bytes_ = 0;
  };

  std::size_t bound() const { return bound_; }
  std::size_t used() const { return used_.load(); }

 private:
  const std::size_t bound_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace sra
