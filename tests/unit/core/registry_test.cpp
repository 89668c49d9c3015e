#include "core/registry.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/errors.h"
#include "core/parts.h"
#include "service/builtin_parts.h"
#include "test_paths.h"

namespace sra {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(Registry, SeedClassPathsAreAliases) {
  PartCatalogs c = builtin_part_catalogs();
  test::TempDir dir;
  Config config({{"LOCAL_STORAGE_FOLDER_PATH", (dir.path() / "files").string()}});
  auto storage = c.storages.resolve("speech_recognition_api.extra.local_storage.LocalStorage");
  EXPECT_NE(storage(config), nullptr);
  auto storage2 =
      c.storages.resolve("speech_recognition_api.extra.local_storage.local_storage.LocalStorage");
  EXPECT_NE(storage2(config), nullptr);
}

TEST(Registry, NamesNotBuiltSaySoAndNameTheVariable) {
  // A name known to the project whose part a build leaves out has no factory.
  PartCatalog<MessageBus> buses("MESSAGE_BUS");
  buses.add("kafka", {"speech_recognition_api.extra.kafka_bus.KafkaMessageBus"}, {});
  for (auto value : {"kafka", "speech_recognition_api.extra.kafka_bus.KafkaMessageBus"}) {
    std::string message = error_of([&] { buses.resolve(value); });
    EXPECT_NE(message.find("MESSAGE_BUS="), std::string::npos) << message;
    EXPECT_NE(message.find("'kafka' is not available in this build"), std::string::npos) << message;
  }
  // Every part the seed names is built in.
  PartCatalogs c = builtin_part_catalogs();
  for (auto value : {"speech_recognition_api.extra.celery_bus.CeleryMessageBus",
                     "speech_recognition_api.extra.huey_bus.HueyMessageBus", "redis"}) {
    EXPECT_NO_THROW(c.buses.resolve(value)) << value;
  }
  for (auto value : {"speech_recognition_api.extra.s3_storage.S3Storage",
                     "speech_recognition_api.extra.google_cloud_storage.GoogleCloudStorage"}) {
    EXPECT_NO_THROW(c.storages.resolve(value)) << value;
  }
}

TEST(Registry, UnknownNamesListTheKnownOnes) {
  PartCatalogs c = builtin_part_catalogs();
  std::string message = error_of([&] { c.models.resolve("wav2vec"); });
  EXPECT_NE(message.find("MODEL=wav2vec is unknown"), std::string::npos) << message;
  EXPECT_NE(message.find("pocketsphinx"), std::string::npos) << message;
  EXPECT_NE(message.find("whisper"), std::string::npos) << message;
}

TEST(Registry, PluginPathsAreLoaded) {
  PartCatalogs c = builtin_part_catalogs();
  auto factory = c.models.resolve(SRA_EXAMPLE_PLUGIN);
  Config config({{"VAD_MODEL_THRESHOLD_DB", "-30"}});
  auto model = factory(config);
  AudioBuffer audio;
  audio.samples.assign(kSampleRate, 0.0f);  // 1 s silence, 0.5 s tone, 1 s silence
  for (int i = 0; i < kSampleRate / 2; ++i) audio.samples.push_back(i % 40 < 20 ? 0.5f : -0.5f);
  audio.samples.resize(audio.samples.size() + kSampleRate, 0.0f);
  Transcription t = model->transcribe(audio, {});
  EXPECT_EQ(t.text, "[speech 1.00-1.50]");
  ASSERT_EQ(t.segments.size(), 1u);

  std::string bad = error_of([&] { factory(Config({{"VAD_MODEL_THRESHOLD_DB", "loud"}})); });
  EXPECT_NE(bad.find("VAD_MODEL_THRESHOLD_DB"), std::string::npos) << bad;
}

TEST(Registry, BadPluginPathsAreConfigErrors) {
  PartCatalogs c = builtin_part_catalogs();
  std::string missing = error_of([&] { c.models.resolve("/nonexistent/libplugin.so"); });
  EXPECT_NE(missing.find("MODEL=/nonexistent/libplugin.so: cannot load plugin"), std::string::npos)
      << missing;
  // A real library that is not a plugin.
  std::string not_plugin = error_of([&] { c.models.resolve("libm.so.6"); });
  EXPECT_NE(not_plugin.find("not a speech-recognition-api plugin"), std::string::npos)
      << not_plugin;
  // The example provides a model but no storage.
  std::string wrong_kind = error_of([&] { c.storages.resolve(SRA_EXAMPLE_PLUGIN); });
  EXPECT_NE(wrong_kind.find("sra_create_file_storage"), std::string::npos) << wrong_kind;
}

TEST(Parts, BuiltOnceOnFirstUseAndRetriedAfterFailure) {
  test::TempDir dir;
  auto folder = dir.path() / "blocked";
  std::filesystem::create_directories(dir.path());
  { std::ofstream(folder) << "a file where the folder should be"; }
  Parts parts(Config({{"LOCAL_STORAGE_FOLDER_PATH", folder.string()}}), builtin_part_catalogs());
  std::string message = error_of([&] { parts.storage(); });
  EXPECT_NE(message.find("LOCAL_STORAGE_FOLDER_PATH"), std::string::npos) << message;
  std::filesystem::remove(folder);
  FileStorage& first = parts.storage();
  EXPECT_EQ(&first, &parts.storage());
}

}  // namespace
}  // namespace sra
