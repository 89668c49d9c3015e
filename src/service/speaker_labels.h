// Speaker labels for transcriptions: the request options that ask for diarization (`diarize`,
// `num_speakers`, `min_speakers`, `max_speakers`, declared once for every route and the OpenAPI
// document), the models it needs (pyannote's segmentation and CAM++, catalog models loaded on
// first use and pulled in the background when missing, as the VAD model is), and the step that
// puts the speakers into a transcription: every word gets the speaker whose turn covers most of
// it, and segments are cut where the speaker changes. Speakers are labelled A, B, ... in order of
// appearance, or by the names of known speakers whose reference clips their voices match.
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

// A speaker the caller names, with a clip of their voice (any format decode() reads).
struct KnownSpeaker {
  std::string name;   // the label their turns get (OpenAI's known_speaker_names[])
  std::string audio;  // the clip's bytes: 1.2 to 10 s of this speaker alone
};

// A known speaker's name and voice print (unit length, as Diarization::centroids).
struct KnownVoice {
  std::string name;
  std::vector<float> print;
};

inline constexpr std::size_t kMaxKnownSpeakers = 4;  // as OpenAI's API
inline constexpr std::size_t kMaxSpeakerNameBytes = 64;
inline constexpr double kMinKnownClipSeconds = 1.2;
inline constexpr double kMaxKnownClipSeconds = 10.0;

// Checks `known` (at most kMaxKnownSpeakers, names of 1..kMaxSpeakerNameBytes printable bytes,
// distinct), or throws sra::Error(invalid_request) naming `known_speaker_names[]`.
void check_known_speakers(const std::vector<KnownSpeaker>& known);

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

// Each speaker of `d` labelled: a known voice's name where its print matches the speaker's
// centroid with cosine similarity at least `min_similarity` (each name to at most one speaker,
// the most similar pairs first), else "A", "B", ... in order of appearance, skipping labels that
// are known names.
std::vector<std::string> speaker_names(const speakers::Diarization& d,
                                       const std::vector<KnownVoice>& known, float min_similarity);

// Puts `d`'s speakers into `t`: turns as labels, each word's speaker (the turn that overlaps it
// most, else the nearest), each segment cut where its words change speaker and labelled with the
// speaker of most of its words (segments without words: of most of their time). `names` labels
// speaker i with names[i]; empty: speaker_label(i).
void label_transcription(Transcription& t, const speakers::Diarization& d,
                         const std::vector<std::string>& names = {});

class SpeakerLabeler {
 public:
  explicit SpeakerLabeler(const DiarizationSettings& settings);

  // Diarizes `audio` and labels `t` with it, naming the speakers that match `known`. Throws
  // sra::Error(unavailable) while a model is being pulled, sra::Error(config) when one cannot be
  // had, sra::Error(cancelled/deadline) from `cancel`.
  void label(Transcription& t, const AudioBuffer& audio, speakers::DiarizationOptions options,
             CancelToken* cancel, const std::vector<KnownVoice>& known = {});
  // The voice prints of `known`, which the caller has checked with check_known_speakers() (the
  // transcription path does so before decoding its audio), each clip decoded and its main
  // speaker's print taken. Throws sra::Error(invalid_request) naming `known_speaker_references[]`
  // for a clip that cannot be decoded or lasts outside kMin/kMaxKnownClipSeconds, and as label().
  std::vector<KnownVoice> voice_prints(const std::vector<KnownSpeaker>& known);
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
