#include "bus/running_tasks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace sra::bus {
namespace {

using namespace std::chrono_literals;

Segment ending_at(double end) {
  Segment s;
  s.end = end;
  s.text = "x";
  return s;
}

TEST(RunningTasks, ProgressIsStoredAtMostOncePerIntervalAndOnlyGrows) {
  RunningTasks tasks;
  std::vector<TaskProgress> stored;
  auto task = tasks.start(
      "a", [&](const TaskProgress& p) { stored.push_back(p); }, 3600);
  task->segment_done(ending_at(5), 10);  // stored: the first report
  task->segment_done(ending_at(7), 10);  // within the interval: kept, not stored
  task->segment_done(ending_at(2), 10);  // an earlier end never lowers the fraction
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_DOUBLE_EQ(stored[0].fraction, 0.5);
  auto fast = tasks.start(
      "b", [&](const TaskProgress& p) { stored.push_back(p); }, 0);
  fast->segment_done(ending_at(3), 4);
  fast->segment_done(ending_at(9), 4);  // past the end: clamped
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_DOUBLE_EQ(stored[1].fraction, 0.75);
  EXPECT_DOUBLE_EQ(stored[2].fraction, 1.0);
  EXPECT_EQ(stored[2].segments.size(), 2u);
}

TEST(RunningTasks, AFailingWriterNeverFailsTheTask) {
  RunningTasks tasks;
  auto task = tasks.start(
      "a", [](const TaskProgress&) { throw std::runtime_error("broker down"); }, 0);
  EXPECT_NO_THROW(task->segment_done(ending_at(1), 2));
}

TEST(RunningTasks, TheWatchCancelsOnlyTheTasksItIsTold) {
  RunningTasks tasks;
  auto a = tasks.start("a", {});
  auto b = tasks.start("b", {});
  std::atomic<int> asked{0};
  std::jthread watch([&](std::stop_token stop) {
    tasks.watch(
        [&](const std::vector<std::string>& ids) {
          ++asked;
          EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));
          return std::vector<std::string>{"b"};
        },
        0.01, stop);
  });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!b->cancel_token().cancelled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(b->cancel_token().cancelled());
  EXPECT_FALSE(a->cancel_token().cancelled());
  EXPECT_THROW(b->cancel_token().check(), Error);
  watch.request_stop();
  watch.join();
  b.reset();
  EXPECT_EQ(tasks.ids(), std::vector<std::string>{"a"});  // unregistered with its owner
  EXPECT_GT(asked.load(), 0);
}

}  // namespace
}  // namespace sra::bus
