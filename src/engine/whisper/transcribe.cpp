// WhisperEngine::transcribe, following whisper/transcribe.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <thread>

#include "core/errors.h"
#include "core/text.h"
#include "engine/whisper/engine.h"
#include "engine/whisper/memory.h"
#include "engine/whisper/thread_budget.h"
#include "engine/whisper/word_timing.h"

namespace sra::whisper {
namespace {

constexpr int kFramesPerSecond = 16000 / kHopLength;  // 100
constexpr std::size_t kMaxClips = 256;                // clip_timestamps pairs

bool is_blank(const std::string& s) {
  return strip(s).empty();
}

// Punctuation that transcribe()'s anomaly score leaves out (a substring test, as Python's `in`):
// OpenAI's default prepended and appended punctuation, one after the other.
const std::string& anomaly_punctuation() {
  static const std::string set =
      std::string(kPrependPunctuations) + std::string(kAppendPunctuations);
  return set;
}

// Very short, very long or improbable words are anomalous.
double word_anomaly_score(const TimedWord& w) {
  double duration = w.end - w.start, score = 0;
  if (w.probability < 0.15) score += 1.0;
  if (duration < 0.133) score += (0.133 - duration) * 15;
  if (duration > 2.0) score += duration - 2.0;
  return score;
}

bool is_segment_anomaly(const TranscribeSegment* segment) {
  if (!segment || segment->words.empty()) return false;
  double score = 0;
  int counted = 0;
  for (const auto& w : segment->words) {
    if (anomaly_punctuation().find(w.word) != std::string::npos) continue;
    if (counted == 8) break;
    score += word_anomaly_score(w);
    ++counted;
  }
  return score >= 3 || score + 0.01 >= counted;
}

// The first of `segments` from `from` on that has words, or null.
const TranscribeSegment* next_words_segment(const std::vector<TranscribeSegment>& segments,
                                            std::size_t from) {
  for (std::size_t i = from; i < segments.size(); ++i)
    if (!segments[i].words.empty()) return &segments[i];
  return nullptr;
}

// whisper.utils.get_end: the end of the last word, else of the last segment.
std::optional<double> get_end(const std::vector<TranscribeSegment>& segments) {
  for (auto s = segments.rbegin(); s != segments.rend(); ++s)
    if (!s->words.empty()) return s->words.back().end;
  if (segments.empty()) return std::nullopt;
  return segments.back().end;
}

// The sampling seed of one decoding attempt: derived from the request's seed, the window and the
// attempt, so that the windows of a file do not all draw the same numbers and one file with one
// seed gives one transcript (splitmix64's finaliser).
std::uint64_t attempt_seed(std::uint64_t seed, int seek, std::size_t attempt) {
  std::uint64_t z =
      seed + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(seek) * 16 + attempt + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Python's round() to an integer: half to even.
int round_frames(double seconds) {
  return static_cast<int>(std::nearbyint(seconds * 100));
}

// transcribe()'s hallucination_silence_threshold: moves `seek` past silence before probable
// hallucinations and drops the segments from such a one on. Returns true when the whole window
// is to be dropped (a leading anomaly after a long gap: decode again from after the gap).
bool skip_hallucinations(std::vector<TranscribeSegment>& current, double threshold,
                         bool single_timestamp_ending, double time_offset, double window_end_time,
                         double segment_duration, double content_duration, int content_frames,
                         int previous_seek, int segment_size, double last_speech_timestamp,
                         int& seek) {
  if (!single_timestamp_ending) {
    auto last_word_end = get_end(current);
    if (last_word_end && *last_word_end > time_offset) {
      seek = window_end_time - *last_word_end > threshold ? round_frames(*last_word_end)
                                                          : previous_seek + segment_size;
    }
  }
  // A first segment that may be a hallucination: skip the silence before it.
  const TranscribeSegment* first = next_words_segment(current, 0);
  if (first && is_segment_anomaly(first)) {
    double gap = first->start - time_offset;
    if (gap > threshold) {
      seek = previous_seek + round_frames(gap);
      return true;
    }
  }
  // A possible hallucination surrounded by silence or more hallucinations: skip up to it.
  double hal_last_end = last_speech_timestamp;
  for (std::size_t si = 0; si < current.size(); ++si) {
    const TranscribeSegment& segment = current[si];
    if (segment.words.empty()) continue;
    if (is_segment_anomaly(&segment)) {
      const TranscribeSegment* next = next_words_segment(current, si + 1);
      double hal_next_start = next ? next->words[0].start : time_offset + segment_duration;
      bool silence_before = segment.start - hal_last_end > threshold || segment.start < threshold ||
                            segment.start - time_offset < 2.0;
      bool silence_after = hal_next_start - segment.end > threshold || is_segment_anomaly(next) ||
                           window_end_time - segment.end < 2.0;
      if (silence_before && silence_after) {
        seek = round_frames(std::max(time_offset + 1, segment.start));
        if (content_duration - segment.end < threshold) seek = content_frames;
        current.erase(current.begin() + static_cast<std::ptrdiff_t>(si), current.end());
        break;
      }
    }
    hal_last_end = segment.end;
  }
  return false;
}

// Runs f(), adding the seconds it took to `total`.
template <typename F>
auto timed(double& total, F f) {
  auto start = std::chrono::steady_clock::now();
  struct Add {
    double& total;
    std::chrono::steady_clock::time_point start;
    ~Add() {
      total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  } add{total, start};
  return f();
}

// How far before its segment's end the speech of a window must stop for seek_by_words to seek
// back to it: closer than this, the gap is the pause a timestamp normally leaves.
constexpr double kWordSeekSlack = 1.0;

// After a window's words are timed: OpenAI's rule (with word timestamps, a window that does not
// end in a single timestamp continues from its last word's end) and, with `guard`
// (seek_by_words), also a window whose last segment runs on well past its last word: the model
// skipped audio there, which the next window hears again.
void seek_to_last_word(const std::vector<TranscribeSegment>& segments, bool single_timestamp_ending,
                       double time_offset, bool guard, int& seek) {
  auto last_word_end = get_end(segments);
  if (!last_word_end || *last_word_end <= time_offset) return;
  if (!single_timestamp_ending) {
    seek = round_frames(*last_word_end);
  } else if (guard && !segments.empty() && segments.back().end - *last_word_end > kWordSeekSlack) {
    seek = std::min(seek, round_frames(*last_word_end));
  }
}

}  // namespace

std::map<std::string, double> WhisperEngine::detect_audio_language(
    const std::vector<float>& samples, const std::vector<std::string>& allowed) const {
  ThreadBudget::Scope threads(threads_);
  if (!tokenizer_.multilingual()) throw invalid_request("this model knows English only");
  Mel mel = this->mel(pad_or_trim(samples), 0);
  return detect_language(encode(mel_window(mel, 0, kChunkFrames)), allowed);
}

WhisperEngine::FirstWindow WhisperEngine::first_window(const std::vector<float>& samples,
                                                       bool encode_it,
                                                       const CancelToken* cancel) const {
  FirstWindow first;
  // Pad 30 s of silence to the input audio, for slicing.
  first.mel = this->mel(samples, kChunkSamples);
  if (encode_it) {
    const int content_frames = first.mel.n_frames - kChunkFrames;
    first.features =
        encode(mel_window(first.mel, 0, std::min(kChunkFrames, content_frames)), cancel);
  }
  return first;
}

TranscribeResult WhisperEngine::transcribe(const std::vector<float>& samples,
                                           const TranscribeOptions& options) const {
  ThreadBudget::Scope threads(threads_);
  return transcribe_from(first_window(samples, false, options.cancel), options);
}

void WhisperEngine::transcribe_batch(
    const std::vector<const std::vector<float>*>& chunks, const TranscribeOptions& options,
    int parallel, const std::function<void(std::size_t, TranscribeResult&&)>& on_done) const {
  // Each chunk in flight holds its window's cross-attention keys and values: bounded in bytes, so
  // that a large model batches fewer chunks (base: 37 MB each; large-v3: 491 MB, one at a time).
  const HParams& h = hparams();
  const double cross_bytes =
      2.0 * h.n_text_layer * h.n_audio_ctx * h.n_text_state * (half_cross_cache_ ? 2 : 4);
  constexpr double kBatchCrossBytes = 320.0 * 1024 * 1024;
  parallel = std::clamp(static_cast<int>(kBatchCrossBytes / std::max(cross_bytes, 1.0)), 1,
                        std::max(parallel, 1));
  CancelToken group(options.cancel);  // cancelled by the first failure, or by the caller's
  TranscribeOptions each = options;
  each.cancel = &group;
  each.on_segment = nullptr;
  for (std::size_t from = 0; from < chunks.size(); from += static_cast<std::size_t>(parallel)) {
    const std::size_t to = std::min(chunks.size(), from + static_cast<std::size_t>(parallel));
    std::vector<FirstWindow> firsts;
    double encode_seconds = 0;
    {
      // Encoded in turn, each with every thread this call may use.
      ThreadBudget::Scope threads(threads_);
      for (std::size_t i = from; i < to; ++i) {
        group.check();
        firsts.push_back(
            timed(encode_seconds, [&] { return first_window(*chunks[i], true, &group); }));
      }
    }
    // Decoded together: each on a thread of its own, their steps merged by the batcher.
    std::vector<TranscribeResult> results(to - from);
    std::vector<std::exception_ptr> errors(to - from);
    std::vector<std::thread> workers;
    try {
      for (std::size_t i = from; i < to; ++i) {
        workers.emplace_back([&, i] {
          try {
            ThreadBudget::Scope threads(threads_);
            results[i - from] = transcribe_from(std::move(firsts[i - from]), each);
          } catch (...) {
            errors[i - from] = std::current_exception();
            group.cancel("another chunk of the batch failed");
          }
        });
      }
    } catch (...) {  // no thread to be had: those started stop, then the error goes up
      group.cancel("the batch could not start its threads");
      for (auto& w : workers) w.join();
      throw;
    }
    for (auto& w : workers) w.join();
    // The caller's own cancellation or deadline wins over the siblings' "another chunk failed".
    if (options.cancel) options.cancel->check();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (std::size_t i = from; i < to; ++i) {
      if (i == from) results[0].encode_seconds += encode_seconds;
      on_done(i, std::move(results[i - from]));
    }
  }
}

TranscribeResult WhisperEngine::transcribe_from(FirstWindow first,
                                                const TranscribeOptions& options) const {
  const HParams& h = hparams();
  const SpecialTokens& sp = tokenizer_.special();
  Mel mel = std::move(first.mel);
  const int content_frames = mel.n_frames - kChunkFrames;
  const double content_duration = static_cast<double>(content_frames) * kHopLength / 16000.0;

  DecodingOptions decode_options = options.decode;
  if (options.prefix_text) {
    decode_options.prefix = tokenizer_.encode(" " + strip(*options.prefix_text));
  }
  if (!options.keyterms.empty()) {
    decode_options.keyterms = std::make_shared<const KeytermBias>(
        tokenizer_, options.keyterms, static_cast<float>(options.keyterm_boost));
  }
  // With keyterms_prompt, the terms open every window's prompt (faster-whisper's hotwords).
  std::vector<int> keyterm_prompt;
  if (options.keyterms_prompt && !options.keyterms.empty()) {
    std::string joined;
    for (const auto& term : options.keyterms) joined += (joined.empty() ? "" : ", ") + strip(term);
    keyterm_prompt = tokenizer_.encode(" " + joined);
    const std::size_t most = static_cast<std::size_t>(h.n_text_ctx / 4);
    if (keyterm_prompt.size() > most) keyterm_prompt.resize(most);
  }
  double encode_seconds = 0, decode_seconds = 0;
  // The encoder output of the window at seek 0 (min(3000, content) mel frames, zero-padded), when
  // known. Language detection reads the first 3000 frames of the padded log-mel: the same window
  // when the audio fills it, so that it is not encoded twice.
  std::vector<float> first_features = std::move(first.features);
  if (!decode_options.language) {
    if (!tokenizer_.multilingual()) {
      decode_options.language = "en";
    } else {
      const bool same_window = content_frames >= kChunkFrames;
      std::vector<float> encoded;
      if (!same_window || first_features.empty()) {
        encoded = timed(encode_seconds, [&] { return encode(mel_window(mel, 0, kChunkFrames)); });
      }
      if (same_window && first_features.empty()) first_features = std::move(encoded);
      auto probs =
          detect_language(same_window ? first_features : encoded, decode_options.allowed_languages);
      decode_options.language = std::max_element(probs.begin(), probs.end(), [](auto& a, auto& b) {
                                  return a.second < b.second;
                                })->first;
    }
  }
  const std::string language = *decode_options.language;
  if (tokenizer_.multilingual() && tokenizer_.language_token(language) < 0) {
    throw invalid_request("unsupported language '" + language + "'");
  }

  // Clips in frames, clamped to the audio; empty clips are dropped (OpenAI's code would spin on
  // a clip that ends past the audio, and read before it for a negative start).
  std::vector<int> seek_points;
  for (double ts : options.clip_timestamps) {
    double frames = std::nearbyint(ts * kFramesPerSecond);
    seek_points.push_back(
        static_cast<int>(std::clamp(frames, 0.0, static_cast<double>(content_frames))));
  }
  if (seek_points.empty()) seek_points.push_back(0);
  if (seek_points.size() % 2 == 1) seek_points.push_back(content_frames);
  std::vector<std::pair<int, int>> seek_clips;
  for (std::size_t i = 0; i + 1 < seek_points.size(); i += 2) {
    if (seek_points[i + 1] > seek_points[i])
      seek_clips.emplace_back(seek_points[i], seek_points[i + 1]);
  }
  if (seek_clips.size() > kMaxClips) {
    throw invalid_field("clip_timestamps",
                        "at most " + std::to_string(kMaxClips) + " clips can be transcribed");
  }

  const int input_stride = kChunkFrames / h.n_audio_ctx;  // mel frames per output token: 2
  const double time_precision = input_stride * kHopLength / 16000.0;  // 0.02 s

  std::vector<int> all_tokens;
  TranscribeResult result;
  result.language = language;
  std::size_t prompt_reset_since = 0;
  int remaining_prompt_length = h.n_text_ctx / 2 - 1;
  std::vector<int> initial_prompt_tokens;
  if (options.initial_prompt) {
    initial_prompt_tokens = tokenizer_.encode(" " + strip(*options.initial_prompt));
    all_tokens = initial_prompt_tokens;
    remaining_prompt_length -= static_cast<int>(initial_prompt_tokens.size());
  }

  double last_speech_timestamp = 0.0;
  std::size_t clip_idx = 0;
  int seek = seek_clips.empty() ? 0 : seek_clips[0].first;
  while (clip_idx < seek_clips.size()) {
    if (options.cancel) options.cancel->check();
    auto [clip_start, clip_end] = seek_clips[clip_idx];
    if (seek < clip_start) seek = clip_start;
    if (seek >= clip_end) {
      ++clip_idx;
      if (clip_idx < seek_clips.size()) seek = seek_clips[clip_idx].first;
      continue;
    }
    const double time_offset = static_cast<double>(seek) * kHopLength / 16000.0;
    const double window_end_time = static_cast<double>(seek + kChunkFrames) * kHopLength / 16000.0;
    const int segment_size = std::min({kChunkFrames, content_frames - seek, clip_end - seek});
    const double segment_duration = static_cast<double>(segment_size) * kHopLength / 16000.0;
    std::vector<float> features;
    if (seek == 0 && !first_features.empty() &&
        segment_size == std::min(kChunkFrames, content_frames)) {
      features = std::move(first_features);
    } else {
      features = timed(encode_seconds,
                       [&] { return encode(mel_window(mel, seek, segment_size), options.cancel); });
    }
    first_features.clear();
    // The window's cross-attention keys and values, once for every decoding attempt and the
    // word alignment (the language is known here, so no attempt detects it).
    const CrossCache cross =
        timed(decode_seconds, [&] { return decoder_.cross_cache(features, half_cross_cache_); });
    // The encoder's output and work buffers are not needed again in this window: their memory
    // goes back before decoding, which holds the cache instead.
    std::vector<float>().swap(features);
    return_free_heap();

    DecodingOptions window = decode_options;
    window.cancel = options.cancel;
    if (options.carry_initial_prompt) {
      std::size_t ignored = std::max(initial_prompt_tokens.size(), prompt_reset_since);
      std::vector<int> rest(
          all_tokens.begin() + static_cast<std::ptrdiff_t>(std::min(ignored, all_tokens.size())),
          all_tokens.end());
      if (remaining_prompt_length <= 0) {
        rest.clear();  // Python's [-0:] would keep all; a non-positive budget keeps none here
      } else if (static_cast<int>(rest.size()) > remaining_prompt_length) {
        rest.erase(rest.begin(), rest.end() - remaining_prompt_length);
      }
      window.prompt = initial_prompt_tokens;
      window.prompt.insert(window.prompt.end(), rest.begin(), rest.end());
    } else {
      window.prompt.assign(all_tokens.begin() + static_cast<std::ptrdiff_t>(prompt_reset_since),
                           all_tokens.end());
    }
    if (!keyterm_prompt.empty()) {
      // The previous text keeps the room the terms leave (the prompt's tail is what decoding
      // keeps of a long one).
      const std::size_t room =
          static_cast<std::size_t>(h.n_text_ctx / 2 - 1) - keyterm_prompt.size();
      if (window.prompt.size() > room)
        window.prompt.erase(window.prompt.begin(),
                            window.prompt.end() - static_cast<std::ptrdiff_t>(room));
      window.prompt.insert(window.prompt.begin(), keyterm_prompt.begin(), keyterm_prompt.end());
    }

    // decode_with_fallback.
    DecodingResult decoded;
    std::optional<DecodingResult> best_failed;  // with best_failed_attempt
    bool best_failed_compresses = false;        // ... and under the compression ratio threshold
    for (std::size_t ti = 0; ti < options.temperatures.size(); ++ti) {
      double t = options.temperatures[ti];
      DecodingOptions attempt = window;
      attempt.temperature = t;
      if (t > 0) {
        attempt.beam_size.reset();
        attempt.patience.reset();
      } else {
        attempt.best_of.reset();
      }
      if (attempt.seed) attempt.seed = attempt_seed(*attempt.seed, seek, ti);
      decoded = timed(decode_seconds, [&] { return decode(cross, attempt); });
      bool needs_fallback = false;
      const bool compresses = !options.compression_ratio_threshold ||
                              decoded.compression_ratio <= *options.compression_ratio_threshold;
      if (!compresses) needs_fallback = true;
      if (options.logprob_threshold && decoded.avg_logprob < *options.logprob_threshold)
        needs_fallback = true;
      if (options.no_speech_threshold && decoded.no_speech_prob > *options.no_speech_threshold &&
          options.logprob_threshold && decoded.avg_logprob < *options.logprob_threshold) {
        needs_fallback = false;  // silence
      }
      if (!needs_fallback) break;
      if (options.best_failed_attempt) {
        // faster-whisper: the best of those under the ratio threshold, else of all.
        const bool under_threshold = options.compression_ratio_threshold && compresses;
        if (!best_failed || std::pair(under_threshold, decoded.avg_logprob) >
                                std::pair(best_failed_compresses, best_failed->avg_logprob)) {
          best_failed = decoded;
          best_failed_compresses = under_threshold;
        }
        if (ti + 1 == options.temperatures.size()) {
          const double last_temperature = decoded.temperature;
          decoded = std::move(*best_failed);
          // As faster-whisper does: the prompt is reset as after the last temperature.
          decoded.temperature = last_temperature;
        }
      }
    }
    const std::vector<int>& tokens = decoded.tokens;

    if (options.no_speech_threshold) {
      bool should_skip = decoded.no_speech_prob > *options.no_speech_threshold;
      if (options.logprob_threshold && decoded.avg_logprob > *options.logprob_threshold)
        should_skip = false;
      if (should_skip) {
        seek += segment_size;
        continue;
      }
    }

    std::vector<TranscribeSegment> current;
    // The segment of tokens [begin, end) of the decoding.
    auto new_segment = [&](double start, double end, std::size_t begin, std::size_t stop) {
      std::vector<int> seg_tokens(tokens.begin() + static_cast<std::ptrdiff_t>(begin),
                                  tokens.begin() + static_cast<std::ptrdiff_t>(stop));
      const auto& lps = decoded.token_logprobs;
      TranscribeSegment s;
      if (stop <= lps.size()) {
        s.token_logprobs.assign(lps.begin() + static_cast<std::ptrdiff_t>(begin),
                                lps.begin() + static_cast<std::ptrdiff_t>(stop));
      }
      s.seek = seek;
      s.start = start;
      s.end = end;
      std::vector<int> text_tokens;
      for (int t : seg_tokens) {
        if (t < sp.eot) text_tokens.push_back(t);
      }
      s.text = tokenizer_.decode(text_tokens);
      s.tokens = std::move(seg_tokens);
      s.temperature = decoded.temperature;
      s.avg_logprob = decoded.avg_logprob;
      s.compression_ratio = decoded.compression_ratio;
      s.no_speech_prob = decoded.no_speech_prob;
      return s;
    };
    const int tb = sp.timestamp_begin;
    const std::size_t n = tokens.size();
    auto is_ts = [&](std::size_t i) { return tokens[i] >= tb; };
    const bool single_timestamp_ending = n >= 2 && !is_ts(n - 2) && is_ts(n - 1);
    std::vector<std::size_t> consecutive;
    for (std::size_t i = 0; i + 1 < n; ++i) {
      if (is_ts(i) && is_ts(i + 1)) consecutive.push_back(i + 1);
    }
    const int previous_seek = seek;
    if (!consecutive.empty()) {
      std::vector<std::size_t> slices = consecutive;
      if (single_timestamp_ending) slices.push_back(n);
      std::size_t last_slice = 0;
      for (std::size_t current_slice : slices) {
        int start_pos = tokens[last_slice] - tb;
        int end_pos = tokens[current_slice - 1] - tb;
        current.push_back(new_segment(time_offset + start_pos * time_precision,
                                      time_offset + end_pos * time_precision, last_slice,
                                      current_slice));
        last_slice = current_slice;
      }
      if (single_timestamp_ending) {
        seek += segment_size;  // no speech after the last timestamp
      } else {
        int last_timestamp_pos = tokens[last_slice - 1] - tb;
        seek += last_timestamp_pos * input_stride;
      }
    } else {
      double duration = segment_duration;
      int last_ts = -1;
      for (std::size_t i = 0; i < n; ++i) {
        if (is_ts(i)) last_ts = tokens[i];
      }
      if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * time_precision;
      current.push_back(new_segment(time_offset, time_offset + duration, 0, n));
      seek += segment_size;
    }

    // whisper.timing: the words of the window's segments, with times.
    auto time_words = [&](std::vector<TranscribeSegment>& segments) {
      std::vector<int> text_tokens;
      for (const auto& s : segments)
        for (int t : s.tokens)
          if (t < sp.eot) text_tokens.push_back(t);
      std::vector<WordTiming> alignment = timed(decode_seconds, [&] {
        return find_alignment(cross, text_tokens, segment_size, language, decode_options.task);
      });
      // OpenAI's add_word_timestamps keeps its updated last speech time to itself.
      add_word_timestamps(segments, std::move(alignment), sp.eot, options.prepend_punctuations,
                          options.append_punctuations, last_speech_timestamp);
    };
    if (options.seek_by_words && !options.word_timestamps) {
      // The words are timed for the seek only: the segments keep their own times.
      std::vector<TranscribeSegment> timed_copy = current;
      time_words(timed_copy);
      seek_to_last_word(timed_copy, single_timestamp_ending, time_offset, true, seek);
    }
    if (options.word_timestamps) {
      time_words(current);
      seek_to_last_word(current, single_timestamp_ending, time_offset, options.seek_by_words, seek);
      if (options.hallucination_silence_threshold) {
        if (skip_hallucinations(current, *options.hallucination_silence_threshold,
                                single_timestamp_ending, time_offset, window_end_time,
                                segment_duration, content_duration, content_frames, previous_seek,
                                segment_size, last_speech_timestamp, seek)) {
          if (seek <= previous_seek) seek = previous_seek + std::max(segment_size, 1);
          continue;
        }
      }
      if (auto last_word_end = get_end(current)) last_speech_timestamp = *last_word_end;
    }

    // OpenAI's rules make every segment end after it starts, so the seek always advances; guard
    // anyway, by at least one frame, so that no input can make the loop spin.
    if (seek <= previous_seek) seek = previous_seek + std::max(segment_size, 1);

    // An instantaneous segment, or one without text, is cleared.
    for (auto& s : current) {
      if (s.start == s.end || is_blank(s.text)) {
        s.text.clear();
        s.tokens.clear();
        s.token_logprobs.clear();
        s.words.clear();
      }
    }
    for (auto& s : current) {
      s.id = static_cast<int>(result.segments.size());
      all_tokens.insert(all_tokens.end(), s.tokens.begin(), s.tokens.end());
      if (options.on_segment) options.on_segment(s);
      result.segments.push_back(std::move(s));
    }
    if (!options.condition_on_previous_text || decoded.temperature > 0.5) {
      prompt_reset_since = all_tokens.size();
    }
  }
  result.text = tokenizer_.decode(std::vector<int>(
      all_tokens.begin() + static_cast<std::ptrdiff_t>(initial_prompt_tokens.size()),
      all_tokens.end()));
  result.encode_seconds = encode_seconds;
  result.decode_seconds = decode_seconds;
  return result;
}

}  // namespace sra::whisper
