#include "service/transcription_service.h"

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra {

ServiceLimits service_limits_from(const Config& config) {
  ServiceLimits limits;
  limits.max_upload_bytes = static_cast<std::size_t>(
      config.get_int("MAX_UPLOAD_BYTES", static_cast<std::int64_t>(limits.max_upload_bytes), 1,
                     std::int64_t{1} << 40));
  limits.max_audio_seconds =
      config.get_double("MAX_AUDIO_SECONDS", limits.max_audio_seconds, 0.1, 1e7);
  limits.delete_audio_after_task =
      config.get_bool("DELETE_AUDIO_AFTER_TASK", limits.delete_audio_after_task);
  return limits;
}

Transcription TranscriptionService::transcribe_bytes(std::string_view bytes,
                                                     const TranscribeOptions& options) {
  AudioBuffer audio = audio::decode(bytes, {.max_seconds = limits_.max_audio_seconds});
  return parts_.model().transcribe(audio, options);
}

Transcription TranscriptionService::run_task(const TaskRequest& request) {
  std::string bytes = parts_.storage().read(request.file_id);
  TranscribeOptions options;
  if (!request.options_json.empty()) {
    boost::system::error_code ec;
    auto parsed = boost::json::parse(request.options_json, ec);
    if (!ec && parsed.is_object()) {
      for (auto& [key, value] : parsed.as_object()) {
        if (value.is_string()) options.values[std::string(key)] = std::string(value.get_string());
      }
    }
  }
  try {
    Transcription t = transcribe_bytes(bytes, options);
    if (limits_.delete_audio_after_task) parts_.storage().remove(request.file_id);
    return t;
  } catch (const Error& e) {
    if (e.is_permanent() && limits_.delete_audio_after_task) {
      parts_.storage().remove(request.file_id);
    }
    throw;
  }
}

}  // namespace sra
