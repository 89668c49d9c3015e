// A small blocking HTTP client over libcurl for the object storages: one request per call, with
// AWS SigV4 signing by libcurl when asked, and a retry policy for what is worth retrying.
//
// perform() is safe to call from any number of threads at once (each call has its own curl
// handle). Transport failures (refused connection, DNS, timeout) throw sra::Error(unavailable)
// naming the URL; HTTP error statuses are returned, not thrown.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sra::storage {

struct HttpRequest {
  std::string method = "GET";                // GET, PUT, POST, DELETE, HEAD
  std::string url;                           // absolute URL, already escaped
  std::vector<std::string> headers;          // "Name: value"
  std::string_view body;                     // request body (the caller keeps it alive)
  std::optional<std::string> aws_sigv4;      // "aws:amz:<region>:s3": sign with libcurl
  std::optional<std::string> user_password;  // "access_key:secret" for SigV4
  double timeout_seconds = 300;              // whole transfer
  double connect_timeout_seconds = 10;       // TCP (and TLS) connect
  // Polled about once a second while the request runs, connecting included: true aborts it
  // (sra::Error(cancelled)). May be empty.
  std::function<bool()> cancelled;
  // "host:port:address" entries that pin where a host name connects (libcurl's CURLOPT_RESOLVE):
  // the address a caller checked is the one used, whatever DNS answers later.
  std::vector<std::string> resolve;
  std::size_t max_response_bytes =
      0;                   // the body kept at most (the rest is read and dropped); 0: all
  bool http_only = false;  // refuse every scheme but http and https
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

HttpResponse perform(const HttpRequest& request);

struct RetryPolicy {
  int max_attempts = 5;             // tries in all, the first included
  double base_delay_seconds = 0.2;  // first backoff; doubles each time, with full jitter
  double max_delay_seconds = 5;     // cap of one backoff
};

// Runs `attempt` until it returns a response that is not 429/5xx and throws nothing retryable,
// or the attempts run out: then the last response is returned or the last error rethrown.
// 4xx responses other than 429 are returned at once. `cancelled` (may be empty) is checked
// during the waits between attempts: true throws sra::Error(cancelled).
HttpResponse with_retries(const RetryPolicy& policy, const std::function<HttpResponse()>& attempt,
                          const std::function<bool()>& cancelled = {});

// Percent-encodes everything but unreserved characters (and '/' when keep_slash).
std::string url_encode(std::string_view text, bool keep_slash);
// Hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// The text of the first <tag>...</tag> in an XML document, or empty.
std::string xml_value(const std::string& xml, const std::string& tag);

}  // namespace sra::storage
