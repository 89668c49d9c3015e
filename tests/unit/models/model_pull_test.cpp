// The pull's pure parts: MODEL_SOURCE's values and the free-space check against the real file
// system (downloads themselves are tested against local mirrors in
// tests/integration/test_models.py).
#include "models/model_pull.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "core/errors.h"

namespace sra {
namespace {

TEST(ModelPull, ModelSourceNamesTheSetting) {
  EXPECT_EQ(parse_model_source("auto"), ModelSource::automatic);
  EXPECT_EQ(parse_model_source(""), ModelSource::automatic);
  EXPECT_EQ(parse_model_source(" hub "), ModelSource::hub);
  EXPECT_EQ(parse_model_source("index"), ModelSource::index);
  try {
    parse_model_source("huggingface");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.field(), "MODEL_SOURCE");
  }
}

TEST(ModelPull, RefusesAPullTheDiskCannotHold) {
  const auto dir = std::filesystem::temp_directory_path();
  EXPECT_NO_THROW(check_free_space(dir, 1));
  try {
    check_free_space(dir, std::numeric_limits<std::uint64_t>::max() / 2);
    FAIL() << "an impossible size passed";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("not enough free disk space"), std::string::npos);
  }
}

TEST(ModelPull, AModelOnlyOnTheHubIsRefusedWhenOnlyTheIndexIsAllowed) {
  PullOptions options;
  options.models_dir = std::filesystem::temp_directory_path() / "sra-pull-test";
  options.sources.source = ModelSource::index;
  options.sources.base_url = "http://127.0.0.1:9";
  try {
    pull_model(*find_catalog_model("small"), options);
    FAIL() << "pulled";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.field(), "MODEL_SOURCE");
  }
  std::filesystem::remove_all(options.models_dir);
}

}  // namespace
}  // namespace sra
