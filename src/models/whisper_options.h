// The Whisper model's option table: every option of OpenAI's transcribe() and DecodingOptions
// that a request may set (form field "beam_size") or a WHISPER_* variable may default
// (WHISPER_BEAM_SIZE), declared once with its type, bounds, default and doc. The README's table
// and the OpenAPI document are generated from it (`speech-recognition-api options`).
//
// The bounds keep every request's cost bounded: at most 6 fallback temperatures, beams and
// samples up to `max_beam` (WHISPER_MAX_BEAM_SIZE, 10 unless configured), the first timestamp
// within the 30 s window, at most 256 clips, prompt and prefix text that can fit the model's
// context (checked again in tokens by the model). Pure functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "core/option_table.h"
#include "engine/whisper/engine.h"

namespace sra {

inline constexpr int kDefaultMaxBeamSize = 10;  // beam_size and best_of, unless configured
inline constexpr int kMaxPromptTokens = 224;    // prompt and prefix: half of Whisper's context

// The table, each option with what sets it in the engine's options; `max_beam` bounds beam_size
// and best_of. A setter throws sra::Error(invalid_request, field) for a value the spec's type
// admits but Whisper does not (an unknown language, a malformed token list).
BoundOptions<whisper::TranscribeOptions> whisper_options(int max_beam = kDefaultMaxBeamSize);
// Its specs alone.
std::vector<OptionSpec> whisper_option_specs(int max_beam = kDefaultMaxBeamSize);

}  // namespace sra
