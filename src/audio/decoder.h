// Audio decoding: any container and codec that FFmpeg's libraries read (wav, flac, mp3,
// ogg/vorbis/opus, m4a/aac, webm, ...) to the AudioBuffer models take: mono float at 16 kHz.
// Several channels are mixed down. 16-bit and float PCM WAV at 16 kHz take a fast path that does
// not touch FFmpeg.
//
// Pure functions over bytes in memory: safe to call from any thread at the same time. Bytes that
// are not audio, empty input, or input with no decodable samples throw
// sra::Error(unsupported_media) with a message saying what is wrong; audio longer than
// `max_seconds` throws sra::Error(too_large). Never crashes on hostile input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/audio_buffer.h"

namespace sra::audio {

struct DecodeOptions {
  double max_seconds = 3 * 3600.0;  // longest audio accepted, in seconds
};

AudioBuffer decode(std::string_view bytes, const DecodeOptions& options = {});

// Looks at the start of a file and says whether it is audio FFmpeg can open: nullopt if it is,
// else the reason it is not. `complete` says whether `prefix` is the whole file; if it is not,
// a recognised container is enough. Cheap; used to refuse garbage uploads before a task is
// created (a file that passes may still fail to decode later, and its task then fails).
std::optional<std::string> probe(std::string_view prefix, bool complete);

struct ProbeResult {
  std::optional<std::string> refusal;  // why the file is not audio we can open; nullopt if it is
  double seconds = 0;                  // the audio's estimated duration, in seconds
};
// probe() of the first bytes of a `total_bytes` long file, and an estimate of its duration for
// queue accounting (the header's duration, else the bit rate times the size, else 128 kbit/s).
ProbeResult inspect(std::string_view prefix, std::uint64_t total_bytes);

}  // namespace sra::audio
