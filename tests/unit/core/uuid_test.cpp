#include "core/uuid.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace sra {
namespace {

TEST(Uuid, MadeIdsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = make_uuid();
    EXPECT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(seen.insert(id).second);
  }
}

// An id is the only capability to read or cancel a task: it must not be predictable from the
// process's own state. A generator in the process (the mt19937_64 this replaced) is copied by
// fork(), so a parent and its child made the same ids; the kernel's CSPRNG is not copied.
TEST(Uuid, IdsDoNotRepeatAcrossAFork) {
  make_uuid();  // any per-process state is made now, before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = make_uuid();
    (void)!::write(fds[1], id.data(), id.size());
    ::_exit(0);
  }
  std::string mine = make_uuid();
  char theirs[36];
  ASSERT_EQ(::read(fds[0], theirs, sizeof theirs), 36);
  ::waitpid(child, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_NE(mine, std::string(theirs, 36));
}

TEST(Uuid, RejectsAnythingElse) {
  EXPECT_FALSE(is_uuid(""));
  EXPECT_FALSE(is_uuid("../../etc/passwd"));
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400"));
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
  EXPECT_FALSE(is_uuid("123e4567/e89b-12d3-a456-426614174000"));
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
  EXPECT_TRUE(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
}

}  // namespace
}  // namespace sra
