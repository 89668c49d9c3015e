#include "audio/decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "audio/wav_reader.h"
#include "core/errors.h"
#include "test_paths.h"

namespace sra::audio {
namespace {

// A PCM16 WAV file with `channels` interleaved channels, sample i of channel c = f(i, c).
template <typename F>
std::string make_wav(int rate, int channels, int frames, F f) {
  std::string data;
  for (int i = 0; i < frames; ++i) {
    for (int c = 0; c < channels; ++c) {
      auto v = static_cast<std::int16_t>(std::lrint(std::clamp(f(i, c), -1.0, 1.0) * 32767));
      data.append(reinterpret_cast<const char*>(&v), 2);
    }
  }
  auto u32 = [](std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](std::uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
  std::string fmt = u16(1) + u16(static_cast<std::uint16_t>(channels)) + u32(rate) +
                    u32(rate * channels * 2) + u16(static_cast<std::uint16_t>(channels * 2)) +
                    u16(16);
  std::string body = "WAVE" + std::string("fmt ") + u32(16) + fmt + "data" +
                     u32(static_cast<std::uint32_t>(data.size())) + data;
  return "RIFF" + u32(static_cast<std::uint32_t>(body.size())) + body;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / std::max<std::size_t>(x.size(), 1));
}

ErrorKind kind_of(std::string_view bytes, DecodeOptions options = {}) {
  try {
    decode(bytes, options);
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::internal;
}

TEST(Decoder, SameSpeechInThreeFormats) {
  auto dir = test::shared_dir() / "audio";
  AudioBuffer wav = decode(test::read_file(dir / "jfk.wav"));
  AudioBuffer mp3 = decode(test::read_file(dir / "jfk.mp3"));
  AudioBuffer flac = decode(test::read_file(dir / "jfk.flac"));
  EXPECT_NEAR(wav.seconds(), 11.0, 0.1);
  EXPECT_NEAR(mp3.seconds(), wav.seconds(), 0.1);
  EXPECT_NEAR(flac.seconds(), wav.seconds(), 0.1);
  EXPECT_GT(rms(wav.samples), 0.01);
  EXPECT_NEAR(rms(mp3.samples), rms(wav.samples), rms(wav.samples) * 0.2);
  EXPECT_NEAR(rms(flac.samples), rms(wav.samples), rms(wav.samples) * 0.2);
}

TEST(Decoder, WavFastPathMixesChannels) {
  std::string wav = make_wav(
      16000, 2, 16000, [](int i, int c) { return (c == 0 ? 0.5 : 0.25) * std::sin(i * 0.1); });
  auto fast = read_simple_wav(wav);
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(fast->samples.size(), 16000u);
  EXPECT_NEAR(fast->samples[100], 0.375 * std::sin(10.0), 1e-3);
}

TEST(Decoder, ResamplesAndMixesDownOtherRates) {
  // 2 s of stereo at 44.1 kHz whose channels cancel: the mono mix is silence.
  std::string cancel = make_wav(44100, 2, 88200, [](int i, int c) {
    double v = 0.5 * std::sin(i * 2 * M_PI * 440 / 44100);
    return c == 0 ? v : -v;
  });
  ASSERT_FALSE(read_simple_wav(cancel).has_value());  // not 16 kHz: FFmpeg's path
  AudioBuffer a = decode(cancel);
  EXPECT_NEAR(a.seconds(), 2.0, 0.02);
  EXPECT_LT(rms(a.samples), 1e-3);

  std::string same = make_wav(8000, 1, 8000, [](int i, int) { return 0.5 * std::sin(i * 0.3); });
  AudioBuffer b = decode(same);
  EXPECT_NEAR(b.seconds(), 1.0, 0.02);
  EXPECT_NEAR(rms(b.samples), 0.5 / std::sqrt(2.0), 0.03);
}

TEST(Decoder, RefusesWhatIsNotAudio) {
  EXPECT_EQ(kind_of(""), ErrorKind::unsupported_media);
  EXPECT_EQ(kind_of("hello, this is plain text and not audio at all"),
            ErrorKind::unsupported_media);
  std::string noise(100000, '\0');
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919) % 251);
  EXPECT_EQ(kind_of(noise), ErrorKind::unsupported_media);
  // A WAV header whose data chunk is empty.
  EXPECT_EQ(kind_of(make_wav(16000, 1, 0, [](int, int) { return 0.0; })),
            ErrorKind::unsupported_media);
}

TEST(Decoder, TruncatedFilesNeverCrash) {
  auto dir = test::shared_dir() / "audio";
  for (auto name : {"jfk.mp3", "jfk.flac", "jfk.wav"}) {
    std::string bytes = test::read_file(dir / name);
    for (std::size_t cut : {std::size_t{1}, std::size_t{10}, std::size_t{44}, std::size_t{100},
                            std::size_t{1000}, bytes.size() / 2}) {
      std::string_view part = std::string_view(bytes).substr(0, cut);
      try {
        AudioBuffer a = decode(part);
        EXPECT_GT(a.samples.size(), 0u);
        EXPECT_LT(a.seconds(), 11.1);
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::unsupported_media) << name << " cut at " << cut;
      }
    }
    // Half a file still decodes to about half its audio.
    EXPECT_GT(decode(std::string_view(bytes).substr(0, bytes.size() / 2)).seconds(), 3.0) << name;
  }
}

TEST(Decoder, LimitsDuration) {
  std::string bytes = test::read_file(test::shared_dir() / "audio" / "jfk.mp3");
  EXPECT_EQ(kind_of(bytes, {.max_seconds = 5}), ErrorKind::too_large);
  std::string wav = test::read_file(test::shared_dir() / "audio" / "jfk.wav");
  EXPECT_EQ(kind_of(wav, {.max_seconds = 5}), ErrorKind::too_large);
}

TEST(Decoder, ProbeTellsAudioFromGarbage) {
  auto dir = test::shared_dir() / "audio";
  std::string mp3 = test::read_file(dir / "jfk.mp3");
  EXPECT_EQ(probe(mp3, true), std::nullopt);
  EXPECT_EQ(probe(std::string_view(mp3).substr(0, 4096), false), std::nullopt);
  EXPECT_NE(probe("GIF89a not audio", true), std::nullopt);
  EXPECT_NE(probe("", true), std::nullopt);
}

}  // namespace
}  // namespace sra::audio
