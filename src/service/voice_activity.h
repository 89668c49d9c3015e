// Voice activity detection in the one transcription path: with `vad_filter` (or VAD=true for
// every request), the service finds the speech with Silero VAD, gives the model only the speech
// (the segments concatenated), and maps every time of the result (segments and words) back to
// the original audio, as faster-whisper's vad_filter does. It serves every model (Whisper,
// PocketSphinx, plugins) and skips Whisper's hallucinations in long silences.
//
// The options are declared once in vad_option_specs() (fields vad_filter, vad_threshold, ...;
// variables VAD_FILTER, VAD_THRESHOLD, ...). The Silero model (VAD_MODEL_PATH, or the catalog
// model VAD_MODEL, pulled into WHISPER_MODELS_DIR in the background when missing) is loaded once,
// on the first job that asks for VAD, or at start when VAD is on by default. VoiceActivityFilter is
// safe to use from any number of threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/audio_buffer.h"
#include "core/cancel.h"
#include "core/config.h"
#include "core/option_table.h"
#include "core/transcription.h"
#include "engine/vad/silero_vad.h"
#include "engine/vad/speech_timestamps.h"
#include "service/catalog_model_loader.h"

namespace sra {

// The VAD fields of a request; VAD_<NAME> sets each default.
const std::vector<OptionSpec>& vad_option_specs();

struct VadSettings {
  bool filter = false;                  // VAD on for requests that do not say (VAD_FILTER, VAD)
  vad::VadOptions defaults;             // VAD_THRESHOLD, VAD_MIN_SPEECH_DURATION_MS, ...
  std::string model = "silero-v6.2.3";  // a catalog name (VAD_MODEL)
  std::filesystem::path model_path;     // VAD_MODEL_PATH; empty: the catalog model's file
  std::filesystem::path models_dir = "./models";  // where catalog models live (WHISPER_MODELS_DIR)
  ModelSources sources;                           // where a missing catalog model is pulled from
  bool download = true;                           // MODEL_DOWNLOAD
};

// Throws sra::Error(config) naming the variable for a value out of bounds.
VadSettings vad_settings_from(const Config& config);

// Where the speech of one audio is, and how its times map back.
struct SpeechOnly {
  AudioBuffer audio;                         // the speech segments, concatenated
  std::vector<vad::SpeechSegment> segments;  // in the original audio, in samples
};

class VoiceActivityFilter {
 public:
  // Throws sra::Error(config) when VAD is on for every request and its model cannot be loaded.
  // Destroying the filter stops a pull in progress (within about a second) and waits for its
  // thread: a pull left running at exit would race the TLS library's own teardown.
  explicit VoiceActivityFilter(VadSettings settings);
  VoiceActivityFilter(const VoiceActivityFilter&) = delete;
  VoiceActivityFilter& operator=(const VoiceActivityFilter&) = delete;

  // The VAD options of a request (its vad_* fields over the defaults), or nullopt when VAD is
  // off for it. Throws sra::Error(invalid_request, field) for a value out of bounds.
  std::optional<vad::VadOptions> options_for(
      const std::map<std::string, std::string>& fields) const;
  // The speech of `audio`. Throws sra::Error(config) if the model cannot be loaded.
  SpeechOnly speech(const AudioBuffer& audio, const vad::VadOptions& options,
                    const CancelToken* cancel);
  // Only where the speech of `audio` is, in samples. Same errors as speech().
  std::vector<vad::SpeechSegment> speech_segments(const AudioBuffer& audio,
                                                  const vad::VadOptions& options,
                                                  const CancelToken* cancel);
  // The Silero model, loaded on first use. A catalog model that is missing is pulled on a thread
  // of its own, never the caller's: until it is in, this throws sra::Error(unavailable) with
  // Retry-After; a failed pull throws sra::Error(config) (the index, redacted, and what to run)
  // and is tried again no sooner than 30 s later, doubling up to an hour.
  std::shared_ptr<const vad::SileroVad> model();
  // Starts pulling the model now if it is missing (serve, when live sessions may need it).
  void prefetch();

 private:
  VadSettings settings_;
  CatalogModelLoader<vad::SileroVad> loader_;
};

// Every time in `t` (a transcription of speech.audio) mapped back to the original audio
// (faster-whisper's restore_speech_timestamps: a word's start and end through the segment its
// middle falls in; a segment with words spans its words).
void restore_times(Transcription& t, const SpeechOnly& speech);
void restore_times(Segment& s, const vad::SpeechMap& map);

}  // namespace sra
