// ThreadBudget: one budget of threads for every Whisper computation in the process, so that
// requests in parallel x threads per request never exceed it (the cores by default). Each engine
// call in flight holds a Scope; a kernel started on that thread may use
// min(the engine's cap, max(1, budget / calls in flight)) threads, computed when it starts, so a
// request running alone uses every core and two running together share them. The kernels run
// their threads on OpenMP's pool (one per calling thread, reused); OpenBLAS is kept to one thread
// per call and parallelised by the kernels, so no second pool competes.
//
// Thread-safe; Scope is per calling thread and nests (only the outermost counts).
#pragma once

namespace sra::whisper {

class ThreadBudget {
 public:
  // Threads every computation in the process shares; defaults to the CPUs the process may run
  // on (its affinity mask: taskset, cpusets).
  static void set_total(int threads);
  static int total();
  // Calls in flight now.
  static int active();
  // Threads a kernel on the calling thread may use now (1 outside any Scope).
  static int current();

  // Marks one engine call in flight on this thread, using at most `cap` threads.
  class Scope {
   public:
    explicit Scope(int cap);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    bool outermost_;
    int saved_cap_;
  };

  // While it lives, kernels on this thread also use the shares of `calls` other calls in
  // flight that wait for this thread's work (a decoder batch run for several requests).
  class Borrow {
   public:
    explicit Borrow(int calls);
    ~Borrow();
    Borrow(const Borrow&) = delete;
    Borrow& operator=(const Borrow&) = delete;

   private:
    int calls_;
  };
};

}  // namespace sra::whisper
