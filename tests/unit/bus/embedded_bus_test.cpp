#include "bus/embedded_bus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "bus/sqlite_db.h"
#include "core/errors.h"
#include "test_paths.h"

namespace sra {
namespace {

using namespace std::chrono_literals;

EmbeddedBusOptions fast_options(const test::TempDir& dir) {
  EmbeddedBusOptions o;
  o.database_path = (dir.path() / "db" / "tasks.sqlite3").string();
  o.lease_seconds = 1;
  o.max_attempts = 3;
  o.retry_delay_seconds = 0.02;
  o.poll_seconds = 0.02;
  o.cancel_poll_seconds = 0.02;
  return o;
}

using SimpleHandler = std::function<Transcription(const TaskRequest&)>;

// Runs the bus's workers until destroyed.
class Workers {
 public:
  Workers(MessageBus& bus, SimpleHandler handler, int concurrency = 1,
          std::function<void(const TaskRequest&)> on_finished = {})
      : Workers(bus, TaskHandler([h = std::move(handler)](const TaskRequest& r, TaskControl&) {
                  return h(r);
                }),
                concurrency, std::move(on_finished)) {}
  Workers(MessageBus& bus, TaskHandler handler, int concurrency = 1,
          std::function<void(const TaskRequest&)> on_finished = {})
      : handler_(std::move(handler)),
        on_finished_(std::move(on_finished)),
        thread_([&bus, this, concurrency](std::stop_token stop) {
          bus.run_worker({.concurrency = concurrency, .on_finished = on_finished_}, handler_, stop);
        }) {}

 private:
  TaskHandler handler_;
  std::function<void(const TaskRequest&)> on_finished_;
  std::jthread thread_;
};

TaskResult wait_for_end(MessageBus& bus, const std::string& id) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = bus.get_task_result(id);
    if (!r) throw std::runtime_error("task vanished");
    if (r->status != TaskStatus::pending) return *r;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("task did not finish");
}

Transcription text(const std::string& t) {
  Transcription out;
  out.text = t;
  return out;
}

TEST(EmbeddedBus, UnknownAndHostileIdsAreNotFound) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  EXPECT_EQ(bus->get_task_result("9b2f9a0e-3f5e-4a4c-8d3e-2c7d1f0b6a11"), std::nullopt);
  EXPECT_EQ(bus->get_task_result("../../etc/passwd"), std::nullopt);
  EXPECT_EQ(bus->get_task_result("' OR 1=1 --"), std::nullopt);
}

TEST(EmbeddedBus, TaskRunsToSuccessWithItsRequest) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::string id = bus->create_task({"file-1", R"({"language":"en"})"});
  EXPECT_EQ(bus->get_task_result(id)->status, TaskStatus::pending);
  std::mutex m;
  TaskRequest seen;
  Workers w(*bus, [&](const TaskRequest& r) {
    std::lock_guard lock(m);
    seen = r;
    Transcription t = text("hello world");
    t.segments.push_back(
        {.id = 0, .start = 0.5, .end = 1.5, .text = "hello world", .tokens = {1, 2}});
    return t;
  });
  TaskResult r = wait_for_end(*bus, id);
  EXPECT_EQ(r.status, TaskStatus::success);
  ASSERT_TRUE(r.transcription.has_value());
  EXPECT_EQ(r.transcription->text, "hello world");
  ASSERT_EQ(r.transcription->segments.size(), 1u);
  EXPECT_EQ(r.transcription->segments[0].tokens, (std::vector<int>{1, 2}));
  std::lock_guard lock(m);
  EXPECT_EQ(seen.file_id, "file-1");
  EXPECT_EQ(seen.options_json, R"({"language":"en"})");
}

TEST(EmbeddedBus, InputErrorsFailOnceWithTheReason) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::atomic<int> calls{0};
  std::string id = bus->create_task({"bad", "{}"});
  Workers w(*bus, [&](const TaskRequest&) -> Transcription {
    ++calls;
    throw unsupported_media("not audio");
  });
  TaskResult r = wait_for_end(*bus, id);
  EXPECT_EQ(r.status, TaskStatus::failed);
  EXPECT_EQ(r.error, "not audio");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(calls.load(), 1);
}

