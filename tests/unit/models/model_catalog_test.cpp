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
  // whisper.cpp's names, and OpenAI's aliases for the newest checkpoints.
  EXPECT_EQ(find_catalog_model("ggml-large-v3-turbo-q5_0.bin")->name, "large-v3-turbo-q5_0");
  EXPECT_EQ(find_catalog_model("openai/whisper-large-v3-turbo")->name, "large-v3-turbo");
  EXPECT_EQ(find_catalog_model("turbo")->name, "large-v3-turbo");
  EXPECT_EQ(find_catalog_model("large")->name, "large-v3");
  EXPECT_EQ(find_catalog_model("openai/whisper-small.en")->file_name, "ggml-small.en.bin");
  EXPECT_EQ(find_catalog_model(""), nullptr);
}

bool is_hex(const std::string& s, std::size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(ModelCatalog, EveryEntryIsPinned) {
  std::set<std::string> names, files;
  for (const auto& m : model_catalog()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    EXPECT_TRUE(files.insert(m.file_name).second) << m.file_name;
    EXPECT_TRUE(is_hex(m.file_sha256, 64)) << m.name;
    EXPECT_TRUE(is_hex(m.source_sha256, 64)) << m.name;
    EXPECT_GT(m.file_size, 0u) << m.name;
    ASSERT_TRUE(!m.parts.empty() || !m.hub.path.empty()) << m.name << " has no source";
    for (const auto& p : m.parts) {
      EXPECT_TRUE(is_hex(p.wheel_sha256, 64)) << p.wheel;
      EXPECT_GT(p.wheel_size, 0u) << p.wheel;
      EXPECT_NE(p.wheel.find(".whl"), std::string::npos) << p.wheel;
    }
    if (m.format == ModelFormat::ctranslate2) {
      EXPECT_FALSE(m.vocabulary.member.empty()) << m.name;
    }
    if (!m.hub.path.empty()) {
      EXPECT_TRUE(is_hex(m.hub.sha256, 64)) << m.name;
      EXPECT_TRUE(m.hub.sha1.empty() || is_hex(m.hub.sha1, 40)) << m.name;
      EXPECT_GT(m.hub.size, 0u) << m.name;
      EXPECT_EQ(m.hub.path, m.file_name) << m.name;
      EXPECT_TRUE(is_catalog_file(m, m.hub.size, m.hub.sha256)) << m.name;
    }
    EXPECT_TRUE(is_catalog_file(m, m.file_size, m.file_sha256)) << m.name;
    EXPECT_FALSE(is_catalog_file(m, m.file_size, std::string(64, '0'))) << m.name;
    if (m.kind == "whisper") EXPECT_FALSE(m.languages.empty()) << m.name;
  }
}

TEST(ModelCatalog, CarriesEveryWhisperCppModel) {
  // whisper.cpp's models/download-ggml-model.sh names these (tinydiarize's small.en-tdrz lives
  // in another repository and is left out).
  for (const char* name : {"tiny",
                           "tiny.en",
                           "tiny-q5_1",
                           "tiny.en-q5_1",
                           "tiny-q8_0",
                           "base",
                           "base.en",
                           "base-q5_1",
                           "base.en-q5_1",
                           "base-q8_0",
                           "small",
                           "small.en",
                           "small-q5_1",
                           "small.en-q5_1",
                           "small-q8_0",
                           "medium",
                           "medium.en",
                           "medium-q5_0",
                           "medium.en-q5_0",
                           "medium-q8_0",
                           "large-v1",
                           "large-v2",
                           "large-v2-q5_0",
                           "large-v2-q8_0",
                           "large-v3",
                           "large-v3-q5_0",
                           "large-v3-turbo",
                           "large-v3-turbo-q5_0",
                           "large-v3-turbo-q8_0"}) {
    const CatalogModel* m = find_catalog_model(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->hub.repository, "ggerganov/whisper.cpp") << name;
    EXPECT_EQ(m->languages == "English", std::string(name).find(".en") != std::string::npos)
        << name;
  }
  // Published twice: the package index's conversion and whisper.cpp's file differ in bytes.
  const CatalogModel* base = find_catalog_model("base");
  EXPECT_FALSE(base->parts.empty());
  EXPECT_NE(base->file_sha256, base->hub.sha256);
  EXPECT_EQ(base->hub.sha1, "465707469ff3a37a2b9b8d8f89f2f99de7299dac");
}

}  // namespace
}  // namespace sra
