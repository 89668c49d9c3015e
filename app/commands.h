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
  std::optional<int> concurrency;  // --concurrency, else WORKER_CONCURRENCY, else 1
};

struct TranscribeCommandOptions {
  std::vector<std::string> files;  // audio files to transcribe, in order
  bool json = false;               // print the whole result as JSON lines
};

int run_serve(const CommonOptions& common, const ServeOptions& options);
int run_worker(const CommonOptions& common, const WorkerCommandOptions& options);
int run_transcribe(const CommonOptions& common, const TranscribeCommandOptions& options);

}  // namespace sra::app
