#include "engine/vad/speech_timestamps.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace sra::vad {

std::vector<float> faster_whisper_probabilities(const SileroVad& model,
                                                const std::vector<float>& samples,
                                                const CancelToken* cancel) {
  return model.probabilities(
      samples, samples.size() + (kSileroWindow - samples.size() % kSileroWindow), cancel);
}

std::vector<SpeechSegment> speech_timestamps(const std::vector<float>& probabilities,
                                             std::int64_t audio_samples, const VadOptions& o) {
  constexpr double rate = 16000;
  constexpr std::int64_t window = kSileroWindow;
  const double threshold = o.threshold;
  const double neg_threshold =
      o.neg_threshold >= 0 ? o.neg_threshold : std::max(threshold - 0.15, 0.01);
  const double min_speech_samples = rate * o.min_speech_duration_ms / 1000;
  const double speech_pad_samples = rate * o.speech_pad_ms / 1000;
  const double max_speech_samples =
      rate * o.max_speech_duration_s - static_cast<double>(window) - 2 * speech_pad_samples;
  const double min_silence_samples = rate * o.min_silence_duration_ms / 1000;
  const double min_silence_samples_at_max_speech = rate * 98 / 1000;

  bool triggered = false;
  std::vector<SpeechSegment> speeches;
  std::optional<SpeechSegment> current;
  std::int64_t temp_end = 0, prev_end = 0, next_start = 0;
  for (std::size_t k = 0; k < probabilities.size(); ++k) {
    const double p = probabilities[k];
    const std::int64_t at = window * static_cast<std::int64_t>(k);
    if (p >= threshold && temp_end) {
      temp_end = 0;
      if (next_start < prev_end) next_start = at;
    }
    if (p >= threshold && !triggered) {
      triggered = true;
      current = SpeechSegment{at, 0};
      continue;
    }
    if (triggered && static_cast<double>(at - current->start) > max_speech_samples) {
      if (prev_end) {
        current->end = prev_end;
        speeches.push_back(*current);
        current.reset();
        if (next_start < prev_end) {
          triggered = false;  // silence reached before, and not speech again yet
        } else {
          current = SpeechSegment{next_start, 0};
        }
        prev_end = next_start = temp_end = 0;
      } else {
        current->end = at;
        speeches.push_back(*current);
        current.reset();
        prev_end = next_start = temp_end = 0;
        triggered = false;
        continue;
      }
    }
    if (p < neg_threshold && triggered) {
      if (!temp_end) temp_end = at;
      if (static_cast<double>(at - temp_end) > min_silence_samples_at_max_speech)
        prev_end = temp_end;  // a silence long enough to cut at if the segment grows too long
      if (static_cast<double>(at - temp_end) < min_silence_samples) continue;
      // current always holds a segment while triggered.
      current->end = temp_end;
      if (static_cast<double>(current->end - current->start) > min_speech_samples)
        speeches.push_back(*current);
      current.reset();
      prev_end = next_start = temp_end = 0;
      triggered = false;
      continue;
    }
  }
  if (current && static_cast<double>(audio_samples - current->start) > min_speech_samples) {
    current->end = audio_samples;
    speeches.push_back(*current);
  }
  for (std::size_t i = 0; i < speeches.size(); ++i) {
    SpeechSegment& s = speeches[i];
    if (i == 0) {
      s.start = static_cast<std::int64_t>(
          std::max(0.0, static_cast<double>(s.start) - speech_pad_samples));
    }
    if (i + 1 != speeches.size()) {
      const std::int64_t silence = speeches[i + 1].start - s.end;
      if (static_cast<double>(silence) < 2 * speech_pad_samples) {
        s.end += silence / 2;
        speeches[i + 1].start = std::max<std::int64_t>(0, speeches[i + 1].start - silence / 2);
      } else {
        s.end = static_cast<std::int64_t>(std::min(
            static_cast<double>(audio_samples), static_cast<double>(s.end) + speech_pad_samples));
        speeches[i + 1].start = static_cast<std::int64_t>(
            std::max(0.0, static_cast<double>(speeches[i + 1].start) - speech_pad_samples));
      }
    } else {
      s.end = static_cast<std::int64_t>(std::min(static_cast<double>(audio_samples),
                                                 static_cast<double>(s.end) + speech_pad_samples));
    }
  }
  return speeches;
}

SpeechMap::SpeechMap(const std::vector<SpeechSegment>& segments, int sample_rate)
    : sample_rate_(sample_rate) {
  std::int64_t previous_end = 0, silent = 0;
  for (const auto& s : segments) {
    silent += s.start - previous_end;
    previous_end = s.end;
    chunk_end_sample_.push_back(s.end - silent);
    silence_before_.push_back(static_cast<double>(silent) / sample_rate);
  }
}

std::size_t SpeechMap::segment_index(double seconds, bool is_end) const {
  if (chunk_end_sample_.empty()) return 0;
  auto sample = static_cast<std::int64_t>(seconds * sample_rate_);
  if (is_end) {
    auto exact = std::find(chunk_end_sample_.begin(), chunk_end_sample_.end(), sample);
    if (exact != chunk_end_sample_.end())
      return static_cast<std::size_t>(exact - chunk_end_sample_.begin());
  }
  auto it = std::upper_bound(chunk_end_sample_.begin(), chunk_end_sample_.end(), sample);
  return std::min(static_cast<std::size_t>(it - chunk_end_sample_.begin()),
                  chunk_end_sample_.size() - 1);
}

double SpeechMap::original_time_in(double seconds, std::size_t index) const {
  if (silence_before_.empty()) return seconds;
  index = std::min(index, silence_before_.size() - 1);
  return std::round((silence_before_[index] + seconds) * 100) / 100;
}

double SpeechMap::original_time(double seconds, bool is_end) const {
  return original_time_in(seconds, segment_index(seconds, is_end));
}

}  // namespace sra::vad
