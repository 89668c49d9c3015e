#include "service/backlog_gate.h"

#include <gtest/gtest.h>

#include "bus/sqlite_db.h"
#include "core/errors.h"
#include "service/builtin_parts.h"
#include "test_paths.h"

namespace sra {
namespace {

using namespace std::chrono_literals;

// The default parts (embedded bus, local storage) in a temporary folder, as `serve` builds them.
struct DefaultParts {
  test::TempDir dir;
  std::string database = (dir.path() / "tasks.sqlite3").string();
  Parts parts{Config({{"EMBEDDED_BUS_DATABASE_PATH", database},
                      {"LOCAL_STORAGE_FOLDER_PATH", (dir.path() / "files").string()}}),
              builtin_part_catalogs()};

  void create_tasks(int n, double seconds = 10, std::uint64_t bytes = 1000) {
    for (int i = 0; i < n; ++i) parts.bus().create_task({"f", "{}", seconds, bytes});
  }
  // What workers do to `n` tasks, without running any.
  void finish_tasks(int n) {
    SqliteDb db(database);
    db.prepare(
          "UPDATE tasks SET status = 'SUCCESS' WHERE id IN "
          "(SELECT id FROM tasks WHERE status = 'PENDING' LIMIT ?)")
        .bind(1, std::int64_t{n})
        .step();
  }
};

Error refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "not refused";
  return internal_error("not refused");
}

TEST(BacklogGate, ConcurrentAdmissionsCannotOvershootTheTaskBound) {
  DefaultParts p;
  BacklogGate gate(p.parts, {.max_pending_tasks = 3, .refresh_seconds = 60});
  p.create_tasks(1);
  auto a = gate.admit();
  auto b = gate.admit();  // being uploaded: both count
  Error e = refusal([&] { gate.admit(); });
  EXPECT_EQ(e.kind(), ErrorKind::unavailable);
  EXPECT_NE(std::string(e.what()).find("MAX_PENDING_TASKS=3"), std::string::npos) << e.what();
  EXPECT_EQ(e.retry_after(), 30);  // no drain rate measured yet
  { auto gone = std::move(b); }    // an abandoned upload gives its place back
  auto c = gate.admit();
  c.commit();  // the task exists: it counts until the broker's next count includes it
  refusal([&] { gate.admit(); });
  EXPECT_TRUE(gate.over_bound().has_value());
}

TEST(BacklogGate, AudioAndBytesAreBoundedButALoneTaskIsNot) {
  DefaultParts p;
  BacklogGate gate(
      p.parts, {.max_pending_audio_seconds = 25, .max_pending_bytes = 5000, .refresh_seconds = 0});
  {
    auto lone = gate.admit();
    lone.set_audio_seconds(1000);  // longer than the bound, but nothing else waits
    lone.add_bytes(100000);
  }
  p.create_tasks(2, 11, 1000);  // 22 s, 2000 bytes in the broker
  auto a = gate.admit();
  a.add_bytes(2500);
  Error bytes = refusal([&] { a.add_bytes(1000); });
  EXPECT_NE(std::string(bytes.what()).find("MAX_PENDING_BYTES"), std::string::npos);
  a.set_audio_seconds(3);
  Error audio = refusal([&] { a.set_audio_seconds(4); });
  EXPECT_NE(std::string(audio.what()).find("MAX_PENDING_AUDIO_SECONDS"), std::string::npos);
  EXPECT_EQ(a.audio_seconds(), 3);
  EXPECT_EQ(a.bytes(), 2500u);
}

TEST(BacklogGate, DrainRateGivesRetryAfterAndStartTimes) {
  DefaultParts p;
  auto now = BacklogGate::Clock::now();
  BacklogGate gate(p.parts, {.max_pending_tasks = 10, .refresh_seconds = 0}, [&] { return now; });
  p.create_tasks(10);
  EXPECT_EQ(gate.view().tasks, 10);
  EXPECT_FALSE(gate.start_in_seconds(0).has_value());
  now += 500ms;
  p.finish_tasks(5);  // 5 tasks in 0.5 s: 10 per second
  BacklogView v = gate.view();
  EXPECT_EQ(v.tasks, 5);
  ASSERT_TRUE(v.drain_rate.has_value());
  EXPECT_DOUBLE_EQ(*v.drain_rate, 10);
  p.create_tasks(5);
  Error e = refusal([&] { gate.admit(); });
  // One task must finish for the next to fit: about 0.1 s, so Retry-After's floor of 1 s.
  EXPECT_EQ(e.retry_after(), 1);
  auto start = gate.start_in_seconds(19);  // 20 tasks to go at ~10 per second
  ASSERT_TRUE(start.has_value());
  EXPECT_DOUBLE_EQ(*start, 2.0);
}

TEST(BacklogGate, DiskFloorRefusesWithItsOwnRetry) {
  DefaultParts p;
  BacklogGate gate(p.parts, {.min_free_disk_bytes = std::uint64_t{1} << 50});
  Error e = refusal([&] { gate.admit(); });
  EXPECT_NE(std::string(e.what()).find("MIN_FREE_DISK_BYTES"), std::string::npos);
  EXPECT_EQ(e.retry_after(), 60);
  // Nothing about the folder's path.
  EXPECT_EQ(std::string(e.what()).find(p.dir.path().string()), std::string::npos);
}

}  // namespace
}  // namespace sra
