#include "core/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <functional>
#include <regex>
#include <set>

#include "core/errors.h"
#include "core/settings.h"
#include "test_paths.h"

namespace sra {
namespace {

TEST(Config, EnvironmentWinsOverTheFile) {
  test::TempDir dir;
  auto file = dir.path() / "test.env";
  std::ofstream(file) << "WORKER_METRICS_HOST=from-file\nS3_STORAGE_FILE_PREFIX=from-file\n";
  ::setenv("WORKER_METRICS_HOST", "from-env", 1);
  ::unsetenv("S3_STORAGE_FILE_PREFIX");
  Config c = Config::load(file);
  ::unsetenv("WORKER_METRICS_HOST");
  EXPECT_EQ(c.get("WORKER_METRICS_HOST"), "from-env");
  EXPECT_EQ(c.get("S3_STORAGE_FILE_PREFIX"), "from-file");
  EXPECT_EQ(c.source(), file.string());
}

TEST(Config, MissingExplicitFileIsAnError) {
  EXPECT_THROW(Config::load(std::filesystem::path("/nonexistent/.env")), Error);
}

TEST(Config, TypedGettersReadThroughTheTableAndNameTheVariable) {
  Config c({{"PORT", "12"},
            {"HTTP_THREADS", "12x"},
            {"REALTIME_TRIM_SECONDS", "99"},
            {"MAX_AUDIO_SECONDS", "0.5"},
            {"MODEL_DOWNLOAD", "Yes"},
            {"VAD", "maybe"},
            {"CORS_ALLOW_ORIGINS", " a, b ,,c "}});
  EXPECT_EQ(c.get_int("PORT"), 12);
  EXPECT_EQ(c.get_int("MAX_CONNECTIONS"), 512);  // the table's default
  EXPECT_DOUBLE_EQ(c.get_double("MAX_AUDIO_SECONDS"), 0.5);
  EXPECT_TRUE(c.get_bool("MODEL_DOWNLOAD"));
  EXPECT_EQ(c.get_list("CORS_ALLOW_ORIGINS"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.get_string("HOST"), "127.0.0.1");
  try {
    c.get_int("HTTP_THREADS");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("HTTP_THREADS=12x"), std::string::npos);
  }
  try {
    c.get_double("REALTIME_TRIM_SECONDS");  // the table's bounds: [2, 20]
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("[2, 20]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(c.get_bool("VAD"), Error);
}

TEST(Config, ReadingAnUndeclaredVariableIsOurFault) {
  Config c({{"NOT_A_SETTING", "1"}});
  for (auto read : std::vector<std::function<void()>>{
           [&] { c.get("NOT_A_SETTING"); }, [&] { c.get_int("NOT_A_SETTING"); },
           [&] { c.get_string("NOT_A_SETTING"); }, [&] { c.get_bool("NOT_A_SETTING"); }}) {
    try {
      read();
      FAIL() << "an undeclared variable was read";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::internal);
    }
  }
  // A computed default is the reader's to give, a declared one never.
  EXPECT_EQ(c.get_int("INFERENCE_THREADS", 3), 3);
  EXPECT_THROW(c.get_int("PORT", 1), Error);
  EXPECT_THROW(c.get_int("INFERENCE_THREADS"), Error);
}

TEST(Config, APluginsOwnDeclarationsAreReadTheSameWay) {
  constexpr Setting kOwn{.name = "MY_PLUGIN_GAIN",
                         .type = SettingType::number,
                         .default_value = "1.5",
                         .doc = "gain",
                         .min = 0,
                         .max = 4};
  EXPECT_DOUBLE_EQ(Config().get_double(kOwn), 1.5);
  EXPECT_DOUBLE_EQ(Config({{"MY_PLUGIN_GAIN", "2"}}).get_double(kOwn), 2);
  EXPECT_THROW(Config({{"MY_PLUGIN_GAIN", "9"}}).get_double(kOwn), Error);
}

// Every declared default is a value its own declaration accepts, and every name is declared once.
TEST(Settings, DefaultsPassTheirOwnBoundsAndNamesAreUnique) {
  std::set<std::string_view> names;
  for (const Setting& s : settings_table()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_FALSE(s.doc.empty()) << s.name;
    EXPECT_FALSE(s.section.empty()) << s.name;
    if (s.computed || s.default_value.empty()) {
      EXPECT_TRUE(s.computed || s.type == SettingType::text || s.type == SettingType::list ||
                  !s.default_doc.empty() || s.name == "WORKER_METRICS_PORT")
          << s.name << " has neither a default nor a word on it";
      continue;
    }
    Config empty;
    switch (s.type) {
      case SettingType::integer:
        EXPECT_NO_THROW(empty.get_int(s)) << s.name;
        break;
      case SettingType::number:
        EXPECT_NO_THROW(empty.get_double(s)) << s.name;
        break;
      case SettingType::boolean:
        EXPECT_NO_THROW(empty.get_bool(s)) << s.name;
        break;
      default:
        break;
    }
  }
}

// What the runtime check cannot see until a test runs the code: every variable named in a read in
// src/ and app/ is declared, and nothing reads the environment but Config.
TEST(Settings, EverySourceReadIsDeclared) {
  const auto root = std::filesystem::path(SRA_UNIT_TEST_DIR) / ".." / "..";
  const std::regex read(R"re(\.get(_string|_int|_double|_bool|_list)?\(\s*"([A-Z0-9_]+)")re");
  std::size_t reads = 0;
  for (const char* dir : {"src", "app"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / dir)) {
      const auto ext = entry.path().extension();
      if (ext != ".cpp" && ext != ".h") continue;
      const std::string text = test::read_file(entry.path());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), read);
           it != std::sregex_iterator(); ++it) {
        ++reads;
        EXPECT_NE(find_setting((*it)[2].str()), nullptr)
            << entry.path() << " reads " << (*it)[2].str() << ", which the table does not declare";
      }
      if (entry.path().filename() != "config.cpp") {
        EXPECT_EQ(text.find("getenv("), std::string::npos)
            << entry.path() << " reads the environment around Config";
      }
    }
  }
  EXPECT_GT(reads, 100u);  // the scan saw the reads
}

}  // namespace
}  // namespace sra
