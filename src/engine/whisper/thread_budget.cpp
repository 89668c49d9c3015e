#include "engine/whisper/thread_budget.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace sra::whisper {
namespace {

// The CPUs this process may run on (taskset, cpusets), else the hardware's.
int hardware_threads() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int> g_total{hardware_threads()};
std::atomic<int> g_active{0};
thread_local int t_depth = 0;
thread_local int t_cap = 1;
thread_local int t_borrowed = 0;

}  // namespace

void ThreadBudget::set_total(int threads) {
  g_total = std::max(1, threads);
}
int ThreadBudget::total() {
  return g_total;
}
int ThreadBudget::active() {
  return g_active;
}

int ThreadBudget::current() {
  if (t_depth == 0) return 1;
  const int total = g_total.load();
  const int share = std::max(1, total / std::max(1, g_active.load()));
  return std::max(1, std::min(total, std::min(t_cap, share) * (1 + t_borrowed)));
}

ThreadBudget::Scope::Scope(int cap) : outermost_(t_depth == 0), saved_cap_(t_cap) {
  ++t_depth;
  if (outermost_) {
    ++g_active;
    t_cap = std::max(1, cap);
  }
}

ThreadBudget::Scope::~Scope() {
  --t_depth;
  if (outermost_) {
    --g_active;
    t_cap = saved_cap_;
  }
}

ThreadBudget::Borrow::Borrow(int calls) : calls_(std::max(0, calls)) {
  t_borrowed += calls_;
}
ThreadBudget::Borrow::~Borrow() {
  t_borrowed -= calls_;
}

}  // namespace sra::whisper
