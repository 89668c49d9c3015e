#include "bus/running_tasks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "bus/task_runner.h"
#include "bus/timing.h"

namespace sra::bus {
namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RunningTask::RunningTask(RunningTasks& owner, std::string id, ProgressWriter writer,
                         double min_interval)
    : owner_(owner), id_(std::move(id)), writer_(std::move(writer)), min_interval_(min_interval) {}

RunningTask::~RunningTask() {
  owner_.remove(id_, this);
}

void RunningTask::segment_done(const Segment& segment, double audio_seconds) {
  progress_.segments.push_back(segment);
  if (audio_seconds > 0) {
    progress_.fraction =
        std::max(progress_.fraction, std::clamp(segment.end / audio_seconds, 0.0, 1.0));
  }
  if (!writer_) return;
  double now = steady_seconds();
  if (now - last_write_ < min_interval_) return;
  last_write_ = now;
  try {
    writer_(progress_);
  } catch (const std::exception& e) {
    spdlog::warn("task {}: progress not stored: {}", id_, e.what());
  }
}

std::unique_ptr<RunningTask> RunningTasks::start(const std::string& id, ProgressWriter writer,
                                                 double min_interval) {
  auto task = std::make_unique<RunningTask>(*this, id, std::move(writer), min_interval);
  std::lock_guard lock(mutex_);
  tasks_.emplace(id, task.get());
  return task;
}

void RunningTasks::remove(const std::string& id, RunningTask* task) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = tasks_.equal_range(id);
  for (auto it = begin; it != end; ++it) {
    if (it->second == task) {
      tasks_.erase(it);
      return;
    }
  }
}

std::vector<std::string> RunningTasks::ids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, task] : tasks_) {
    if (out.empty() || out.back() != id) out.push_back(id);
  }
  return out;
}

void RunningTasks::cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = tasks_.equal_range(id);
  for (auto it = begin; it != end; ++it) {
    if (!it->second->cancel_token().cancelled()) {
      spdlog::info("task {}: cancelled; stopping it", id);
      it->second->cancel_token().cancel(kCancelledMessage);
    }
  }
}

void RunningTasks::watch(const CancelQuery& query, double period, std::stop_token stop) {
  while (!stop.stop_requested()) {
    auto running = ids();
    if (!running.empty()) {
      try {
        for (const auto& id : query(running)) cancel(id);
      } catch (const std::exception& e) {
        spdlog::warn("cancellation watch: {}", e.what());
      }
    }
    sleep_unless_stopped(stop, period);
  }
}

}  // namespace sra::bus
