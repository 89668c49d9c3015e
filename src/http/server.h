// HttpServer: the HTTP/1.1 front end (Boost.Beast over Asio) that serves the API routes.
//
// Runs `io_threads` threads for network I/O only: request bodies are parsed as they stream in,
// transcriptions run on the InferencePool and blocking storage or bus calls on a separate pool,
// so a slow request never stalls others. At most `max_connections` are open at once and at most
// `max_connections_per_client` from one address (or with one API key): at the global bound the
// connection idle the longest is closed to make room, else new ones wait in the kernel's backlog;
// a client past its own bound gets 503 and is closed. Accept errors such as EMFILE back off
// instead of spinning, a body must keep a minimum average rate, and a HEAD is answered without a
// body. Supports keep-alive, `Expect: 100-continue`, timeouts
// while waiting for headers and between body reads, and graceful shutdown: stop() (or SIGINT /
// SIGTERM when run() handles signals) stops accepting, closes idle connections, lets requests
// in flight finish (up to `shutdown_grace_seconds`), then returns from run().
//
// With WYOMING_PORT set, the same threads, connection bounds and shutdown serve Home Assistant's
// Wyoming protocol on a second port (see wyoming_session.h).
//
// Construct, bind(), then run() from one thread; stop() may be called from any thread. The
// server references the service and pool given to it, which must outlive it.
#pragma once

#include <memory>
#include <string>

#include "http/wyoming_session.h"
#include "service/inference_pool.h"
#include "service/transcription_service.h"

namespace sra::http {

struct ServerOptions {
  std::string host = "127.0.0.1";              // address to listen on
  unsigned short port = 8888;                  // port to listen on; 0 picks a free one
  int io_threads = 2;                          // threads doing network I/O
  int blocking_threads = 4;                    // threads for storage and message-bus calls
  double header_timeout_seconds = 30;          // idle keep-alive and header read limit
  double body_timeout_seconds = 60;            // longest wait for the next piece of a body
  double min_upload_bytes_per_second = 16384;  // slowest average body upload after 10 s
  int max_connections = 512;                   // open connections; more wait in the listen backlog
  int max_connections_per_client = 64;  // open connections of one address or API key (0: any)
  double shutdown_grace_seconds = 60;   // longest wait for requests in flight on shutdown
  bool handle_signals = true;           // stop gracefully on SIGINT and SIGTERM
  std::string web_assets_dir;           // Swagger UI's files for /docs (WEB_ASSETS_DIR)
  WyomingOptions wyoming;               // Home Assistant's Wyoming protocol (off by default)
};

ServerOptions server_options_from(const Config& config);

class HttpServer {
 public:
  HttpServer(ServerOptions options, TranscriptionService& service, InferencePool& pool);
  ~HttpServer();

  // Opens the listening socket (and the Wyoming one, when configured); returns the bound HTTP
  // port. Throws on failure (port in use).
  unsigned short bind();
  // The bound Wyoming port once bind() has run; 0 when Wyoming is off.
  unsigned short wyoming_port() const;
  // Serves until stopped; returns once requests in flight are done.
  void run();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sra::http
