// Webhooks for async work: when a task ends (SUCCESS, FAILED or cancelled), its result is POSTed to
// the `callback_url` it was submitted with, signed as the Standard Webhooks specification says
// (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body">` with WEBHOOK_SECRET), so that a receiver can check who sent it and that it
// is fresh, and drop a repeat by its id.
//
// SSRF-safe: a URL is http or https without credentials, at most 2048 bytes; its host is resolved
// once per attempt and refused when any address is private, loopback, link-local, multicast or
// otherwise not public, unless WEBHOOK_ALLOW_HOSTS names it; the request then connects to that
// very address (no second lookup for DNS rebinding), follows no redirect, and keeps at most 64 KiB
// of the answer within WEBHOOK_TIMEOUT_SECONDS.
//
// Delivery is at least once: WebhookSender::deliver() retries with exponential backoff (1 s, 2 s,
// ... at most 60 s apart) until a 2xx answer or WEBHOOK_MAX_SECONDS; the worker calls it before
// the task's outcome is stored (WorkerOptions::before_final), so a worker that dies meanwhile
// leaves the task to another, which delivers it again under the same id. A 4xx other than 408/429
// is final (the receiver refuses it). Safe from any thread; deliver() blocks its caller.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/message_bus.h"

namespace sra {

struct WebhookSettings {
  std::string key;                       // WEBHOOK_SECRET's bytes; empty: webhooks are off
  std::vector<std::string> allow_hosts;  // hosts that may be private (WEBHOOK_ALLOW_HOSTS)
  double max_seconds = 300;              // how long one delivery is retried
  double attempt_timeout_seconds = 10;   // one attempt's whole exchange
};

// Throws sra::Error(config) naming WEBHOOK_SECRET when it is not `whsec_<base64>` or base64.
WebhookSettings webhook_settings_from(const Config& config);

// Where a callback URL's host connects: checked and resolved.
struct WebhookTarget {
  std::string url;      // as given
  std::string host;     // lower case, without brackets
  int port = 0;         // explicit or the scheme's
  std::string address;  // the checked address it connects to
};

// Reads `url` without resolving it: url, host and port set, address empty. Throws as
// check_webhook_url() for what is wrong with the URL itself. Pure; the fuzzed part.
WebhookTarget parse_webhook_url(std::string_view url);

// Checks `url` and resolves its host now. Throws sra::Error(invalid_request, field
// "callback_url") saying what is wrong: not http(s), credentials, too long, no host, a private
// address not allowed, a host that does not resolve.
WebhookTarget check_webhook_url(std::string_view url, const WebhookSettings& settings);

// "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>", the Standard Webhooks
// signature.
std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                              std::string_view body);

// The payload of a task's final outcome: {"type": "transcription.completed" | ".failed" |
// ".cancelled", "timestamp", "data": {"task_id", "status", "transcription", "result" (the
// transcription with its segments) | "error", "cancelled"}}.
std::string webhook_payload(const std::string& task_id, const TaskResult& result);

class WebhookSender {
 public:
  explicit WebhookSender(WebhookSettings settings) : settings_(std::move(settings)) {}

  bool enabled() const { return !settings_.key.empty(); }
  const WebhookSettings& settings() const { return settings_; }

  // POSTs `body` under message id `id` to `url` until it is taken (true) or WEBHOOK_MAX_SECONDS
  // pass or the receiver refuses it for good (false, logged); `stopping` (may be empty) ends the
  // retries early, returning false. Never throws.
  bool deliver(const std::string& url, const std::string& id, const std::string& body,
               const std::function<bool()>& stopping = {}) const;

 private:
  WebhookSettings settings_;
};

}  // namespace sra
