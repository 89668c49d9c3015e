#include "audio/wav_reader.h"

#include <cstdint>
#include <cstring>

namespace sra::audio {
namespace {

std::uint32_t le32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::uint16_t le16(const char* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

std::optional<AudioBuffer> read_simple_wav(std::string_view b) {
  if (b.size() < 12 || b.substr(0, 4) != "RIFF" || b.substr(8, 4) != "WAVE") return std::nullopt;
  std::size_t pos = 12;
  int format = 0, channels = 0, bits = 0;
  std::uint32_t rate = 0;
  bool have_fmt = false;
  while (pos + 8 <= b.size()) {
    std::string_view id = b.substr(pos, 4);
    std::uint64_t size = le32(b.data() + pos + 4);
    std::size_t body = pos + 8;
    if (id == "fmt ") {
      if (size < 16 || body + 16 > b.size()) return std::nullopt;
      format = le16(b.data() + body);
      channels = le16(b.data() + body + 2);
      rate = le32(b.data() + body + 4);
      bits = le16(b.data() + body + 14);
      if (format == 0xFFFE && size >= 40 && body + 40 <= b.size()) {
        format = le16(b.data() + body + 24);  // WAVE_FORMAT_EXTENSIBLE: the sub-format
      }
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt || rate != kSampleRate || channels < 1 || channels > 8) return std::nullopt;
      bool pcm16 = format == 1 && bits == 16;
      bool float32 = format == 3 && bits == 32;
      if (!pcm16 && !float32) return std::nullopt;
      std::size_t available = b.size() - body;
      std::size_t bytes = size > available ? available : static_cast<std::size_t>(size);
      std::size_t frame = static_cast<std::size_t>(channels) * (bits / 8);
      std::size_t frames = bytes / frame;
      AudioBuffer out;
      out.samples.resize(frames);
      const char* p = b.data() + body;
      for (std::size_t i = 0; i < frames; ++i) {
        float sum = 0;
        for (int c = 0; c < channels; ++c) {
          const char* s = p + i * frame + static_cast<std::size_t>(c) * (bits / 8);
          if (pcm16) {
            std::int16_t v;
            std::memcpy(&v, s, 2);
            sum += static_cast<float>(v) / 32768.0f;
          } else {
            float v;
            std::memcpy(&v, s, 4);
            sum += v;
          }
        }
        out.samples[i] = sum / static_cast<float>(channels);
      }
      return out;
    }
    pos = body + static_cast<std::size_t>(size) + (size & 1);
  }
  return std::nullopt;
}

}  // namespace sra::audio
