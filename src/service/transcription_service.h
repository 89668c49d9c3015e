// TranscriptionService: what the API and the workers do with audio, independent of transport.
//
// Decodes uploaded bytes and runs the configured model; checks uploads before an async task is
// created; and is the handler that workers run for each task (read from storage, decode,
// transcribe). Safe for concurrent use from any thread; it owns nothing but references the Parts
// it is given, which must outlive it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "audio/decoder.h"
#include "core/message_bus.h"
#include "core/parts.h"

namespace sra {

struct ServiceLimits {
  std::size_t max_upload_bytes = 25 * 1024 * 1024;  // largest accepted upload, in bytes
  double max_audio_seconds = 3 * 3600.0;            // longest accepted audio, in seconds
  bool delete_audio_after_task = false;             // remove the stored file once its task ends
};

ServiceLimits service_limits_from(const Config& config);

class TranscriptionService {
 public:
  TranscriptionService(Parts& parts, ServiceLimits limits) : parts_(parts), limits_(limits) {}

  // Decodes and transcribes. Throws sra::Error (unsupported_media, too_large, ...).
  Transcription transcribe_bytes(std::string_view bytes, const TranscribeOptions& options);
  // The worker's handler: the audio of `request` from storage, transcribed.
  Transcription run_task(const TaskRequest& request);

  const ServiceLimits& limits() const { return limits_; }
  Parts& parts() { return parts_; }

 private:
  Parts& parts_;
  ServiceLimits limits_;
};

}  // namespace sra
