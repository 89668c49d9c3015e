// The log-mel spectrogram exactly as OpenAI's whisper.audio.log_mel_spectrogram computes it:
// STFT with n_fft 400, hop 160, a periodic Hann window and reflect padding of 200 samples at both
// ends (torch.stft's center=True), power spectrum without the last frame, the model file's mel
// filters, log10 clamped at 1e-10, floored at (global max - 8), then (x + 4) / 4.
//
// Pure functions; safe from any thread.
#pragma once

#include <vector>

namespace sra::whisper {

inline constexpr int kNFft = 400;
inline constexpr int kHopLength = 160;
inline constexpr int kChunkSamples = 480000;  // 30 s at 16 kHz
inline constexpr int kChunkFrames = 3000;     // mel frames in 30 s

// A spectrogram: n_mels rows of n_frames values, row-major.
struct Mel {
  int n_mels = 0;
  int n_frames = 0;
  std::vector<float> data;
  float at(int mel, int frame) const {
    return data[static_cast<std::size_t>(mel) * n_frames + frame];
  }
};

// `padding` zero samples are appended first (transcribe() passes 30 s; decode() on a
// pad_or_trim'd clip passes 0). Frames: (samples + padding) / 160. `threads` > 1 splits the STFT.
Mel log_mel_spectrogram(const std::vector<float>& samples, int padding,
                        const std::vector<float>& filters, int n_mels, int threads = 1);

// Columns [start, start + count) of `mel`, padded with zeros (in the normalised domain, as
// whisper.audio.pad_or_trim pads) or trimmed to exactly `frames` columns.
Mel mel_window(const Mel& mel, int start, int count, int frames = kChunkFrames);

// The audio padded with zeros or trimmed to `length` samples (whisper.audio.pad_or_trim).
std::vector<float> pad_or_trim(const std::vector<float>& samples, int length = kChunkSamples);

}  // namespace sra::whisper
