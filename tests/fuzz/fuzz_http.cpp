// libFuzzer harness: whole HTTP requests through the server and its router, in process. A server
// (MODEL=whisper with the tiny test model, local storage, the embedded bus) listens on a free
// loopback port; each input is sent as the bytes of one connection, which is then half-closed, and
// the answer is read. Properties: no crash (ASan/UBSan), every answer arrives within 15 s, no
// answer is a 500, and the job of a request stops within 60 s once its answer is sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include "core/config.h"
#include "core/parts.h"
#include "fuzz_support.h"
#include "http/server.h"
#include "service/builtin_parts.h"
#include "service/inference_pool.h"
#include "service/transcription_service.h"

namespace {

unsigned short port = 0;
const sra::InferencePool* inference = nullptr;

struct InProcessServer {
  sra::Parts parts;
  sra::TranscriptionService service;
  sra::InferencePool pool;
  sra::http::HttpServer server;
  std::thread thread;

  static sra::Config config() {
    auto dir =
        std::filesystem::temp_directory_path() / ("sra-fuzz-http-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto shared = sra::fuzz::shared_dir();
    return sra::Config({{"MODEL", "whisper"},
                        {"WHISPER_MODEL_PATH",
                         (shared / "whisper" / "models" / "ggml-tiny-test-f32.bin").string()},
                        {"WHISPER_THREADS", "1"},
                        {"MAX_UPLOAD_BYTES", "1000000"},
                        {"LOCAL_STORAGE_FOLDER_PATH", (dir / "files").string()},
                        {"EMBEDDED_BUS_DATABASE_PATH", (dir / "tasks.sqlite3").string()},
                        {"HTTP_READ_TIMEOUT_SECONDS", "2"},
                        {"HTTP_KEEP_ALIVE_SECONDS", "2"}});
  }
  static sra::http::ServerOptions options() {
    sra::http::ServerOptions o;
    o.port = 0;
    o.handle_signals = false;
    return o;
  }

  InProcessServer()
      : parts(config(), sra::builtin_part_catalogs()),
        service(parts, sra::service_limits_from(parts.config())),
        pool({.threads = 1, .queue_size = 4}),
        server(options(), service, pool) {
    port = server.bind();
    inference = &pool;
    thread = std::thread([this] { server.run(); });
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  static InProcessServer* server = new InProcessServer();  // lives for the whole run
  (void)server;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) __builtin_trap();
  timeval timeout{15, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::send(fd, data, size, MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[65536];
  auto started = std::chrono::steady_clock::now();
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) __builtin_trap();  // no answer
      break;
    }
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (std::chrono::steady_clock::now() - started > std::chrono::seconds(15)) __builtin_trap();
  // A job whose client has gone stops at its next cancel check; wait for it, so that inputs do
  // not pile up jobs and nothing runs when the fuzzer exits.
  while (inference->admitted() > 0) {
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(60)) __builtin_trap();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (answer.find("HTTP/1.1 500") != std::string::npos) __builtin_trap();
  return 0;
}
