// PocketSphinxModel: the embedded default model, CMU PocketSphinx with Debian's US English
// acoustic model, language model and dictionary. Works out of the box, without a download.
//
// Reads POCKETSPHINX_HMM, POCKETSPHINX_LM and POCKETSPHINX_DICT (defaults: the
// pocketsphinx-en-us package's files) and POCKETSPHINX_CHUNK_SECONDS. A PocketSphinx decoder
// is not thread-safe, so the model keeps a pool of decoders and gives each concurrent call its
// own; transcribe() is safe to call from any number of threads. Long audio is cut at its
// quietest point near every chunk boundary and decoded chunk by chunk; each chunk becomes one
// segment with its times.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/model.h"

namespace sra {

struct PocketSphinxOptions {
  std::string hmm_dir;         // acoustic model directory
  std::string language_model;  // n-gram language model (.lm.bin or .lm)
  std::string dictionary;      // pronunciation dictionary
  double chunk_seconds = 20;   // longest piece of audio decoded as one utterance
};

PocketSphinxOptions pocketsphinx_options_from(const Config& config);
std::unique_ptr<Model> make_pocketsphinx_model(const PocketSphinxOptions& options);

}  // namespace sra
