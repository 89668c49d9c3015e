// speech-recognition-api: one binary with the subcommands serve, worker and transcribe.
#include <CLI/CLI.hpp>

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
  add_env_file(worker_cmd);

  sra::app::TranscribeCommandOptions transcribe;
  auto* transcribe_cmd =
      app.add_subcommand("transcribe", "transcribe audio files with the configured model");
  transcribe_cmd->add_option("files", transcribe.files, "audio files")->required();
  transcribe_cmd->add_flag("--json", transcribe.json,
                           "print the whole result (segments included) as one JSON line per file");
  add_env_file(transcribe_cmd);

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) return sra::app::run_serve(common, serve);
  if (worker_cmd->parsed()) return sra::app::run_worker(common, worker);
  return sra::app::run_transcribe(common, transcribe);
}
