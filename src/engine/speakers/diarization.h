// Diarizer: who spoke when in a recording, from the segmentation network (SpeakerSegmentation:
// up to 3 local speakers in each 10 s chunk, overlap included) and voice prints (CamPlusPlus):
//
//   1. chunks of 10 s every `step_seconds` (the last one ends with the audio), each segmented;
//   2. each local speaker active long enough in a chunk gets one embedding of the chunk's audio
//      where it speaks alone (at most its first 4 s of it);
//   3. the embeddings are clustered (agglomerative, average cosine linkage, cut at `threshold`,
//      or into the number of speakers asked for, kept within `min_speakers`..`max_speakers`);
//   4. the chunks' local activities are mapped to the clusters and averaged over the chunks that
//      cover each frame; each frame keeps as many speakers as the chunks count there, the most
//      active ones (pyannote's reconstruction), so overlapping speech keeps both voices.
//
// Memory is bounded by the chunks' frame activities (a few bytes per frame) plus one chunk of
// work at a time: an hour of audio needs a few megabytes beyond the samples themselves.
// The models are shared and immutable; a Diarizer may run on any thread, several at once.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "engine/speakers/campplus.h"
#include "engine/speakers/segmentation.h"

namespace sra::speakers {

struct DiarizationOptions {
  std::optional<int> num_speakers;  // exactly this many speakers (the clusters are cut so)
  int min_speakers = 1;             // at least this many
  int max_speakers = 20;            // at most this many
  float threshold = 0.5f;           // cosine distance at which clusters stop merging
  double step_seconds = 5.0;        // between chunk starts (chunks are 10 s)
  double min_turn_seconds = 0.25;   // shorter turns are dropped
  double min_gap_seconds = 0.25;    // shorter pauses within one speaker's speech are filled
  // Polled between chunks: true stops the work with sra::Error(cancelled). May be empty.
  std::function<bool()> cancelled;
};

// One speaker's turn: [start, end) seconds, and the speaker's index (0, 1, ... in order of first
// appearance).
struct SpeakerTurn {
  double start = 0, end = 0;
  int speaker = 0;
};

struct Diarization {
  std::vector<SpeakerTurn> turns;             // by start time; overlapping turns possible
  int speakers = 0;                           // distinct speakers found
  std::vector<std::vector<float>> centroids;  // each speaker's mean voice print (unit length)
};

class Diarizer {
 public:
  Diarizer(const SpeakerSegmentation& segmentation, const CamPlusPlus& embedding)
      : segmentation_(segmentation), embedding_(embedding) {}

  // Diarizes 16 kHz mono samples. Throws sra::Error(invalid_request) for options out of range,
  // sra::Error(cancelled) when `options.cancelled` says so.
  Diarization diarize(const std::vector<float>& samples, const DiarizationOptions& options) const;

  // The voice print (unit length, comparable with Diarization::centroids) of the main speaker of
  // a short clip of 16 kHz mono samples (its first 10 s are used): the local speaker who speaks
  // most, from where it speaks alone, as diarize() takes prints; the whole clip when no speaker
  // speaks long enough. Throws sra::Error(invalid_request) for less than 0.1 s of audio.
  std::vector<float> voice_print(const std::vector<float>& clip) const;

 private:
  const SpeakerSegmentation& segmentation_;
  const CamPlusPlus& embedding_;
};

// Agglomerative clustering of unit vectors by average cosine linkage: merges the closest pair
// while its distance (1 - similarity) is below `threshold`, then keeps merging or refuses to
// according to `min_clusters`/`max_clusters` (`exact`, when set, wins). Returns each vector's
// cluster, numbered 0.. in order of first appearance.
std::vector<int> cluster_embeddings(const std::vector<std::vector<float>>& embeddings,
                                    float threshold, int min_clusters, int max_clusters,
                                    std::optional<int> exact);

}  // namespace sra::speakers
