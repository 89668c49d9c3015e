// Model: the extension point that turns decoded audio into text (the seed's Model interface).
//
// Implementations must be safe for concurrent calls to transcribe() from several threads without
// external synchronization (the service runs a pool of inference threads); a model that cannot
// share its state keeps one state per caller internally. A model signals bad input with
// sra::Error(unsupported_media) and anything else with sra::Error of the fitting kind. A model is
// created once per process by its factory (see registry.h) and owned by the service.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/audio_buffer.h"
#include "core/cancel.h"
#include "core/transcription.h"

namespace sra {

// Per-request settings. Keys are the model's own option names without prefix ("language",
// "prompt", "temperature", ...); a model ignores keys it does not know.
struct TranscribeOptions {
  std::map<std::string, std::string> values;
  // Called, if set, with each segment as soon as the model has it (streaming responses), from the
  // thread running transcribe(); the segments also come in the returned Transcription. A model
  // that cannot tell segments early may never call it.
  std::function<void(const Segment&)> on_segment;
  // Checked by the model at its natural steps (a window, a token) if set: once it is cancelled or
  // past its deadline the model stops by the sra::Error that check() throws. Owned by the caller.
  const CancelToken* cancel = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual Transcription transcribe(const AudioBuffer& audio, const TranscribeOptions& options) = 0;
  // Transcribes each of `chunks` on its own (nothing carried from one to the next), as
  // transcribe() would each, and calls `on_chunk(i, t)` with each result in the chunks' order, on
  // the calling thread. A model may run several at once (Whisper decodes them in one batch); this
  // default runs them one after the other. options.on_segment is not called. Same threads and
  // errors as transcribe().
  virtual void transcribe_chunks(
      const std::vector<AudioBuffer>& chunks, const TranscribeOptions& options,
      const std::function<void(std::size_t, Transcription&&)>& on_chunk) {
    TranscribeOptions each = options;
    each.on_segment = nullptr;
    for (std::size_t i = 0; i < chunks.size(); ++i) on_chunk(i, transcribe(chunks[i], each));
  }
  // The language spoken in the first 30 s of `audio`, with the probability of every language the
  // model knows, the most likely first; nullopt when this model cannot tell languages (the
  // default). Same threads and errors as transcribe(); checks `options.cancel` if it can.
  virtual std::optional<LanguageScores> detect_language(const AudioBuffer& audio,
                                                        const TranscribeOptions& options) {
    (void)audio;
    (void)options;
    return std::nullopt;
  }
  // The language codes this model transcribes ("en", ...), for clients that list them (Wyoming's
  // info); empty when the model does not say. Safe from any thread.
  virtual std::vector<std::string> languages() const { return {}; }
};

}  // namespace sra
