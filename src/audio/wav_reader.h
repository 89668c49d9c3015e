// The WAV fast path: reads RIFF/WAVE files whose samples are 16-bit integer or 32-bit float PCM
// at 16 kHz without FFmpeg. Returns nullopt for any other WAV variant (or non-WAV bytes), which
// then go through FFmpeg. A data chunk that claims more bytes than present is read as far as the
// bytes go, as FFmpeg does. Thread-safe pure function.
#pragma once

#include <optional>
#include <string_view>

#include "core/audio_buffer.h"

namespace sra::audio {

std::optional<AudioBuffer> read_simple_wav(std::string_view bytes);

}  // namespace sra::audio
