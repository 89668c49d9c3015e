// VAD-chunked transcription (OpenAI's `chunking_strategy`): the speech Silero VAD finds is cut at
// silences into chunks of at most 30 s of the original audio (WhisperX's and faster-whisper's
// BatchedInferencePipeline approach), each chunk is transcribed on its own (no text carried from
// one to the next, the file's language), the model may decode them together in one batch
// (Model::transcribe_chunks), and the results are stitched in order with their times moved back
// into the file. A long file then neither loses the speech that one window's last timestamp jumps
// over in sequential long-form decoding, nor waits for its windows one after another.
//
// The request field `chunking_strategy` (declared once in chunking_option_specs(); OpenAI's SDK
// sends an object as `chunking_strategy[type]`, ... form fields, which the upload folds into one
// JSON object) and WHISPER_CHUNKING (the default of requests that do not say) take:
//   `none`   sequential long-form decoding (OpenAI's transcribe(), token for token);
//   `auto`   chunks cut where VAD finds silence, for any length;
//   `long`   `auto` for audio longer than one 30 s window, else `none`;
//   {"type": "server_vad", "threshold", "prefix_padding_ms", "silence_duration_ms"}: `auto` with
//            those VAD settings (OpenAI's names: speech probability, audio kept before speech,
//            silence that ends speech).
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/option_table.h"
#include "engine/vad/speech_timestamps.h"

namespace sra {

// The `chunking_strategy` request field.
const std::vector<OptionSpec>& chunking_option_specs();

struct ChunkingChoice {
  enum class Mode { none, automatic, long_only };
  Mode mode = Mode::none;
  vad::VadOptions vad;  // how speech and silences are found

  // Whether audio of `seconds` is chunked.
  bool applies_to(double seconds) const;
};

// Parses a `chunking_strategy` value. Throws sra::Error(invalid_request) naming `field`.
ChunkingChoice parse_chunking(std::string_view text, const std::string& field);

// One chunk: samples [start, end) of the original audio.
struct AudioSpan {
  std::int64_t start = 0;
  std::int64_t end = 0;
};

// Speech segments (in order, not overlapping) merged into spans of the original audio of at most
// `max_samples` each: a segment joins the span before it while the span, the silence between them
// included, stays within the bound. A segment longer than the bound is a span of its own (the
// model then decodes it as long-form).
std::vector<AudioSpan> plan_chunks(const std::vector<vad::SpeechSegment>& speech,
                                   std::int64_t max_samples);

}  // namespace sra
