#include "audio/decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "audio/wav_reader.h"
#include "core/errors.h"

namespace sra::audio {
namespace {

constexpr int kIoBufferSize = 64 * 1024;
// The demuxers an upload may use: the formats we claim (wav, flac, mp3, ogg/vorbis/opus, m4a/mp4
// and aac, webm/matroska, mpeg) and a few plain audio containers. Playlists and indirections
// (hls, concat, ffconcat, image2, ...) are not among them, and every nested open is refused below.
constexpr const char* kAllowedDemuxers =
    "wav,w64,flac,mp3,ogg,mov,mp4,m4a,3gp,matroska,webm,aac,mpeg,aiff,caf";
constexpr int kMaxChannels = 32;
constexpr int kMaxSampleRate = 768000;

bool demuxer_allowed(const AVInputFormat* format) {
  if (!format || !format->name) return false;
  std::string_view allowed = kAllowedDemuxers;
  std::string_view names = format->name;  // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  while (!names.empty()) {
    std::string_view name = names.substr(0, names.find(','));
    std::string_view rest = allowed;
    while (!rest.empty()) {
      if (rest.substr(0, rest.find(',')) == name) return true;
      rest = rest.find(',') == std::string_view::npos ? "" : rest.substr(rest.find(',') + 1);
    }
    names = names.find(',') == std::string_view::npos ? "" : names.substr(names.find(',') + 1);
  }
  return false;
}

// Opening another resource from inside an upload (a playlist entry, a concat item, a URL or a
// local file) is never allowed: our only input is the bytes in memory.
int refuse_nested_open(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

void quiet_ffmpeg_once() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  return text;
}

// Bytes in memory seen by FFmpeg as a seekable file.
struct MemoryFile {
  std::string_view bytes;
  std::int64_t pos = 0;

  static int read(void* opaque, std::uint8_t* buf, int size) {
    auto* f = static_cast<MemoryFile*>(opaque);
    std::int64_t left = static_cast<std::int64_t>(f->bytes.size()) - f->pos;
    if (left <= 0) return AVERROR_EOF;
    int n = static_cast<int>(std::min<std::int64_t>(left, size));
    std::memcpy(buf, f->bytes.data() + f->pos, static_cast<std::size_t>(n));
    f->pos += n;
    return n;
  }
  static std::int64_t seek(void* opaque, std::int64_t offset, int whence) {
    auto* f = static_cast<MemoryFile*>(opaque);
    auto size = static_cast<std::int64_t>(f->bytes.size());
    if (whence & AVSEEK_SIZE) return size;
    std::int64_t target;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET:
        target = offset;
        break;
      case SEEK_CUR:
        target = f->pos + offset;
        break;
      case SEEK_END:
        target = size + offset;
        break;
      default:
        return -1;
    }
    if (target < 0 || target > size) return -1;
    f->pos = target;
    return target;
  }
};

struct FormatDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct IoDeleter {
  void operator()(AVIOContext* c) const {
    if (c) av_freep(&c->buffer);
    avio_context_free(&c);
  }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};

// An opened container over memory. Owns FFmpeg's contexts; one thread at a time.
class OpenedInput {
 public:
  explicit OpenedInput(std::string_view bytes) : file_{bytes} {
    quiet_ffmpeg_once();
    auto* buffer = static_cast<std::uint8_t*>(av_malloc(kIoBufferSize));
    if (!buffer) throw internal_error("out of memory opening audio");
    io_.reset(avio_alloc_context(buffer, kIoBufferSize, 0, &file_, &MemoryFile::read, nullptr,
                                 &MemoryFile::seek));
    if (!io_) {
      av_free(buffer);
      throw internal_error("out of memory opening audio");
    }
    AVFormatContext* format = avformat_alloc_context();
    if (!format) throw internal_error("out of memory opening audio");
    format->pb = io_.get();
    format->flags |= AVFMT_FLAG_CUSTOM_IO;
    format->io_open = &refuse_nested_open;
    format->format_whitelist = av_strdup(kAllowedDemuxers);
    format->protocol_whitelist = av_strdup("none");
    // avformat_open_input frees `format` on failure.
    if (int rc = avformat_open_input(&format, nullptr, nullptr, nullptr); rc < 0) {
      throw unsupported_media("not a recognised audio format (" + av_error(rc) + ")");
    }
    format_.reset(format);
    if (!demuxer_allowed(format_->iformat)) {
      throw unsupported_media(std::string("the ") + format_->iformat->name +
                              " format is not accepted");
    }
    format_->probesize = 5 * 1024 * 1024;
    if (int rc = avformat_find_stream_info(format_.get(), nullptr); rc < 0) {
      throw unsupported_media("cannot read the audio stream (" + av_error(rc) + ")");
    }
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (stream_ < 0 || !codec) throw unsupported_media("the file has no decodable audio stream");
    codec_.reset(avcodec_alloc_context3(codec));
    if (!codec_) throw internal_error("out of memory opening audio codec");
    const AVCodecParameters* params = format_->streams[stream_]->codecpar;
    if (params->ch_layout.nb_channels > kMaxChannels || params->sample_rate > kMaxSampleRate ||
        params->sample_rate < 0) {
      throw unsupported_media("the audio has " + std::to_string(params->ch_layout.nb_channels) +
                              " channels at " + std::to_string(params->sample_rate) +
                              " Hz; at most " + std::to_string(kMaxChannels) + " channels at " +
                              std::to_string(kMaxSampleRate) + " Hz are accepted");
    }
    if (avcodec_parameters_to_context(codec_.get(), params) < 0) {
      throw unsupported_media("unsupported audio codec parameters");
    }
    if (int rc = avcodec_open2(codec_.get(), codec, nullptr); rc < 0) {
      throw unsupported_media(std::string("cannot open the ") + codec->name + " decoder (" +
                              av_error(rc) + ")");
    }
  }

