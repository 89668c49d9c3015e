// Kaldi's log mel filterbank features as torchaudio.compliance.kaldi.fbank computes them with its
// defaults (25 ms Povey-windowed frames every 10 ms, snip_edges, DC offset removed, pre-emphasis
// 0.97, a 512-point power spectrum, triangular bins on Kaldi's mel scale from 20 Hz to Nyquist,
// log with float32 epsilon as floor, no dither), the input of speaker-embedding networks trained
// with Kaldi-style features (3D-Speaker's CAM++). Pure; safe from any thread.
#pragma once

#include <vector>

namespace sra::speakers {

inline constexpr int kFbankShift = 160;   // samples between frames (10 ms at 16 kHz)
inline constexpr int kFbankLength = 400;  // samples per frame (25 ms)

// Frames for `samples` samples: 1 + (samples - 400) / 160, or 0 for fewer than 400.
int fbank_frames(int samples);

// [frames][bins] log mel energies of 16 kHz mono `samples` (at most 2^31 frames' worth).
std::vector<float> kaldi_fbank(const float* samples, int count, int bins);

// Subtracts each bin's mean over the frames (3D-Speaker's mean normalisation), in place.
void subtract_mean(std::vector<float>& features, int bins);

}  // namespace sra::speakers
