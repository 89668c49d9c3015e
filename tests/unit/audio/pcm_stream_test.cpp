#include "audio/pcm_stream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "audio/decoder.h"
#include "core/errors.h"

namespace sra::audio {
namespace {

std::string wav_with(std::uint16_t format_tag, int rate, int bits, const std::string& data) {
  auto u32 = [](std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](std::uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
  const int block = bits / 8;
  std::string fmt = u16(format_tag) + u16(1) + u32(rate) + u32(rate * block) +
                    u16(static_cast<std::uint16_t>(block)) + u16(static_cast<std::uint16_t>(bits));
  std::string body = "WAVE" + std::string("fmt ") + u32(16) + fmt + "data" +
                     u32(static_cast<std::uint32_t>(data.size())) + data;
  return "RIFF" + u32(static_cast<std::uint32_t>(body.size())) + body;
}

std::string speechlike_pcm16(int rate, int frames) {
  std::string data;
  for (int i = 0; i < frames; ++i) {
    double t = static_cast<double>(i) / rate;
    double v = 0.4 * std::sin(2 * M_PI * 220 * t) * std::sin(2 * M_PI * 3 * t) +
               0.2 * std::sin(2 * M_PI * 1375 * t);
    auto s = static_cast<std::int16_t>(std::lrint(v * 32767));
    data.append(reinterpret_cast<const char*>(&s), 2);
  }
  return data;
}

// Streams `bytes` in pieces of `piece` bytes (odd sizes cut samples in two).
std::vector<float> streamed(PcmFormat format, const std::string& bytes, std::size_t piece) {
  PcmStream stream(format);
  std::vector<float> out;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    stream.push(std::string_view(bytes).substr(at, piece), out);
  }
  stream.flush(out);
  return out;
}

TEST(PcmStream, TwentyFourKilohertzGivesWhatTheFileDecoderGives) {
  const std::string pcm = speechlike_pcm16(24000, 24000 * 2);
  const AudioBuffer file = decode(wav_with(1, 24000, 16, pcm));
  for (std::size_t piece : {4800u, 4801u, 333u}) {
    const std::vector<float> live = streamed({PcmEncoding::pcm16, 24000}, pcm, piece);
    ASSERT_EQ(live.size(), file.samples.size()) << piece;
    double worst = 0;
    for (std::size_t i = 0; i < live.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(live[i] - file.samples[i])));
    }
    EXPECT_LT(worst, 1e-6) << "pieces of " << piece << " bytes";
  }
}

TEST(PcmStream, SixteenKilohertzIsTheWavFastPath) {
  const std::string pcm = speechlike_pcm16(16000, 16000);
  const AudioBuffer file = decode(wav_with(1, 16000, 16, pcm));
  const std::vector<float> live = streamed({PcmEncoding::pcm16, 16000}, pcm, 1001);
  EXPECT_EQ(live, file.samples);
}

TEST(PcmStream, G711AsFfmpegDecodesIt) {
  // Every byte value, repeated: FFmpeg's pcm_mulaw / pcm_alaw decoders (WAV format tags 7 and 6)
  // through the same 8 kHz resampling.
  std::string bytes;
  for (int r = 0; r < 40; ++r) {
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  }
  for (auto [encoding, tag] : {std::pair{PcmEncoding::mulaw, 7}, std::pair{PcmEncoding::alaw, 6}}) {
    const AudioBuffer file = decode(wav_with(static_cast<std::uint16_t>(tag), 8000, 8, bytes));
    const std::vector<float> live = streamed({encoding, 8000}, bytes, 160);
    ASSERT_EQ(live.size(), file.samples.size());
    double worst = 0;
    for (std::size_t i = 0; i < live.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(live[i] - file.samples[i])));
    }
    EXPECT_LT(worst, 1e-6) << "tag " << tag;
  }
  // Reference values of the G.711 tables.
  EXPECT_EQ(mulaw_to_linear(0x00), -32124);
  EXPECT_EQ(mulaw_to_linear(0x80), 32124);
  EXPECT_EQ(mulaw_to_linear(0xFF), 0);
  EXPECT_EQ(alaw_to_linear(0xD5), 8);
  EXPECT_EQ(alaw_to_linear(0x55), -8);
  EXPECT_EQ(alaw_to_linear(0xAA), 32256);
}

TEST(PcmStream, RefusesRatesItCannotResample) {
  EXPECT_THROW(PcmStream({PcmEncoding::pcm16, 0}), Error);
  EXPECT_THROW(PcmStream({PcmEncoding::pcm16, 1000000}), Error);
}

}  // namespace
}  // namespace sra::audio

namespace sra::audio {
namespace {

std::string pcm16_bytes(std::initializer_list<std::int16_t> samples) {
  std::string out(samples.size() * 2, '\0');
  std::size_t i = 0;
  for (std::int16_t s : samples) std::memcpy(out.data() + 2 * i++, &s, 2);
  return out;
}

TEST(MixToMono, AveragesEachFrameAndLeavesAPartialFrameOut) {
  // Two frames of three channels, then half a frame.
  std::string in = pcm16_bytes({300, -300, 30, 32767, 32767, 32767, 5});
  std::string out = mix_to_mono_pcm16(in, PcmEncoding::pcm16, 3);
  EXPECT_EQ(out, pcm16_bytes({10, 32767}));
  // G.711 is decoded before it is averaged.
  std::string law = {static_cast<char>(0x00), static_cast<char>(0xFF)};
  out = mix_to_mono_pcm16(law, PcmEncoding::mulaw, 2);
  EXPECT_EQ(out, pcm16_bytes({static_cast<std::int16_t>(
                     (mulaw_to_linear(0x00) + mulaw_to_linear(0xFF)) / 2)}));
}

}  // namespace
}  // namespace sra::audio
