#include "audio/pcm_stream.h"

#include <cstring>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

#include "core/audio_buffer.h"
#include "core/errors.h"

namespace sra::audio {

std::int16_t mulaw_to_linear(std::uint8_t byte) {
  const int u = ~byte & 0xFF;
  int t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
  return static_cast<std::int16_t>((u & 0x80) ? 0x84 - t : t - 0x84);
}

std::int16_t alaw_to_linear(std::uint8_t byte) {
  const int a = byte ^ 0x55;
  int t = (a & 0x0F) << 4;
  const int segment = (a & 0x70) >> 4;
  if (segment == 0) {
    t += 8;
  } else {
    t = (t + 0x108) << (segment - 1);
  }
  return static_cast<std::int16_t>((a & 0x80) ? t : -t);
}

struct PcmStream::Resampler {
  SwrContext* swr = nullptr;
  ~Resampler() { swr_free(&swr); }
};

PcmStream::PcmStream(PcmFormat format) : format_(format) {
  if (format_.rate < 8000 || format_.rate > 48000) {
    throw invalid_request("the audio rate must be 8000..48000 Hz, not " +
                          std::to_string(format_.rate));
  }
  if (format_.rate == kSampleRate) return;
  resampler_ = std::make_unique<Resampler>();
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  // The file decoder's settings (src/audio/decoder.cpp), so both give the same samples.
  if (swr_alloc_set_opts2(&resampler_->swr, &mono, AV_SAMPLE_FMT_FLT, kSampleRate, &mono,
                          AV_SAMPLE_FMT_S16, format_.rate, 0, nullptr) < 0 ||
      swr_init(resampler_->swr) < 0) {
    throw internal_error("cannot set up the resampler for " + std::to_string(format_.rate) +
                         " Hz audio");
  }
}

PcmStream::~PcmStream() = default;

void PcmStream::push(std::string_view bytes, std::vector<float>& out) {
  pcm_.clear();
  if (format_.encoding == PcmEncoding::pcm16) {
    std::string joined;
    if (!carry_.empty()) {
      joined = carry_;
      joined.append(bytes);
      bytes = joined;
      carry_.clear();
    }
    const std::size_t whole = bytes.size() / 2;
    pcm_.resize(whole);
    for (std::size_t i = 0; i < whole; ++i) {
      const auto lo = static_cast<std::uint8_t>(bytes[2 * i]);
      const auto hi = static_cast<std::uint8_t>(bytes[2 * i + 1]);
      pcm_[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>(lo | (hi << 8)));
    }
    if (bytes.size() % 2) carry_.assign(1, bytes.back());
  } else {
    pcm_.resize(bytes.size());
    const bool mu = format_.encoding == PcmEncoding::mulaw;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const auto b = static_cast<std::uint8_t>(bytes[i]);
      pcm_[i] = mu ? mulaw_to_linear(b) : alaw_to_linear(b);
    }
  }
  if (!resampler_) {
    // As the WAV fast path: s / 32768.
    out.reserve(out.size() + pcm_.size());
    for (std::int16_t s : pcm_) out.push_back(static_cast<float>(s) / 32768.0f);
    return;
  }
  // In pieces of at most 1 s, so that the count fits the resampler's int arguments.
  for (std::size_t at = 0; at < pcm_.size(); at += static_cast<std::size_t>(format_.rate)) {
    const int n = static_cast<int>(std::min<std::size_t>(pcm_.size() - at, format_.rate));
    resample(pcm_.data() + at, n, out);
  }
}

void PcmStream::flush(std::vector<float>& out) {
  if (resampler_) resample(nullptr, 0, out);
}

void PcmStream::resample(const std::int16_t* samples, int count, std::vector<float>& out) {
  const int capacity = swr_get_out_samples(resampler_->swr, count);
  if (capacity <= 0) return;
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(capacity));
  auto* dst = reinterpret_cast<std::uint8_t*>(out.data() + at);
  const auto* src = reinterpret_cast<const std::uint8_t*>(samples);
  const int n = swr_convert(resampler_->swr, &dst, capacity, samples ? &src : nullptr, count);
  out.resize(at + static_cast<std::size_t>(std::max(n, 0)));
}

std::string mix_to_mono_pcm16(std::string_view bytes, PcmEncoding encoding, int channels) {
  const std::size_t width = encoding == PcmEncoding::pcm16 ? 2 : 1;
  const std::size_t frame = width * static_cast<std::size_t>(channels);
  const std::size_t frames = bytes.size() / frame;
  std::string out(frames * 2, '\0');
  for (std::size_t i = 0; i < frames; ++i) {
    int sum = 0;
    for (std::size_t c = 0; c < static_cast<std::size_t>(channels); ++c) {
      const char* p = bytes.data() + i * frame + c * width;
      if (encoding == PcmEncoding::pcm16) {
        std::int16_t s;
        std::memcpy(&s, p, 2);
        sum += s;
      } else {
        const auto b = static_cast<std::uint8_t>(*p);
        sum += encoding == PcmEncoding::mulaw ? mulaw_to_linear(b) : alaw_to_linear(b);
      }
    }
    const auto mean = static_cast<std::int16_t>(sum / channels);
    std::memcpy(out.data() + 2 * i, &mean, 2);
  }
  return out;
}

}  // namespace sra::audio
