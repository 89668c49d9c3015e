// MetricsServer: a small HTTP endpoint for processes without the API (`worker --metrics-port`):
// GET /metrics (Prometheus text, the same as the API's) and GET /health; anything else is 404,
// a method other than GET or HEAD 405.
//
// It runs on one thread of its own from construction until destruction (which stops it and
// joins). Every request is bounded: 8 KiB of headers, no body, 5 s to send it, at most 16
// connections at once (a new one closes the oldest, so idle sockets never keep a scraper out).
// Construction throws sra::Error(config) if the address cannot be bound.
#pragma once

#include <memory>
#include <string>

namespace sra::http {

class MetricsServer {
 public:
  MetricsServer(const std::string& host, unsigned short port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  unsigned short port() const;  // the bound port (useful when 0 was asked for)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sra::http
