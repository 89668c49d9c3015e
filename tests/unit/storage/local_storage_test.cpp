#include "storage/local_storage.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "core/errors.h"
#include "core/uuid.h"
#include "test_paths.h"

namespace sra {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

TEST(LocalStorage, CreatesTheFolderAndRoundTrips) {
  test::TempDir dir;
  auto folder = dir.path() / "nested" / "files";
  auto storage = make_local_storage({folder});
  EXPECT_TRUE(fs::is_directory(folder));
  std::string bytes(300000, 'x');
  bytes[5] = '\0';
  auto upload = storage->begin_upload();
  upload->write(std::string_view(bytes).substr(0, 1000));
  upload->write(std::string_view(bytes).substr(1000));
  std::string id = upload->commit();
  EXPECT_TRUE(is_uuid(id));
  EXPECT_EQ(storage->read(id), bytes);
  storage->remove(id);
  EXPECT_THROW(storage->read(id), Error);
}

TEST(LocalStorage, StaleUnfinishedUploadsAreSweptAtStart) {
  test::TempDir dir;
  fs::create_directories(dir.path());
  auto stale = dir.path() / ("." + make_uuid() + ".part");
  auto fresh = dir.path() / ("." + make_uuid() + ".part");
  auto kept = dir.path() / make_uuid();  // a stored file, however old, stays
  for (const auto& p : {stale, fresh, kept}) std::ofstream(p) << "x";
  auto old = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(stale, old);
  fs::last_write_time(kept, old);
  auto storage = make_local_storage({dir.path()});
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_TRUE(fs::exists(kept));
}

TEST(LocalStorage, NothingVisibleUntilCommitAndNothingLeftOnAbort) {
  test::TempDir dir;
  auto storage = make_local_storage({dir.path()});
  {
    auto upload = storage->begin_upload();
    upload->write("partial");
    for (auto& p : files_in(dir.path())) {
      EXPECT_EQ(p.filename().string()[0], '.') << "a partial upload is visible: " << p;
    }
  }
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(LocalStorage, HostileIdsNeverReachTheDisk) {
  test::TempDir dir;
  auto folder = dir.path() / "files";
  auto storage = make_local_storage({folder});
  std::ofstream(dir.path() / "secret") << "secret";
  for (auto id : {"../secret", "..", "/etc/passwd", "", "a/b", "%2e%2e%2fsecret"}) {
    try {
      storage->read(id);
      FAIL() << "read " << id;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::not_found);
    }
    storage->remove(id);
  }
  EXPECT_TRUE(fs::exists(dir.path() / "secret"));
  EXPECT_THROW(storage->read(make_uuid()), Error);
}

TEST(LocalStorage, UnusableFolderIsAConfigError) {
  test::TempDir dir;
  std::ofstream(dir.path() / "file") << "x";
  try {
    make_local_storage({dir.path() / "file"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("LOCAL_STORAGE_FOLDER_PATH"), std::string::npos);
  }
}

}  // namespace
}  // namespace sra
