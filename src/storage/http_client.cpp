#include "storage/http_client.h"

#include <curl/curl.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "core/errors.h"
#include "core/text.h"

namespace sra::storage {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Upload {
  std::string_view data;
  std::size_t pos = 0;
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  std::size_t count = std::min(size * n, up->data.size() - up->pos);
  std::memcpy(buffer, up->data.data() + up->pos, count);
  up->pos += count;
  return count;
}

struct Download {
  std::string* body;
  std::size_t limit;  // 0: no limit
};

std::size_t write_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* down = static_cast<Download*>(user);
  std::size_t keep = size * n;
  if (down->limit > 0)
    keep = std::min(keep, down->limit - std::min(down->limit, down->body->size()));
  down->body->append(data, keep);
  return size * n;
}

std::size_t write_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t\r\n");
    (*headers)[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

bool retryable_status(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// libcurl's progress callback (also called while connecting): non-zero aborts the transfer.
int abort_if_cancelled(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancelled = static_cast<const std::function<bool()>*>(user);
  return (*cancelled)() ? 1 : 0;
}

}  // namespace

HttpResponse perform(const HttpRequest& request) {
  global_init();
  CURL* curl = curl_easy_init();
  if (!curl) throw unavailable("cannot create an HTTP client (libcurl)");
  HttpResponse response;
  Upload upload{request.body};
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout_seconds * 1000));
  Download download{&response.body, request.max_response_bytes};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &download);
  curl_slist* resolve = nullptr;
  for (const auto& r : request.resolve) resolve = curl_slist_append(resolve, r.c_str());
  if (resolve) curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  if (request.http_only) curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    // Upload the body (possibly empty) with an explicit length, for any method.
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    // No "Expect:" header to turn 100-continue off: libcurl's SigV4 would sign that empty header
    // though it is never sent, and the signature would not match. A short wait instead.
    curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 300L);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (request.cancelled) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_if_cancelled);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &request.cancelled);
  }
  if (request.aws_sigv4) curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, request.aws_sigv4->c_str());
  if (request.user_password) {
    curl_easy_setopt(curl, CURLOPT_USERPWD, request.user_password->c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_slist_free_all(resolve);
  curl_easy_cleanup(curl);
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    throw Error(ErrorKind::cancelled, "the request was cancelled");
  if (rc != CURLE_OK) {
    // The URL (object keys; the query may carry signatures) goes to the log without its query,
    // never into the error's text, which can reach a client.
    std::string where = redact_url(request.url.substr(0, request.url.find('?')));
    spdlog::error("{} {} failed: {}", request.method, where, curl_easy_strerror(rc));
    std::string host = where.substr(0, where.find('/', where.find("://") + 3));
    throw unavailable(request.method + " to " + host + " failed: " + curl_easy_strerror(rc));
  }
  return response;
}

HttpResponse with_retries(const RetryPolicy& policy, const std::function<HttpResponse()>& attempt,
                          const std::function<bool()>& cancelled) {
  thread_local std::mt19937 rng{std::random_device{}()};
  for (int n = 1;; ++n) {
    try {
      HttpResponse r = attempt();
      if (!retryable_status(r.status) || n >= policy.max_attempts) return r;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::unavailable || n >= policy.max_attempts) throw;
    }
    double cap =
        std::min(policy.max_delay_seconds, policy.base_delay_seconds * std::pow(2.0, n - 1));
    std::uniform_real_distribution<double> jitter(0, cap);
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(jitter(rng)));
    while (std::chrono::steady_clock::now() < until) {
      if (cancelled && cancelled()) throw Error(ErrorKind::cancelled, "the request was cancelled");
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - std::chrono::steady_clock::now(), std::chrono::milliseconds(100)));
    }
  }
}

std::string url_encode(std::string_view text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex({reinterpret_cast<const char*>(digest), sizeof digest});
}

std::string xml_value(const std::string& xml, const std::string& tag) {
  auto open = xml.find("<" + tag + ">");
  if (open == std::string::npos) return {};
  open += tag.size() + 2;
  auto close = xml.find("</" + tag + ">", open);
  return close == std::string::npos ? std::string() : xml.substr(open, close - open);
}

}  // namespace sra::storage
