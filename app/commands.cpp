#include "commands.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "core/log_context.h"
#include "core/option_table.h"
#include "core/settings.h"
#include "core/text.h"
#include "http/deepgram_api.h"
#include "http/metrics_server.h"
#include "http/openai_api.h"
#include "http/server.h"
#include "models/model_catalog.h"
#include "models/model_pull.h"
#include "service/builtin_parts.h"
#include "service/inference_pool.h"
#include "service/transcription_service.h"
#include "service/voice_activity.h"

namespace sra::app {
namespace {

Config load_config(const CommonOptions& common) {
  std::optional<std::filesystem::path> path;
  if (common.env_file) path = *common.env_file;
  return Config::load(path);
}

void setup_logging(const Config& config) {
  auto logger = spdlog::stderr_color_mt("sra");
  spdlog::set_default_logger(logger);
  std::string format = config.get_string("LOG_FORMAT");
  if (format != "text" && format != "json") {
    throw config_error("LOG_FORMAT=" + format + " is not a log format (text, json)");
  }
  install_log_format(format == "json");
  std::string level = config.get_string("LOG_LEVEL");
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw config_error("LOG_LEVEL=" + level +
                       " is not a level (trace, debug, info, warn, error, critical, off)");
  }
  spdlog::set_level(parsed);
}

int default_inference_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Catches SIGINT and SIGTERM and runs `on_signal` in a thread of its own. The handler only
// writes to a pipe (async-signal-safe), so it works whichever thread the signal lands on
// (libraries such as OpenBLAS start threads before main). The destructor restores the default
// handlers and joins the thread.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe");
    write_end_ = pipe_[1];
    struct sigaction action {};
    action.sa_handler = [](int sig) {
      unsigned char byte = static_cast<unsigned char>(sig);
      [[maybe_unused]] auto n = ::write(write_end_, &byte, 1);
    };
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      unsigned char sig = 0;
      while (true) {
        ssize_t n = ::read(pipe_[0], &sig, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || sig == 0) return;  // 0: the destructor asks the thread to end
        on_signal(sig);
      }
    });
  }
  ~SignalWatcher() {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    unsigned char zero = 0;
    [[maybe_unused]] auto n = ::write(pipe_[1], &zero, 1);
    thread_.join();
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }

 private:
  static inline int write_end_ = -1;
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

