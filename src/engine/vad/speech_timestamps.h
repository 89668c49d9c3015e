// Speech segments from Silero's probabilities, as faster-whisper's get_speech_timestamps finds
// them (itself Silero's own algorithm): a segment starts at a window at or above `threshold`,
// ends after `min_silence_duration_ms` below `threshold - 0.15`, is split before
// `max_speech_duration_s` (at the last silence over 98 ms when there is one), dropped when not
// longer than `min_speech_duration_ms`, and padded by `speech_pad_ms` on each side (half the gap
// each when neighbours are closer). SpeechMap then maps times in the audio of the speech only
// (the segments concatenated) back to the original audio.
//
// Pure values and functions; safe from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "engine/vad/silero_vad.h"

namespace sra::vad {

// faster-whisper's VadOptions, with its defaults.
struct VadOptions {
  double threshold = 0.5;             // a window at or above is speech
  double neg_threshold = -1;          // below ends speech; < 0: max(threshold - 0.15, 0.01)
  double min_speech_duration_ms = 0;  // shorter segments are dropped
  double max_speech_duration_s = std::numeric_limits<double>::infinity();  // longer are split
  double min_silence_duration_ms = 2000;  // silence that ends a segment
  double speech_pad_ms = 400;             // added on each side
};

struct SpeechSegment {
  std::int64_t start = 0;  // first sample
  std::int64_t end = 0;    // one past the last sample
};

// Segments of `audio_samples` samples whose 512-sample windows have `probabilities`.
std::vector<SpeechSegment> speech_timestamps(const std::vector<float>& probabilities,
                                             std::int64_t audio_samples, const VadOptions& options);

// The probabilities faster-whisper computes for the audio: windows over the audio padded with
// zeros to the next multiple of 512 (a whole window more when it already is one). `cancel`, when
// given, is checked as SileroVad::probabilities does.
std::vector<float> faster_whisper_probabilities(const SileroVad& model,
                                                const std::vector<float>& samples,
                                                const CancelToken* cancel = nullptr);

// Where the concatenated speech came from (faster-whisper's SpeechTimestampsMap).
class SpeechMap {
 public:
  SpeechMap(const std::vector<SpeechSegment>& segments, int sample_rate = 16000);
  // The time in the original audio of `seconds` into the concatenated speech, rounded to 10 ms.
  // An end (`is_end`) exactly at a segment's end stays in that segment.
  double original_time(double seconds, bool is_end = false) const;
  // Which segment `seconds` into the concatenated speech falls in.
  std::size_t segment_index(double seconds, bool is_end = false) const;
  // The original time, using the segment `index` for the offset (so that a segment's end stays
  // in the segment it belongs to).
  double original_time_in(double seconds, std::size_t index) const;

 private:
  int sample_rate_;
  std::vector<std::int64_t> chunk_end_sample_;  // in concatenated samples
  std::vector<double> silence_before_;          // seconds removed before each segment
};

}  // namespace sra::vad