TEST(EmbeddedBus, InfrastructureErrorsAreRetriedThenFailed) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::map<std::string, int> calls;
  std::mutex m;
  std::string flaky = bus->create_task({"flaky", "{}"});
  std::string broken = bus->create_task({"broken", "{}"});
  Workers w(*bus, [&](const TaskRequest& r) -> Transcription {
    int n;
    {
      std::lock_guard lock(m);
      n = ++calls[r.file_id];
    }
    if (r.file_id == "flaky" && n == 2) return text("second time lucky");
    throw unavailable("storage is down");
  });
  TaskResult a = wait_for_end(*bus, flaky);
  EXPECT_EQ(a.status, TaskStatus::success);
  EXPECT_EQ(a.transcription->text, "second time lucky");
  TaskResult b = wait_for_end(*bus, broken);
  EXPECT_EQ(b.status, TaskStatus::failed);
  EXPECT_NE(b.error->find("storage is down"), std::string::npos);
  std::lock_guard lock(m);
  EXPECT_EQ(calls["flaky"], 2);
  EXPECT_EQ(calls["broken"], 3);
}

TEST(EmbeddedBus, AcceptedTasksSurviveARestart) {
  test::TempDir dir;
  std::string id;
  {
    auto bus = make_embedded_bus(fast_options(dir));
    id = bus->create_task({"kept", "{}"});
  }
  auto bus = make_embedded_bus(fast_options(dir));
  Workers w(*bus, [](const TaskRequest& r) { return text("after restart: " + r.file_id); });
  TaskResult r = wait_for_end(*bus, id);
  EXPECT_EQ(r.transcription->text, "after restart: kept");
}

TEST(EmbeddedBus, TaskOfADeadWorkerIsTakenAgainAfterItsLease) {
  test::TempDir dir;
  auto options = fast_options(dir);
  auto bus = make_embedded_bus(options);
  std::string orphan = bus->create_task({"orphan", "{}"});
  std::string poison = bus->create_task({"poison", "{}"});
  {
    // What a worker killed mid-task leaves: RUNNING, owned by nobody alive, lease running out.
    SqliteDb db(options.database_path);
    db.prepare(
          "UPDATE tasks SET status='RUNNING', owner='dead/0', attempts=1, lease_until=? "
          "WHERE id=?")
        .bind(1, static_cast<double>(std::time(nullptr)) + 0.5)
        .bind(2, orphan)
        .step();
    // One that already killed its worker max_attempts times.
    db.prepare(
          "UPDATE tasks SET status='RUNNING', owner='dead/0', attempts=3, lease_until=0 "
          "WHERE id=?")
        .bind(1, poison)
        .step();
  }
  std::atomic<int> calls{0};
  Workers w(*bus, [&](const TaskRequest& r) {
    ++calls;
    return text("rescued " + r.file_id);
  });
  EXPECT_EQ(wait_for_end(*bus, orphan).transcription->text, "rescued orphan");
  TaskResult p = wait_for_end(*bus, poison);
  EXPECT_EQ(p.status, TaskStatus::failed);
  EXPECT_NE(p.error->find("gave up after 3 deliveries"), std::string::npos) << *p.error;
  EXPECT_EQ(calls.load(), 1);
}

TEST(EmbeddedBus, OnFinishedRunsOnlyOnceTheOutcomeIsStored) {
  // DELETE_AUDIO_AFTER_TASK hangs off this hook: were it called before the result is committed, a
  // crash in between would leave a task whose audio is gone and whose result was never stored.
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::string ok = bus->create_task({"ok", "{}"});
  std::string bad = bus->create_task({"bad", "{}"});
  std::mutex m;
  std::map<std::string, TaskStatus> seen_at_hook;
  Workers w(
      *bus,
      [&](const TaskRequest& r) -> Transcription {
        if (r.file_id == "bad") throw Error(ErrorKind::invalid_request, "unreadable audio");
        return text("fine");
      },
      1,
      [&](const TaskRequest& r) {
        auto id = r.file_id == "ok" ? ok : bad;
        auto status = bus->get_task_result(id)->status;
        std::lock_guard lock(m);
        seen_at_hook[r.file_id] = status;
      });
  wait_for_end(*bus, ok);
  wait_for_end(*bus, bad);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(m);
      if (seen_at_hook.size() == 2) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  std::lock_guard lock(m);
  EXPECT_EQ(seen_at_hook["ok"], TaskStatus::success);
  EXPECT_EQ(seen_at_hook["bad"], TaskStatus::failed);
}

