#include "core/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "core/errors.h"
#include "test_paths.h"

namespace sra {
namespace {

TEST(Config, EnvironmentWinsOverTheFile) {
  test::TempDir dir;
  auto file = dir.path() / "test.env";
  std::ofstream(file) << "SRA_TEST_A=from-file\nSRA_TEST_B=from-file\n";
  ::setenv("SRA_TEST_A", "from-env", 1);
  ::unsetenv("SRA_TEST_B");
  Config c = Config::load(file);
  ::unsetenv("SRA_TEST_A");
  EXPECT_EQ(c.get("SRA_TEST_A"), "from-env");
  EXPECT_EQ(c.get("SRA_TEST_B"), "from-file");
  EXPECT_EQ(c.source(), file.string());
}

TEST(Config, MissingExplicitFileIsAnError) {
  EXPECT_THROW(Config::load(std::filesystem::path("/nonexistent/.env")), Error);
}

TEST(Config, TypedGettersValidateAndNameTheVariable) {
  Config c({{"N", "12"},
            {"BAD", "12x"},
            {"BIG", "99"},
            {"F", "0.5"},
            {"B", "Yes"},
            {"NB", "maybe"},
            {"L", " a, b ,,c "}});
  EXPECT_EQ(c.get_int("N", 0), 12);
  EXPECT_EQ(c.get_int("MISSING", 7), 7);
  EXPECT_DOUBLE_EQ(c.get_double("F", 0), 0.5);
  EXPECT_TRUE(c.get_bool("B", false));
  EXPECT_EQ(c.get_list("L", {}), (std::vector<std::string>{"a", "b", "c"}));
  try {
    c.get_int("BAD", 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("BAD=12x"), std::string::npos);
  }
  EXPECT_THROW(c.get_int("BIG", 0, 0, 10), Error);
  EXPECT_THROW(c.get_bool("NB", false), Error);
}

}  // namespace
}  // namespace sra
