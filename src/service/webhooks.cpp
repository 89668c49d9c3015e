#include "service/webhooks.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "core/base64.h"
#include "core/errors.h"
#include "core/text.h"
#include "storage/http_client.h"

namespace sra {

namespace {

constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

bool public_v4(const in_addr& a) {
  const std::uint32_t ip = ntohl(a.s_addr);
  auto in = [ip](std::uint32_t net, int bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (ip & mask) == net;
  };
  return !(in(0x00000000, 8) || in(0x0A000000, 8) || in(0x64400000, 10) || in(0x7F000000, 8) ||
           in(0xA9FE0000, 16) || in(0xAC100000, 12) || in(0xC0000000, 24) || in(0xC0A80000, 16) ||
           in(0xC6120000, 15) || in(0xE0000000, 4) || in(0xF0000000, 4));
}

bool public_v6(const in6_addr& a) {
  const auto* b = a.s6_addr;
  static const std::uint8_t kZero[16] = {};
  if (std::memcmp(b, kZero, 15) == 0 && (b[15] == 0 || b[15] == 1)) return false;  // :: and ::1
  const bool mapped = std::all_of(b, b + 10, [](std::uint8_t x) { return x == 0; }) &&
                      b[10] == 0xFF && b[11] == 0xFF;
  if (mapped) {
    in_addr v4;
    std::memcpy(&v4.s_addr, b + 12, 4);
    return public_v4(v4);
  }
  if ((b[0] & 0xFE) == 0xFC) return false;                  // fc00::/7, unique local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return false;  // fe80::/10, link-local
  if (b[0] == 0xFF) return false;                           // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return false;  // docs
  return true;
}

Error bad_url(const std::string& why) {
  return invalid_field("callback_url", why);
}

bool allowed(const std::string& host, const WebhookSettings& settings) {
  return std::find(settings.allow_hosts.begin(), settings.allow_hosts.end(), host) !=
         settings.allow_hosts.end();
}

std::string iso8601_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

WebhookSettings webhook_settings_from(const Config& config) {
  WebhookSettings s;
  std::string secret = strip(config.get_string("WEBHOOK_SECRET"));
  if (!secret.empty()) {
    std::string_view encoded = secret;
    if (encoded.starts_with("whsec_")) encoded.remove_prefix(6);
    auto key = base64_decode(encoded);
    if (!key || key->size() < 16) {
      throw config_error(
          "WEBHOOK_SECRET must be `whsec_` and the base64 of at least 16 random bytes (as "
          "Standard Webhooks libraries take it), e.g. whsec_$(head -c 32 /dev/urandom | base64)");
    }
    s.key = std::move(*key);
  }
  for (const std::string& host : split_list(config.get_string("WEBHOOK_ALLOW_HOSTS"))) {
    std::string h = strip(host);
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!h.empty()) s.allow_hosts.push_back(h);
  }
  s.max_seconds = config.get_double("WEBHOOK_MAX_SECONDS");
  s.attempt_timeout_seconds = config.get_double("WEBHOOK_TIMEOUT_SECONDS");
  return s;
}

WebhookTarget parse_webhook_url(std::string_view url) {
  if (url.size() > kMaxUrlBytes) {
    throw bad_url("longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      throw bad_url("a URL holds no spaces or control characters");
    }
  }
  WebhookTarget t{.url = std::string(url)};
  std::string_view rest;
  if (url.starts_with("https://")) {
    t.port = 443;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    t.port = 80;
    rest = url.substr(7);
  } else {
    throw bad_url("must be an http:// or https:// URL");
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    throw bad_url("credentials in the URL are not taken");
  }
  std::string_view host = authority;
  if (host.starts_with("[")) {
    auto close = host.find(']');
    if (close == std::string_view::npos) throw bad_url("an IPv6 address without its ']'");
    std::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!after.empty()) {
      if (!after.starts_with(":")) throw bad_url("a malformed host");
      authority = after;
    } else {
      authority = {};
    }
  } else {
    auto colon = host.find(':');
    authority = colon == std::string_view::npos ? std::string_view{} : host.substr(colon);
    host = host.substr(0, colon);
  }
  if (!authority.empty()) {  // ":port"
    std::string_view digits = authority.substr(1);
    int port = 0;
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        (port = std::stoi(std::string(digits))) < 1 || port > 65535) {
      throw bad_url("a port must be a number from 1 to 65535");
    }
    t.port = port;
  }
  if (host.empty()) throw bad_url("the URL names no host");
  t.host = std::string(host);
  std::transform(t.host.begin(), t.host.end(), t.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (t.host.find_first_of("/?#@[]\\") != std::string::npos) throw bad_url("a malformed host");
  return t;
}