TEST(EmbeddedBus, ATaskWhoseResultCouldNotBeStoredRunsAgainAfterItsLease) {
  // The lease of a task is renewed only while a thread runs it: when storing its result fails,
  // the row must expire and be delivered again, not stay RUNNING forever under a live process.
  test::TempDir dir;
  auto options = fast_options(dir);
  auto bus = make_embedded_bus(options);
  std::string id = bus->create_task({"f", "{}"});
  {
    // The result write of the first delivery fails; the second's goes through.
    SqliteDb db(options.database_path);
    db.prepare(
          "CREATE TRIGGER refuse_results BEFORE UPDATE OF result ON tasks "
          "WHEN NEW.result IS NOT NULL AND OLD.attempts = 1 "
          "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
        .step();
  }
  std::atomic<int> calls{0};
  // With leases renewed for every row this process owns (not only those a thread runs), the
  // task would stay RUNNING and never finish.
  Workers w(*bus, [&](const TaskRequest&) {
    ++calls;
    return text("stored at last");
  });
  TaskResult r = wait_for_end(*bus, id);
  EXPECT_EQ(r.status, TaskStatus::success);
  EXPECT_EQ(r.transcription->text, "stored at last");
  EXPECT_EQ(calls.load(), 2);
}

TEST(EmbeddedBus, ShortestAudioFirstButNoTaskWaitsPastTheAgeBound) {
  test::TempDir dir;
  auto options = fast_options(dir);
  options.age_bound_seconds = 60;
  auto bus = make_embedded_bus(options);
  std::string old_long = bus->create_task({"old-long", "{}", 600, 1});
  std::string long_one = bus->create_task({"long", "{}", 300, 1});
  std::string short_one = bus->create_task({"short", "{}", 5, 1});
  std::string middle = bus->create_task({"middle", "{}", 30, 1});
  {
    // This one has waited past the age bound: it goes first, whatever its length.
    SqliteDb db(options.database_path);
    db.prepare("UPDATE tasks SET created_at = created_at - 120 WHERE id = ?")
        .bind(1, old_long)
        .step();
  }
  EXPECT_EQ(bus->queue_position(old_long), 0);
  EXPECT_EQ(bus->queue_position(short_one), 1);
  EXPECT_EQ(bus->queue_position(middle), 2);
  EXPECT_EQ(bus->queue_position(long_one), 3);
  EXPECT_EQ(bus->queue_position("9b2f9a0e-3f5e-4a4c-8d3e-2c7d1f0b6a11"), std::nullopt);
  Backlog backlog = *bus->backlog();
  EXPECT_EQ(backlog.tasks, 4);
  EXPECT_EQ(backlog.audio_seconds, 935);
  EXPECT_EQ(backlog.audio_bytes, 4u);

  std::mutex m;
  std::vector<std::string> order;
  {
    Workers w(*bus, [&](const TaskRequest& r) {
      std::lock_guard lock(m);
      order.push_back(r.file_id);
      return text(r.file_id);
    });
    wait_for_end(*bus, long_one);
    wait_for_end(*bus, old_long);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"old-long", "short", "middle", "long"}));
  EXPECT_EQ(bus->queue_position(short_one), std::nullopt);  // no longer pending
  EXPECT_EQ(bus->backlog()->tasks, 0);
}

TEST(EmbeddedBus, AZeroAgeBoundIsArrivalOrder) {
  test::TempDir dir;
  auto options = fast_options(dir);
  options.age_bound_seconds = 0;
  auto bus = make_embedded_bus(options);
  std::string first = bus->create_task({"first", "{}", 600, 1});
  std::string second = bus->create_task({"second", "{}", 5, 1});
  EXPECT_EQ(bus->queue_position(first), 0);
  EXPECT_EQ(bus->queue_position(second), 1);
}

