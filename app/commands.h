// The binary's subcommands. Each returns the process exit code; errors are printed, not thrown.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sra::app {

struct CommonOptions {
  std::optional<std::string> env_file;  // --env-file; else ./.env if present
};

struct ServeOptions {
  std::optional<std::string> host;  // --host, else HOST, else 127.0.0.1
  std::optional<int> port;          // --port, else PORT, else 8888
};

struct WorkerCommandOptions {
  std::optional<int> concurrency;   // --concurrency, else WORKER_CONCURRENCY, else 1
  std::optional<int> metrics_port;  // --metrics-port, else WORKER_METRICS_PORT, else no endpoint
};

struct TranscribeCommandOptions {
  std::vector<std::string> files;  // audio files to transcribe, in order
  bool json = false;               // print the whole result as JSON lines
};

struct ConvertOptions {
  std::string kind;                 // "f16" or "ctranslate2"
  std::vector<std::string> inputs;  // f16: the f32 file; ctranslate2: model.bin, vocabulary.txt
  std::string output;               // the ggml file to write
};

struct BenchOptions {
  std::string model;              // ggml model file
  std::string audio;              // file to transcribe in full (optional)
  int threads = 1;                // BLAS and mel threads
  int runs = 3;                   // repetitions of the encoder and decoder measurements
  int tokens = 64;                // tokens per decoder measurement
  bool half_cross_cache = false;  // --cross-cache f16 (WHISPER_CROSS_CACHE)
  std::string compute = "auto";   // --compute auto|f32|int8 (WHISPER_COMPUTE)
};

struct StorageCommandOptions {
  std::string action;    // put, get, delete, check
  std::string argument;  // put: the file; get/delete: the file id
  std::string output;    // get: where to write ("-": stdout)
};

struct ModelsCommandOptions {
  std::string action;              // list, pull, verify
  std::string name;                // pull: the model; verify: one model (default: all present)
  std::optional<std::string> dir;  // --dir, else WHISPER_MODELS_DIR, else ./models
};

struct VadCommandOptions {
  std::string audio;                                    // the audio file
  std::string model = "models/ggml-silero-v6.2.0.bin";  // the Silero ggml file
  bool probabilities = false;                           // print each window's probability instead
  double threshold = 0.5;                               // faster-whisper's VadOptions
  double min_speech_duration_ms = 0;
  double max_speech_duration_s = 1e9;  // none
  double min_silence_duration_ms = 2000;
  double speech_pad_ms = 400;
};

struct TurnCommandOptions {
  std::vector<std::string> audio;                         // audio files
  std::string model = "models/smart-turn-v3.2-cpu.onnx";  // the smart-turn v3 ONNX file
  bool features = false;                                  // print the model's input (80 x 800) too
};

struct DiarizeCommandOptions {
  std::vector<std::string> audio;                                     // audio files
  std::string segmentation = "models/pyannote-segmentation-3.0.bin";  // pyannote's checkpoint
  std::string embedding = "models/campplus-zh-en.pt";                 // CAM++'s state dict
  int num_speakers = 0;                                               // 0: find out
  int min_speakers = 1, max_speakers = 20;                            // bounds when finding out
  double threshold = 0.5;                                             // clusters' cosine distance
  double step = 5.0;                                                  // seconds between chunks
  bool rttm = false;                                                  // RTTM lines instead of JSON
};

int run_serve(const CommonOptions& common, const ServeOptions& options);
int run_worker(const CommonOptions& common, const WorkerCommandOptions& options);
int run_transcribe(const CommonOptions& common, const TranscribeCommandOptions& options);
int run_convert(const ConvertOptions& options);
int run_bench(const BenchOptions& options);
int run_storage(const CommonOptions& common, const StorageCommandOptions& options);
// Voice activity of a file: speech segments (or each window's probability) as JSON.
int run_vad(const VadCommandOptions& options);
// End of turn: smart-turn's probability that each file's speaker has finished, as JSON lines.
int run_turn(const TurnCommandOptions& options);
int run_diarize(const DiarizeCommandOptions& options);
// The model catalog: list it, pull a model by name, verify files against their sha256.
int run_models(const CommonOptions& common, const ModelsCommandOptions& options);
// Prints the model options' table (Markdown, as in the README) or, with `openapi`, the OpenAPI
// document the server serves; both come from the option table.
// The tables the README's documents and the OpenAPI document are generated from.
enum class OptionsTable { whisper, openapi, subtitles, vad, settings };
int run_options(OptionsTable table);
// The settings in effect: every declared variable with its value and where it came from
// (environment, the .env file, default), secrets masked.
int run_config(const CommonOptions& common);

}  // namespace sra::app