WebhookTarget check_webhook_url(std::string_view url, const WebhookSettings& settings) {
  WebhookTarget t = parse_webhook_url(url);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(t.host.c_str(), nullptr, &hints, &found); rc != 0 || !found) {
    throw bad_url("its host '" + std::string(utf8_prefix(t.host, 64)) + "' does not resolve");
  }
  const bool may_be_private = allowed(t.host, settings);
  std::string first;
  bool all_public = true;
  for (addrinfo* a = found; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    bool is_public = false;
    if (a->ai_family == AF_INET) {
      const auto* sa = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      is_public = public_v4(sa->sin_addr);
      inet_ntop(AF_INET, &sa->sin_addr, text, sizeof text);
    } else if (a->ai_family == AF_INET6) {
      const auto* sa = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      is_public = public_v6(sa->sin6_addr);
      inet_ntop(AF_INET6, &sa->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    all_public = all_public && is_public;
    if (first.empty()) first = a->ai_family == AF_INET6 ? "[" + std::string(text) + "]" : text;
  }
  freeaddrinfo(found);
  if (first.empty()) throw bad_url("its host has no IP address");
  if (!all_public && !may_be_private) {
    throw bad_url("its host '" + std::string(utf8_prefix(t.host, 64)) +
                  "' is a private, loopback or link-local address (WEBHOOK_ALLOW_HOSTS may name "
                  "it)");
  }
  t.address = first;
  return t;
}

std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
  std::string message = std::string(id) + "." + std::to_string(timestamp) + ".";
  message.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  return "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac), length));
}

std::string webhook_payload(const std::string& task_id, const TaskResult& result) {
  namespace json = boost::json;
  json::object data{{"task_id", task_id}, {"status", to_string(result.status)}};
  std::string type = "transcription.completed";
  if (result.status == TaskStatus::success && result.transcription) {
    data["transcription"] = result.transcription->text;
    data["result"] = to_json(*result.transcription);
  } else {
    type = result.cancelled ? "transcription.cancelled" : "transcription.failed";
    data["transcription"] = nullptr;
    data["error"] = result.error.value_or("");
    data["cancelled"] = result.cancelled;
  }
  return json::serialize(
      json::object{{"type", type}, {"timestamp", iso8601_now()}, {"data", std::move(data)}});
}

bool WebhookSender::deliver(const std::string& url, const std::string& id, const std::string& body,
                            const std::function<bool()>& stopping) const {
  using Clock = std::chrono::steady_clock;
  const auto give_up_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(settings_.max_seconds));
  const std::string shown = redact_url(url.substr(0, url.find('?')));
  double delay = 1;
  for (int attempt = 1;; ++attempt) {
    std::string why;
    try {
      // Resolved and checked again for each attempt: the address connected to is the one checked.
      WebhookTarget target = check_webhook_url(url, settings_);
      const std::int64_t timestamp = static_cast<std::int64_t>(std::time(nullptr));
      storage::HttpRequest request;
      request.method = "POST";
      request.url = url;
      request.body = body;
      request.headers = {
          "Content-Type: application/json", "User-Agent: speech-recognition-api/" SRA_VERSION,
          "webhook-id: " + id, "webhook-timestamp: " + std::to_string(timestamp),
          "webhook-signature: " + webhook_signature(settings_.key, id, timestamp, body)};
      request.timeout_seconds = settings_.attempt_timeout_seconds;
      request.connect_timeout_seconds = std::min(settings_.attempt_timeout_seconds, 10.0);
      request.resolve = {target.host + ":" + std::to_string(target.port) + ":" + target.address};
      request.max_response_bytes = kMaxAnswerBytes;
      request.http_only = true;
      request.cancelled = stopping;
      storage::HttpResponse response = storage::perform(request);
      if (response.status >= 200 && response.status < 300) {
        spdlog::info("webhook {} delivered to {} (attempt {})", id, shown, attempt);
        return true;
      }
      why = "HTTP " + std::to_string(response.status);
      if (response.status >= 400 && response.status < 500 && response.status != 408 &&
          response.status != 429) {
        spdlog::warn("webhook {}: {} refused it ({}); not retried", id, shown, why);
        return false;
      }
    } catch (const Error& e) {
      why = e.what();
      if (e.kind() == ErrorKind::cancelled) return false;
    } catch (const std::exception& e) {
      why = e.what();
    }
    const auto next = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(delay));
    if (next > give_up_at) {
      spdlog::error("webhook {} to {} not delivered after {} attempts: {}", id, shown, attempt,
                    why);
      return false;
    }
    spdlog::warn("webhook {} to {}: attempt {} failed ({}); again in {:.0f} s", id, shown, attempt,
                 why, delay);
    while (Clock::now() < next) {
      if (stopping && stopping()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    delay = std::min(delay * 2, 60.0);
  }
}

}  // namespace sra