TEST(EmbeddedBus, ManyTasksManyWorkersEachProcessedOnce) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::mutex m;
  std::map<std::string, int> calls;
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(bus->create_task({"f" + std::to_string(i), "{}"}));
  {
    // Two buses over one database, as two processes would be.
    auto other = make_embedded_bus(fast_options(dir));
    auto handler = [&](const TaskRequest& r) {
      std::lock_guard lock(m);
      ++calls[r.file_id];
      return text(r.file_id);
    };
    Workers a(*bus, handler, 3);
    Workers b(*other, handler, 2);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(wait_for_end(*bus, ids[i]).transcription->text, "f" + std::to_string(i));
    }
  }
  EXPECT_EQ(calls.size(), 60u);
  for (auto& [file, n] : calls) EXPECT_EQ(n, 1) << file;
}

// Waits until `done` holds, up to 20 s.
template <typename F>
bool eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

Segment segment_until(double end, const std::string& text) {
  Segment s;
  s.end = end;
  s.text = text;
  return s;
}

TEST(EmbeddedBus, ARunningTaskShowsItsProgressThenItsResult) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::string id = bus->create_task({"file", "{}"});
  EXPECT_FALSE(bus->get_task_result(id)->progress);  // not started: no progress
  std::atomic<bool> release{false};
  Workers w(*bus, TaskHandler([&](const TaskRequest&, TaskControl& control) {
    control.segment_done(segment_until(2.5, " one"), 10);
    while (!release) std::this_thread::sleep_for(5ms);
    return text("one two");
  }));
  ASSERT_TRUE(eventually([&] { return bus->get_task_result(id)->progress.has_value(); }));
  auto running = *bus->get_task_result(id);
  EXPECT_EQ(running.status, TaskStatus::pending);
  EXPECT_DOUBLE_EQ(running.progress->fraction, 0.25);
  ASSERT_EQ(running.progress->segments.size(), 1u);
  EXPECT_EQ(running.progress->segments[0].text, " one");
  release = true;
  auto done = wait_for_end(*bus, id);
  EXPECT_EQ(done.status, TaskStatus::success);
  EXPECT_FALSE(done.progress);
  EXPECT_FALSE(done.cancelled);
}

TEST(EmbeddedBus, APendingTaskIsCancelledAtOnceAndNeverRuns) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::string id = bus->create_task({"the-audio", "{}"});
  std::string file;
  EXPECT_EQ(bus->cancel_task(id, &file), CancelOutcome::cancelled);
  EXPECT_EQ(file, "the-audio");
  auto r = *bus->get_task_result(id);
  EXPECT_EQ(r.status, TaskStatus::failed);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(bus->cancel_task(id, nullptr), CancelOutcome::finished);
  std::atomic<int> runs{0};
  std::string other = bus->create_task({"other", "{}"});
  {
    Workers w(*bus, [&](const TaskRequest&) {
      ++runs;
      return text("x");
    });
    wait_for_end(*bus, other);
  }
  EXPECT_EQ(runs, 1);  // only the other task
  EXPECT_EQ(bus->cancel_task("9b2f9a0e-3f5e-4a4c-8d3e-2c7d1f0b6a11", nullptr), std::nullopt);
  EXPECT_EQ(bus->cancel_task("' OR 1=1 --", nullptr), std::nullopt);
}

TEST(EmbeddedBus, ARunningTaskStopsThroughItsTokenAndIsNotRetried) {
  test::TempDir dir;
  auto bus = make_embedded_bus(fast_options(dir));
  std::string id = bus->create_task({"file", "{}"});
  std::atomic<int> runs{0};
  std::atomic<bool> started{false};
  std::vector<TaskRequest> finished;
  std::mutex m;
  Workers w(*bus, TaskHandler([&](const TaskRequest&, TaskControl& control) -> Transcription {
    ++runs;
    started = true;
    for (;;) {  // a long job that checks its token, as the models do per window
      control.cancel_token().check();
      std::this_thread::sleep_for(5ms);
    }
  }),
            1, [&](const TaskRequest& r) {
              std::lock_guard lock(m);
              finished.push_back(r);
            });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  EXPECT_EQ(bus->cancel_task(id, nullptr), CancelOutcome::cancelling);
  auto r = wait_for_end(*bus, id);
  EXPECT_EQ(r.status, TaskStatus::failed);
  EXPECT_TRUE(r.cancelled);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return finished.size() == 1;  // its audio may go, as after any task
  }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace sra
