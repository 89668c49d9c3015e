// WhisperModel: the `whisper` part for MODEL, our own Whisper engine behind the Model interface.
//
// Reads the model file from WHISPER_MODEL_PATH, or maps the seed's WHISPER_NAME
// ("openai/whisper-tiny.en", "base", "large-v3-turbo", ...) to ggml-<name>.bin in
// WHISPER_MODELS_DIR. Every option of OpenAI's transcribe() and DecodingOptions has a WHISPER_*
// default (WHISPER_LANGUAGE, WHISPER_TEMPERATURE, WHISPER_BEAM_SIZE, ...) that a request may
// override by the same name in lower case without the prefix ("language", "beam_size", ...;
// "prompt" is initial_prompt), all declared with their bounds in whisper_options.h. A bad
// default is a config error naming the variable; a bad request value is an invalid_request whose
// field() is the field. A request's cancel token is checked per window and per decoded token.
// transcribe() is safe to call from any number of threads; the loaded weights are shared and
// memory-mapped.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/model.h"
#include "engine/whisper/engine.h"

namespace sra {

struct WhisperModelOptions {
  std::string model_path;               // the ggml file to load
  int threads = 1;                      // threads one transcription may use (the budget's cap)
  std::string cross_cache = "auto";     // WHISPER_CROSS_CACHE: auto, f32 or f16
  std::string compute = "auto";         // WHISPER_COMPUTE: auto, f32 or int8
  int max_beam_size = 10;               // bound of beam_size and best_of (WHISPER_MAX_BEAM_SIZE)
  whisper::TranscribeOptions defaults;  // transcribe() options unless a request overrides
};

WhisperModelOptions whisper_model_options_from(const Config& config);
std::unique_ptr<Model> make_whisper_model(const WhisperModelOptions& options);

// The ggml file name for a model name as the seed and OpenAI write it ("openai/whisper-base.en"
// -> "ggml-base.en.bin"; "large" -> "ggml-large-v3.bin").
std::string whisper_file_name(const std::string& name);

}  // namespace sra
