#include "engine/whisper/thread_budget.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace sra::whisper {
namespace {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int> g_total{hardware_threads()};
std::atomic<int> g_active{0};
thread_local int t_depth = 0;
thread_local int t_cap = 1;

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
  const int share = std::max(1, g_total.load() / std::max(1, g_active.load()));
  return std::max(1, std::min(t_cap, share));
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

}  // namespace sra::whisper
