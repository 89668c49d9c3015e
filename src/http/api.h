// What every route of the API works with: the ApiContext (the service, the pools, access rules)
// shared by all connections, the Exchange of one request on one connection, and the small
// helpers every route uses. The routes themselves are in router.h's table; they run on the
// connection's strand and move CPU-heavy and blocking work to the pools in ApiContext.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/access.h"
#include "http/body_reader.h"
#include "http/responses.h"
#include "service/cached_check.h"
#include "service/inference_pool.h"
#include "service/metrics.h"
#include "service/transcription_service.h"

namespace sra::http {

struct ApiContext {
  TranscriptionService& service;       // decoding, models, storage and bus
  InferencePool& inference;            // where transcriptions run
  boost::asio::thread_pool& blocking;  // where storage and bus calls run
  std::string web_assets_dir;          // Swagger UI's files (swagger-ui-dist), for /docs
  const Access& access;                // API keys and CORS origins
  CachedCheck& readiness;              // /ready's last answer
};

// One request/response exchange on a connection. A handler that streams its response (server-
// sent events) writes it to `stream` itself and sets `responded`.
struct Exchange {
  BodyReader& body;
  boost::beast::tcp_stream& stream;
  bool responded = false;         // the handler has written the whole response
  bool keep_alive = true;         // after a streamed response: whether the connection may be reused
  std::string client = {};        // the caller's API key identity ("key#N") when keys are needed
  std::string allow_origin = {};  // the Origin a streamed response must allow (CORS), if any
  std::string request_id = {};    // X-Request-Id: the client's, or one made for this request
  // Counts the connection among the API key's (`client`); false when the key holds its bound
  // (MAX_CONNECTIONS_PER_CLIENT). Empty where connections are not counted.
  std::function<bool(const std::string& client)> claim_client = {};
  bool close_connection = false;  // the connection must not be reused after this response
};

// Who the caller is for per-client limits: its API key identity when keys are required, else the
// peer's address.
inline std::string client_identity(Exchange& ex) {
  if (!ex.client.empty()) return ex.client;
  boost::system::error_code ec;
  auto peer = ex.stream.socket().remote_endpoint(ec);
  return ec ? std::string("unknown") : peer.address().to_string();
}

// The per-client limits (RATE_LIMIT_*) for a transcription request, checked before its body is
// read: returns the client's identity (for TranscriptionJob::client) or throws
// sra::Error(rate_limited) (429 + Retry-After).
inline std::string admit_client(ApiContext& ctx, Exchange& ex) {
  std::string key = client_identity(ex);
  ctx.service.clients().admit(key);
  return key;
}

// The signature of every route's handler; `tail` is the path after a prefix route's prefix.
using RouteHandler = boost::asio::awaitable<Response> (*)(ApiContext& ctx,
                                                          const RequestParser::value_type& request,
                                                          Exchange& exchange,
                                                          std::string_view tail);

// The value of query parameter `name` in a request target ("" when absent), as sent (no
// percent-decoding).
std::string query_parameter(std::string_view target, std::string_view name);

// Every parameter of a request target's query, in order, names and values percent-decoded (`+` is
// a space). Throws sra::Error(invalid_request) for a malformed escape or more than 128 of them.
std::vector<std::pair<std::string, std::string>> query_parameters(std::string_view target);

}  // namespace sra::http