template <typename F>
int report_errors(F f) {
  try {
    return f();
  } catch (const Error& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "error: " << e.what() << "\n";
    return e.kind() == ErrorKind::config ? 78 : 1;  // 78: EX_CONFIG
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int run_serve(const CommonOptions& common, const ServeOptions& cli) {
  return report_errors([&] {
    Config config = load_config(common);
    setup_logging(config);
    Parts parts(config, builtin_part_catalogs());
    TranscriptionService service(parts, service_limits_from(config));
    service.set_webhook_format("deepgram", http::deepgram_callback_body);
    service.set_webhook_format("openai", http::openai_callback_body);
    InferencePool pool(InferencePoolOptions{
        .threads =
            static_cast<int>(config.get_int("INFERENCE_THREADS", default_inference_threads())),
        .queue_size = static_cast<int>(config.get_int("INFERENCE_QUEUE_SIZE")),
    });
    http::ServerOptions options = http::server_options_from(config);
    if (cli.host) options.host = *cli.host;
    if (cli.port) options.port = static_cast<unsigned short>(*cli.port);

    // The embedded bus has no separate worker processes by default: serve runs them.
    std::jthread workers;
    int embedded_workers = static_cast<int>(config.get_int("EMBEDDED_BUS_WORKERS"));
    if (parts.bus_name() == "embedded" && embedded_workers > 0) {
      MessageBus& bus = parts.bus();  // built now: tasks left from before a restart resume
      workers = std::jthread([&bus, &service, embedded_workers](std::stop_token stop) {
        bus.run_worker(
            {.concurrency = embedded_workers,
             .on_finished = [&service](const TaskRequest& r) { service.after_task(r); },
             .before_final =
                 [&service](const std::string& id, const TaskRequest& r, const TaskResult& result) {
                   service.before_final(id, r, result);
                 }},
            [&service](const TaskRequest& r, TaskControl& c) { return service.run_task(r, c); },
            stop);
      });
    }

    http::HttpServer server(options, service, pool);
    unsigned short port = server.bind();
    // Live sessions find turns with Silero: a missing model is pulled now, in the background.
    if (service.limits().live.max_sessions > 0) service.prefetch_vad_model();
    spdlog::info(
        "speech-recognition-api {} listening on http://{}:{} (MODEL={}, STORAGE={}, "
        "MESSAGE_BUS={})",
        SRA_VERSION, options.host, port, parts.model_name(), parts.storage_name(),
        parts.bus_name());
    if (unsigned short wyoming = server.wyoming_port()) {
      spdlog::info("Wyoming protocol (Home Assistant) on tcp://{}:{}", options.wyoming.host,
                   wyoming);
    }
    server.run();
    spdlog::info("HTTP server stopped; waiting for in-process workers");
    workers.request_stop();
    if (workers.joinable()) workers.join();
    spdlog::info("bye");
    return 0;
  });
}

int run_worker(const CommonOptions& common, const WorkerCommandOptions& cli) {
  // First of all, so that every thread started later blocks the signals it waits for.
  std::stop_source stop;
  SignalWatcher signals([&stop](int sig) {
    spdlog::info("signal {}: finishing the tasks in hand, then stopping", sig);
    stop.request_stop();
  });
  return report_errors([&] {
    Config config = load_config(common);
    setup_logging(config);
    Parts parts(config, builtin_part_catalogs());
    TranscriptionService service(parts, service_limits_from(config));
    service.set_webhook_format("deepgram", http::deepgram_callback_body);
    service.set_webhook_format("openai", http::openai_callback_body);
    int concurrency =
        cli.concurrency.value_or(static_cast<int>(config.get_int("WORKER_CONCURRENCY")));
    std::optional<std::int64_t> metrics_port = cli.metrics_port;
    if (auto port = config.get("WORKER_METRICS_PORT");
        !metrics_port && port && !strip(*port).empty()) {
      metrics_port = config.get_int("WORKER_METRICS_PORT");
    }
    std::unique_ptr<http::MetricsServer> metrics_server;
    if (metrics_port) {
      metrics_server = std::make_unique<http::MetricsServer>(
          config.get_string("WORKER_METRICS_HOST"), static_cast<unsigned short>(*metrics_port));
      spdlog::info("metrics on port {}", metrics_server->port());
    }
    MessageBus& bus = parts.bus();
    spdlog::info("worker started (MESSAGE_BUS={}, MODEL={}, concurrency {})", parts.bus_name(),
                 parts.model_name(), concurrency);
    bus.run_worker(
        {.concurrency = concurrency,
         .on_finished = [&service](const TaskRequest& r) { service.after_task(r); },
         .before_final = [&service](
                             const std::string& id, const TaskRequest& r,
                             const TaskResult& result) { service.before_final(id, r, result); }},
        [&service](const TaskRequest& r, TaskControl& c) { return service.run_task(r, c); },
        stop.get_token());
    spdlog::info("worker stopped");
    return 0;
  });
}

int run_transcribe(const CommonOptions& common, const TranscribeCommandOptions& options) {
  return report_errors([&] {
    Config config = load_config(common);
    setup_logging(config);
    Parts parts(config, builtin_part_catalogs());
    TranscriptionService service(parts, service_limits_from(config));
    service.set_webhook_format("deepgram", http::deepgram_callback_body);
    service.set_webhook_format("openai", http::openai_callback_body);
    int failures = 0;
    for (const auto& file : options.files) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::cerr << file << ": cannot open\n";
        ++failures;
        continue;
      }
      std::stringstream bytes;
      bytes << in.rdbuf();
      try {
        std::string audio = bytes.str();
        TranscriptionJob job;
        job.audio = audio;
        Transcription t = service.transcribe(job);
        if (options.json) {
          boost::json::value v = to_json(t);
          v.as_object()["file"] = file;
          std::cout << boost::json::serialize(v) << "\n";
        } else {
          std::cout << t.text << "\n";
        }
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::config) throw;
        std::cerr << file << ": " << e.what() << "\n";
        ++failures;
      }
    }
    return failures == 0 ? 0 : 1;
  });
}

int run_storage(const CommonOptions& common, const StorageCommandOptions& options) {
  return report_errors([&] {
    Config config = load_config(common);
    setup_logging(config);
    Parts parts(config, builtin_part_catalogs());
    FileStorage& storage = parts.storage();
    if (options.action == "check") {
      storage.check_ready();
      std::cout << "ready\n";
    } else if (options.action == "put") {
      std::ifstream in(options.argument, std::ios::binary);
      if (!in) throw invalid_request("cannot read " + options.argument);
      auto upload = storage.begin_upload();
      std::vector<char> buffer(1 << 20);
      while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0) upload->write({buffer.data(), static_cast<std::size_t>(in.gcount())});
      }
      std::cout << upload->commit() << "\n";
    } else if (options.action == "get") {
      std::string bytes = storage.read(options.argument);
      if (options.output.empty() || options.output == "-") {
        std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      } else {
        std::ofstream(options.output, std::ios::binary)
            .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      }
    } else {
      storage.remove(options.argument);
    }
    return 0;
  });
}

}  // namespace sra::app

