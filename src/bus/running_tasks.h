// RunningTasks: the tasks one worker process is running now, for every bus: each task's cancel
// token and progress, and the watch that cancels a task once its cancellation is stored in the
// broker.
//
// A worker thread calls start() when it begins a task and keeps the returned RunningTask (the
// TaskControl its handler gets) until the outcome is stored; destroying it unregisters the task.
// RunningTask::segment_done() runs on the handler's thread: it adds the segment and, at most once
// per `min_interval` seconds, hands the progress to the bus's writer on that same thread (so the
// writer may use the thread's own broker connection); a failing writer is logged, never thrown.
// watch() runs on a thread of its own until stopped: every `period` seconds it asks the bus which
// of the running tasks were cancelled and cancels their tokens. Thread-safe; the registry must
// outlive the tasks and the watch.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "core/message_bus.h"

namespace sra::bus {

// Stores a running task's progress; may throw (the failure is logged).
using ProgressWriter = std::function<void(const TaskProgress&)>;
// Of the ids given, those whose cancellation is stored; may throw (the failure is logged).
using CancelQuery = std::function<std::vector<std::string>(const std::vector<std::string>&)>;

class RunningTasks;

class RunningTask final : public TaskControl {
 public:
  RunningTask(RunningTasks& owner, std::string id, ProgressWriter writer, double min_interval);
  ~RunningTask() override;
  RunningTask(const RunningTask&) = delete;
  RunningTask& operator=(const RunningTask&) = delete;

  CancelToken& cancel_token() override { return cancel_; }
  void segment_done(const Segment& segment, double audio_seconds) override;
  const std::string& id() const { return id_; }

 private:
  RunningTasks& owner_;
  std::string id_;
  ProgressWriter writer_;
  double min_interval_;
  // Steady seconds of the last stored progress; none yet stores the first at once, however
  // recently the machine started.
  double last_write_ = -std::numeric_limits<double>::infinity();
  TaskProgress progress_;
  CancelToken cancel_;
};

class RunningTasks {
 public:
  // Registers task `id`; `writer` stores its progress (empty: progress is not stored).
  std::unique_ptr<RunningTask> start(const std::string& id, ProgressWriter writer,
                                     double min_interval = 1.0);
  std::vector<std::string> ids() const;
  // Cancels the token of task `id` if this process runs it.
  void cancel(const std::string& id);
  // Every `period` seconds until `stop`: cancels the running tasks `query` names.
  void watch(const CancelQuery& query, double period, std::stop_token stop);

 private:
  friend class RunningTask;
  void remove(const std::string& id, RunningTask* task);

  mutable std::mutex mutex_;
  std::multimap<std::string, RunningTask*> tasks_;
};

}  // namespace sra::bus
