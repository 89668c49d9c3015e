// PcmStream: raw audio arriving in pieces (a live session's appends) turned into the AudioBuffer
// samples models take: mono float at 16 kHz. Formats are OpenAI Realtime's input formats: 16-bit
// little-endian PCM (at 24 kHz as OpenAI sends it, or at 16 kHz, which needs no resampling) and
// G.711 mu-law / A-law at 8 kHz. Other rates go through FFmpeg's resampler with the settings the
// file decoder uses, so a turn streamed at 24 kHz gives the samples a 24 kHz WAV of it gives.
//
// One stream per session, used by one thread at a time. A piece may end inside a sample: the odd
// byte waits for the next piece. Nothing here throws on the bytes themselves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sra::audio {

enum class PcmEncoding { pcm16, mulaw, alaw };

struct PcmFormat {
  PcmEncoding encoding = PcmEncoding::pcm16;  // how each sample is stored
  int rate = 24000;                           // samples per second (8000 for G.711)

  bool operator==(const PcmFormat&) const = default;
  // Bytes per second of audio in this format.
  int bytes_per_second() const { return encoding == PcmEncoding::pcm16 ? 2 * rate : rate; }
};

class PcmStream {
 public:
  // Throws sra::Error(invalid_request) for a rate outside 8000..48000.
  explicit PcmStream(PcmFormat format);
  ~PcmStream();
  PcmStream(const PcmStream&) = delete;
  PcmStream& operator=(const PcmStream&) = delete;

  // Appends the 16 kHz samples of `bytes` (and of any byte held back) to `out`. The resampler
  // keeps a few milliseconds back until the next piece or flush().
  void push(std::string_view bytes, std::vector<float>& out);
  // Appends what the resampler still holds.
  void flush(std::vector<float>& out);

  const PcmFormat& format() const { return format_; }

 private:
  void resample(const std::int16_t* samples, int count, std::vector<float>& out);

  PcmFormat format_;
  std::string carry_;  // a byte of a 16-bit sample cut by the end of the last piece
  std::vector<std::int16_t> pcm_;
  struct Resampler;
  std::unique_ptr<Resampler> resampler_;  // null when the rate is already 16 kHz
};

// Interleaved frames of `channels` channels of `encoding` samples mixed down to mono 16-bit
// little-endian PCM, each frame the mean of its channels (G.711 decoded first). A partial frame at
// the end is left out: the caller keeps it for the next piece (bytes % frame of them).
std::string mix_to_mono_pcm16(std::string_view bytes, PcmEncoding encoding, int channels);

// The 16-bit linear value of one G.711 byte (ITU-T G.711, as FFmpeg's pcm_mulaw/pcm_alaw).
std::int16_t mulaw_to_linear(std::uint8_t byte);
std::int16_t alaw_to_linear(std::uint8_t byte);

}  // namespace sra::audio
