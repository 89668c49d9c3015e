// libFuzzer harness: what a client's `callback_url` (and Deepgram's `callback`) reaches before any
// network call: the URL reader of service/webhooks.h, and the signature over hostile bytes. The
// input's first line is the URL; the rest is signed as a body. Properties: only sra::Error (naming
// callback_url) comes out; a URL that is read has an http(s) scheme, a non-empty lower-case host
// without delimiters, and a port from 1 to 65535; the signature is `v1,` and 44 base64 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/errors.h"
#include "service/webhooks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view url = input.substr(0, newline);
  const std::string_view body = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  try {
    sra::WebhookTarget t = sra::parse_webhook_url(url);
    if (!(t.url.starts_with("http://") || t.url.starts_with("https://"))) std::abort();
    if (t.host.empty() || t.host.find_first_of("/?#@[]\\") != std::string::npos) std::abort();
    for (char c : t.host) {
      if (c >= 'A' && c <= 'Z') std::abort();
    }
    if (t.port < 1 || t.port > 65535 || !t.address.empty()) std::abort();
  } catch (const sra::Error& e) {
    if (e.field().value_or("") != "callback_url") std::abort();
  }
  const std::string signature = sra::webhook_signature(body.substr(0, 64), url, 1, body);
  if (signature.size() != 3 + 44 || !signature.starts_with("v1,")) std::abort();
  return 0;
}