  AVFormatContext* format() { return format_.get(); }
  AVCodecContext* codec() { return codec_.get(); }
  int stream() const { return stream_; }

 private:
  MemoryFile file_;
  std::unique_ptr<AVIOContext, IoDeleter> io_;
  std::unique_ptr<AVFormatContext, FormatDeleter> format_;
  std::unique_ptr<AVCodecContext, CodecDeleter> codec_;
  int stream_ = -1;
};

// Converts decoded frames of any layout, format and rate to mono float at 16 kHz: FFmpeg
// resamples each channel, then the channels are averaged (as the WAV fast path does; FFmpeg's
// own downmix would add 3 dB to stereo).
class Resampler {
 public:
  void convert(const AVFrame* frame, std::vector<float>& out) {
    if (!swr_ || frame->sample_rate != in_rate_ || frame->format != in_format_ ||
        av_channel_layout_compare(&frame->ch_layout, &frame_layout_) != 0) {
      reset(frame);
    }
    int capacity = swr_get_out_samples(swr_.get(), frame->nb_samples);
    if (capacity < 0) throw unsupported_media("cannot resample the audio");
    run(const_cast<const std::uint8_t**>(frame->extended_data), frame->nb_samples, capacity, out);
  }

  void flush(std::vector<float>& out) {
    if (!swr_) return;
    while (run(nullptr, 0, 4096, out) > 0) {
    }
  }

  ~Resampler() {
    av_channel_layout_uninit(&in_layout_);
    av_channel_layout_uninit(&frame_layout_);
  }

 private:
  int run(const std::uint8_t** in, int in_samples, int capacity, std::vector<float>& out) {
    int channels = in_layout_.nb_channels;
    interleaved_.resize(static_cast<std::size_t>(capacity) * channels);
    auto* dst = reinterpret_cast<std::uint8_t*>(interleaved_.data());
    int n = swr_convert(swr_.get(), &dst, capacity, in, in_samples);
    if (n < 0) throw unsupported_media("cannot resample the audio (" + av_error(n) + ")");
    std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n));
    const float scale = 1.0f / static_cast<float>(channels);
    for (int i = 0; i < n; ++i) {
      float sum = 0;
      for (int c = 0; c < channels; ++c)
        sum += interleaved_[static_cast<std::size_t>(i) * channels + c];
      out[at + static_cast<std::size_t>(i)] = sum * scale;
    }
    return n;
  }

  void reset(const AVFrame* frame) {
    // Samples buffered in the old context are lost on a format change mid-stream; such streams
    // are rare and the loss is a few milliseconds.
    av_channel_layout_uninit(&in_layout_);
    av_channel_layout_uninit(&frame_layout_);
    if (av_channel_layout_copy(&frame_layout_, &frame->ch_layout) < 0 ||
        av_channel_layout_copy(&in_layout_, &frame->ch_layout) < 0) {
      throw unsupported_media("invalid channel layout");
    }
    if (in_layout_.order == AV_CHANNEL_ORDER_UNSPEC) {
      int channels = in_layout_.nb_channels;
      av_channel_layout_uninit(&in_layout_);
      av_channel_layout_default(&in_layout_, channels);
    }
    in_rate_ = frame->sample_rate;
    in_format_ = frame->format;
    if (in_rate_ <= 0 || in_rate_ > kMaxSampleRate || in_layout_.nb_channels <= 0 ||
        in_layout_.nb_channels > kMaxChannels) {
      throw unsupported_media("the audio stream has no valid sample rate or channel count");
    }
    SwrContext* raw = nullptr;
    if (swr_alloc_set_opts2(&raw, &in_layout_, AV_SAMPLE_FMT_FLT, kSampleRate, &in_layout_,
                            static_cast<AVSampleFormat>(in_format_), in_rate_, 0, nullptr) < 0 ||
        swr_init(raw) < 0) {
      swr_free(&raw);
      throw unsupported_media("cannot convert this audio to 16 kHz");
    }
    swr_.reset(raw);
  }

  std::unique_ptr<SwrContext, SwrDeleter> swr_;
  AVChannelLayout frame_layout_{};  // the layout as frames report it
  AVChannelLayout in_layout_{};     // the same, made explicit for the resampler
  int in_rate_ = 0;
  int in_format_ = -1;
  std::vector<float> interleaved_;
};

