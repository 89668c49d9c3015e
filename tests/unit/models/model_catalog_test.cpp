// The catalog's names and the spellings users bring for them.
#include "models/model_catalog.h"

#include <gtest/gtest.h>

#include <set>

namespace sra {
namespace {

TEST(ModelCatalog, AcceptsEveryUsualSpelling) {
  for (const char* name :
       {"tiny.en", "openai/whisper-tiny.en", "whisper-tiny.en", "ggml-tiny.en.bin", " TINY.EN "}) {
    const CatalogModel* m = find_catalog_model(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->name, "tiny.en");
  }
  EXPECT_EQ(find_catalog_model("openai/whisper-base")->file_name, "ggml-base.bin");
  EXPECT_EQ(find_catalog_model("ggml-silero-v6.2.0.bin")->kind, "vad");
  EXPECT_EQ(find_catalog_model("large-v9"), nullptr);
  EXPECT_EQ(find_catalog_model(""), nullptr);
}

TEST(ModelCatalog, EveryEntryIsPinned) {
  std::set<std::string> names, files;
  for (const auto& m : model_catalog()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    EXPECT_TRUE(files.insert(m.file_name).second) << m.file_name;
    EXPECT_EQ(m.file_sha256.size(), 64u) << m.name;
    EXPECT_EQ(m.source_sha256.size(), 64u) << m.name;
    EXPECT_GT(m.file_size, 0u) << m.name;
    ASSERT_FALSE(m.parts.empty()) << m.name;
    for (const auto& p : m.parts) {
      EXPECT_EQ(p.wheel_sha256.size(), 64u) << p.wheel;
      EXPECT_GT(p.wheel_size, 0u) << p.wheel;
      EXPECT_NE(p.wheel.find(".whl"), std::string::npos) << p.wheel;
    }
    if (m.format == ModelFormat::ctranslate2) {
      EXPECT_FALSE(m.vocabulary.member.empty()) << m.name;
    }
  }
}

}  // namespace
}  // namespace sra
