// Speaker labels for transcriptions: the request options that ask for diarization (`diarize`,
// `num_speakers`, `min_speakers`, `max_speakers`, declared once for every route and the OpenAPI
// document), the models it needs (pyannote's segmentation and CAM++, catalog models loaded on
// first use and pulled in the background when missing, as the VAD model is), and the step that
// puts the speakers into a transcription: every word gets the speaker whose turn covers most of
// it, and segments are cut where the speaker changes.
//
// SpeakerLabeler is thread-safe; label() blocks the calling (inference) thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/audio_buffer.h"
#include "core/cancel.h"
#include "core/config.h"
#include "core/option_table.h"
#include "core/transcription.h"
#include "engine/speakers/diarization.h"
#include "service/catalog_model_loader.h"

namespace sra {

// The request options of diarization.
const std::vector<OptionSpec>& diarization_option_specs();

// What a request asked for, from its options (nullopt: no diarization). Throws
// sra::Error(invalid_request, field) for a value out of bounds or counts that contradict.
std::optional<speakers::DiarizationOptions> diarization_requested(
    const std::map<std::string, std::string>& options);

struct DiarizationSettings {
  std::string segmentation_model = "pyannote-segmentation-3.0";  // catalog name
  std::string embedding_model = "campplus-zh-en";                // catalog name
  std::filesystem::path models_dir = "./models";                 // WHISPER_MODELS_DIR
  ModelSources sources;                                          // where missing ones come from
  bool download = true;                                          // MODEL_DOWNLOAD
  float threshold = 0.5f;  // DIARIZATION_THRESHOLD: clusters' cosine distance
};

DiarizationSettings diarization_settings_from(const Config& config);

// "A", "B", ... "Z", "AA", "AB", ...: the label of speaker `index`.
std::string speaker_label(int index);
// The index of a label speaker_label() wrote ("AB" -> 27); -1 for anything else (a known
// speaker's name, "").
int speaker_label_index(const std::string& label);

// Puts `d`'s speakers into `t`: turns as labels, each word's speaker (the turn that overlaps it
// most, else the nearest), each segment cut where its words change speaker and labelled with the
// speaker of most of its words (segments without words: of most of their time).
void label_transcription(Transcription& t, const speakers::Diarization& d);

class SpeakerLabeler {
 public:
  explicit SpeakerLabeler(const DiarizationSettings& settings);

  // Diarizes `audio` and labels `t` with it. Throws sra::Error(unavailable) while a model is
  // being pulled, sra::Error(config) when one cannot be had, sra::Error(cancelled/deadline) from
  // `cancel`.
  void label(Transcription& t, const AudioBuffer& audio, speakers::DiarizationOptions options,
             CancelToken* cancel);
  // The speaker turns of `audio` alone, as label() finds them (`options.threshold` of 0:
  // DIARIZATION_THRESHOLD).
  speakers::Diarization diarize(const AudioBuffer& audio, speakers::DiarizationOptions options,
                                CancelToken* cancel);

  // Loads both models now, or throws as label() would (sra::Error(unavailable) while one is being
  // pulled, sra::Error(config) when one cannot be had): a transcription that will need them
  // calls it once its audio is decoded, so that a missing model fails the request before the
  // transcription, not after it.
  void require_models();
  // Starts pulling missing models now.
  void prefetch();

 private:
  DiarizationSettings settings_;
  CatalogModelLoader<speakers::SpeakerSegmentation> segmentation_;
  CatalogModelLoader<speakers::CamPlusPlus> embedding_;
};

}  // namespace sra