void check_duration(std::size_t samples, const DecodeOptions& options) {
  if (static_cast<double>(samples) > options.max_seconds * kSampleRate) {
    throw too_large("audio is longer than MAX_AUDIO_SECONDS (" +
                    std::to_string(static_cast<long long>(options.max_seconds)) + " s)");
  }
}

AudioBuffer decode_with_ffmpeg(std::string_view bytes, const DecodeOptions& options) {
  OpenedInput input(bytes);
  std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  if (!packet || !frame) throw internal_error("out of memory decoding audio");
  Resampler resampler;
  AudioBuffer out;
  int decode_errors = 0;
  int good_frames = 0;

  auto drain = [&] {
    while (true) {
      int rc = avcodec_receive_frame(input.codec(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) {
        ++decode_errors;
        return;
      }
      resampler.convert(frame.get(), out.samples);
      ++good_frames;
      av_frame_unref(frame.get());
      check_duration(out.samples.size(), options);
    }
  };

  while (true) {
    int rc = av_read_frame(input.format(), packet.get());
    if (rc < 0) break;  // end of file, or a truncated file: keep what was decoded
    if (packet->stream_index == input.stream()) {
      if (avcodec_send_packet(input.codec(), packet.get()) < 0) ++decode_errors;
      drain();
    }
    av_packet_unref(packet.get());
    if (decode_errors > 100 && good_frames == 0) break;
  }
  avcodec_send_packet(input.codec(), nullptr);
  drain();
  resampler.flush(out.samples);
  check_duration(out.samples.size(), options);
  return out;
}

}  // namespace

AudioBuffer decode(std::string_view bytes, const DecodeOptions& options) {
  if (bytes.empty()) throw unsupported_media("the file is empty");
  AudioBuffer audio;
  if (auto wav = read_simple_wav(bytes)) {
    audio = std::move(*wav);
  } else {
    audio = decode_with_ffmpeg(bytes, options);
  }
  check_duration(audio.samples.size(), options);
  if (audio.samples.empty()) throw unsupported_media("the file holds no audio samples");
  for (float& s : audio.samples) {
    if (!std::isfinite(s)) s = 0.0f;
  }
  return audio;
}

namespace {

// Whether the first bytes of a file name a container we accept, as FFmpeg's probe scores them.
bool recognised_container(std::string_view prefix) {
  std::vector<std::uint8_t> padded(prefix.size() + AVPROBE_PADDING_SIZE, 0);
  std::memcpy(padded.data(), prefix.data(), prefix.size());
  AVProbeData data{};
  data.filename = "";
  data.buf = padded.data();
  data.buf_size = static_cast<int>(prefix.size());
  int score = 0;
  const AVInputFormat* format = av_probe_input_format2(&data, 1, &score);
  return format && score >= AVPROBE_SCORE_MAX / 4 && demuxer_allowed(format);
}

}  // namespace

std::optional<std::string> probe(std::string_view prefix, bool complete) {
  // Only whether it is audio: the size given makes `prefix` the whole file or only its start.
  return inspect(prefix, prefix.size() + (complete ? 0 : 1)).refusal;
}

ProbeResult inspect(std::string_view prefix, std::uint64_t total_bytes) {
  ProbeResult out;
  if (prefix.empty()) {
    out.refusal = "the file is empty";
    return out;
  }
  const bool complete = total_bytes <= prefix.size();
  const double scale = static_cast<double>(total_bytes) / static_cast<double>(prefix.size());
  if (auto wav = read_simple_wav(prefix)) {
    out.seconds = static_cast<double>(wav->samples.size()) / kSampleRate * (complete ? 1 : scale);
    return out;
  }
  out.seconds = static_cast<double>(total_bytes) * 8 / 128000;  // unknown: a typical bit rate
  try {
    OpenedInput input(prefix);
    const AVFormatContext* format = input.format();
    std::int64_t bit_rate = format->bit_rate;
    if (bit_rate <= 0) bit_rate = format->streams[input.stream()]->codecpar->bit_rate;
    if (format->duration > 0 && (complete || bit_rate <= 0)) {
      out.seconds = static_cast<double>(format->duration) / AV_TIME_BASE;
    } else if (bit_rate > 0) {
      out.seconds = static_cast<double>(total_bytes) * 8 / static_cast<double>(bit_rate);
    }
  } catch (const Error& e) {
    // Only the start of a longer file: a container whose index sits at its end (an MP4 without
    // "faststart") cannot be opened from its start, so recognising the container must do (the
    // typical-bit-rate estimate stays).
    if (complete || !recognised_container(prefix)) out.refusal = e.what();
  }
  return out;
}

}  // namespace sra::audio
