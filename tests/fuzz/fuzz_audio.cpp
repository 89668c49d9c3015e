// libFuzzer harness: audio decoding from memory, the WAV fast path and FFmpeg's demuxers and
// decoders (restricted to the formats we claim), and the upload probe. Property: no crash, no
// hang; bad bytes are sra::Error(unsupported_media or too_large); the output is finite 16 kHz mono.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "audio/decoder.h"
#include "audio/wav_reader.h"
#include "core/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)sra::audio::probe(bytes, true);
  (void)sra::audio::probe(bytes.substr(0, bytes.size() / 2), false);
  (void)sra::audio::read_simple_wav(bytes);
  try {
    auto audio = sra::audio::decode(bytes, {.max_seconds = 60});
    for (float s : audio.samples) {
      if (!std::isfinite(s)) __builtin_trap();
    }
  } catch (const sra::Error& e) {
    if (e.kind() != sra::ErrorKind::unsupported_media && e.kind() != sra::ErrorKind::too_large &&
        e.kind() != sra::ErrorKind::internal) {
      __builtin_trap();
    }
  }
  return 0;
}
