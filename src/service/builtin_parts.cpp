#include "service/builtin_parts.h"

#include "bus/celery_bus.h"
#include "bus/embedded_bus.h"
#include "bus/huey_bus.h"
#include "bus/redis_bus.h"
#include "models/pocketsphinx_model.h"
#include "models/whisper_model.h"
#include "models/whisper_options.h"
#include "service/observed_parts.h"
#include "storage/gcs_storage.h"
#include "storage/local_storage.h"
#include "storage/s3_storage.h"

namespace sra {
namespace {

// The seed names its classes both by module and by package; accept both spellings.
std::vector<std::string> seed_paths(const std::string& package, const std::string& klass) {
  std::string base = "speech_recognition_api.extra." + package;
  return {base + "." + klass, base + "." + package + "." + klass};
}

}  // namespace

PartCatalogs builtin_part_catalogs() {
  PartCatalogs c;
  c.models.add("pocketsphinx", {"PocketSphinx"}, [](const Config& config) {
    return make_pocketsphinx_model(pocketsphinx_options_from(config));
  });
  c.models.add("whisper", seed_paths("whisper_model", "WhisperModel"), [](const Config& config) {
    return make_whisper_model(whisper_model_options_from(config));
  });

  c.storages.add("local", seed_paths("local_storage", "LocalStorage"), [](const Config& config) {
    return make_local_storage(local_storage_options_from(config));
  });
  c.storages.add("s3", seed_paths("s3_storage", "S3Storage"), make_s3_storage);
  c.storages.add("gcs", seed_paths("google_cloud_storage", "GoogleCloudStorage"), make_gcs_storage);

  c.buses.add("embedded", {}, [](const Config& config) {
    return make_embedded_bus(embedded_bus_options_from(config));
  });
  c.buses.add("celery", seed_paths("celery_bus", "CeleryMessageBus"), make_celery_bus);
  c.buses.add("huey", seed_paths("huey_bus", "HueyMessageBus"), make_huey_bus);
  c.buses.add("redis", {}, make_redis_bus);
  c.hooks = observed_part_hooks();  // /metrics sees load times and failed calls
  return c;
}

const std::vector<OptionSpec>& builtin_request_options() {
  static const std::vector<OptionSpec> table = whisper_option_specs();
  return table;
}

}  // namespace sra