namespace sra::app {
namespace {

// A one-line progress bar on a terminal: "[#####     ] 52% 36.7/70.7 MB name".
void draw_progress(const std::string& name, std::uint64_t done, std::uint64_t total) {
  static std::uint64_t last = 0;
  if (done != total && done - last < (1u << 20) && done > last) return;
  last = done;
  const int width = 30;
  int filled = total ? static_cast<int>(width * done / total) : 0;
  std::fprintf(stderr, "\r[%s%s] %3d%% %.1f/%.1f MB %s", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(),
               total ? static_cast<int>(100 * done / total) : 0, done / 1e6, total / 1e6,
               name.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

const CatalogModel& catalog_model_named(const std::string& name) {
  if (const CatalogModel* m = find_catalog_model(name)) return *m;
  std::string names;
  for (const auto& m : model_catalog()) names += (names.empty() ? "" : ", ") + m.name;
  throw invalid_request("'" + name + "' is not a model of the catalog (" + names + ")");
}

}  // namespace

int run_models(const CommonOptions& common, const ModelsCommandOptions& options) {
  return report_errors([&] {
    Config config = load_config(common);
    const std::filesystem::path dir = options.dir.value_or(config.get_string("WHISPER_MODELS_DIR"));
    if (options.action == "list") {
      // One row per model; INSTALLED compares sizes only (`models verify` hashes the files).
      std::printf("%-20s %-8s %10s  %-13s %-9s %-10s %s\n", "NAME", "KIND", "SIZE", "LANGUAGES",
                  "INSTALLED", "FROM", "DESCRIPTION");
      for (const auto& m : model_catalog()) {
        std::filesystem::path path = catalog_model_path(m, dir);
        std::error_code ec;
        const std::uint64_t size = std::filesystem::file_size(path, ec);
        const bool present = !ec && has_catalog_size(m, size);
        const char* from = m.parts.empty() ? "hub" : m.hub.path.empty() ? "index" : "index,hub";
        std::printf("%-20s %-8s %7.1f MB  %-13s %-9s %-10s %s\n", m.name.c_str(), m.kind.c_str(),
                    (present           ? size
                     : m.parts.empty() ? m.hub.size
                                       : m.file_size) /
                        1e6,
                    m.languages.empty() ? "-" : m.languages.c_str(), present ? "yes" : "no", from,
                    m.description.c_str());
      }
      std::printf(
          "\nin %s; names may also be written openai/whisper-NAME or ggml-NAME.bin, \"large\" "
          "is large-v3 and \"turbo\" large-v3-turbo; FROM: index is MODEL_INDEX_URL, hub is "
          "MODEL_BASE_URL\n",
          dir.c_str());
      return 0;
    }
    if (options.action == "pull") {
      if (options.name.empty()) throw invalid_request("models pull needs a NAME");
      PullOptions pull;
      pull.models_dir = dir;
      pull.sources = model_sources(config);
      if (::isatty(STDERR_FILENO)) pull.progress = draw_progress;
      std::cout << pull_model(catalog_model_named(options.name), pull).string() << "\n";
      return 0;
    }
    // verify: the named model, or every catalog model present.
    std::vector<const CatalogModel*> models;
    if (!options.name.empty()) {
      models.push_back(&catalog_model_named(options.name));
    } else {
      for (const auto& m : model_catalog())
        if (std::filesystem::exists(catalog_model_path(m, dir))) models.push_back(&m);
    }
    int bad = 0;
    for (const CatalogModel* m : models) {
      std::filesystem::path path = catalog_model_path(*m, dir);
      if (!std::filesystem::exists(path)) throw config_error(path.string() + " does not exist");
      std::string sha = file_sha256(path);
      bool ok = is_catalog_file(*m, std::filesystem::file_size(path), sha);
      bad += ok ? 0 : 1;
      std::cout << (ok ? "ok        " : "MISMATCH  ") << path.string() << "  " << sha << "\n";
    }
    if (bad) throw config_error(std::to_string(bad) + " model file(s) do not match the catalog");
    return 0;
  });
}

int run_config(const CommonOptions& common) {
  return report_errors([&] {
    Config config = load_config(common);
    std::cout << "# The settings in effect: the environment over "
              << (config.source().empty() ? std::string("no .env file") : config.source())
              << " over the defaults; secrets masked\n";
    std::string_view section;
    for (const Setting& s : settings_table()) {
      if (s.section != section) {
        section = s.section;
        std::cout << "\n# " << section << "\n";
      }
      std::string line = std::string(s.name) + "=";
      std::string note;
      if (auto value = config.get(s.name)) {
        line += shown_value(s, *value);
        note = config.origin(s.name);
      } else if (s.computed) {
        note = "default: " + std::string(s.default_doc);
      } else {
        line += shown_value(s, s.default_value);
        note = "default";
      }
      std::cout << line << std::string(line.size() < 48 ? 48 - line.size() : 1, ' ') << "# " << note
                << "\n";
    }
    // The option tables' variables that are set.
    bool any = false;
    for (const auto& [prefix, table] :
         {std::pair{std::string_view("WHISPER_"), &builtin_request_options()},
          std::pair{std::string_view(""), &vad_option_specs()}}) {
      for (const auto& spec : *table) {
        if (auto value = config.option(prefix, spec.name)) {
          if (!any) std::cout << "\n# Options (WHISPER_*, VAD_*) set\n";
          any = true;
          std::string name = option_variable(prefix, spec.name);
          std::cout << name << "=" << *value << "  # " << config.origin(name) << "\n";
        }
      }
    }
    return 0;
  });
}

}  // namespace sra::app
