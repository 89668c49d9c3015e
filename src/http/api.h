// The API's routes: the seed's sync and async endpoints, /health, OpenAI's transcription API,
// the OpenAPI document, Swagger UI and the web page.
//
// handle_request() is called by the server's connection coroutine once a request's headers are
// in; it reads the body through `body` only if the route needs it, and returns the response. It
// never throws: every error becomes a JSON response (FastAPI's shapes), internal faults a logged
// 500. Runs on the connection's strand; CPU-heavy and blocking work is moved to the pools in
// ApiContext.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "http/access.h"
#include "http/body_reader.h"
#include "http/responses.h"
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
};

// One request/response exchange on a connection. A handler that streams its response (server-
// sent events) writes it to `stream` itself and sets `responded`.
struct Exchange {
  BodyReader& body;
  boost::beast::tcp_stream& stream;
  bool responded = false;    // the handler has written the whole response
  bool keep_alive = true;    // after a streamed response: whether the connection may be reused
  std::string client;        // the caller's API key identity ("key#N") when keys are required
  std::string allow_origin;  // the Origin a streamed response must allow (CORS), if any
  std::string request_id;    // X-Request-Id: the client's, or one made for this request
};

// A place in the inference queue for one job, taken before the request body is read; throws
// sra::Error(unavailable) (503 + Retry-After) when the queue is full.
inline std::unique_ptr<InferencePool::Ticket> admit(ApiContext& ctx) {
  auto ticket = ctx.inference.try_admit();
  if (!ticket) {
    metrics().refused.with({"inference_queue"}).add();
    throw unavailable("the inference queue is full (" +
                      std::to_string(ctx.inference.options().queue_size) +
                      " waiting); retry later");
  }
  return ticket;
}

// The per-client limits (RATE_LIMIT_*) for a transcription request, checked before its body is
// read: returns the client's key (for TranscriptionJob::client) or throws
// sra::Error(rate_limited) (429 + Retry-After). The key is the caller's API key identity when
// keys are required, else the peer's address.
inline std::string admit_client(ApiContext& ctx, Exchange& ex) {
  boost::system::error_code ec;
  auto peer = ex.stream.socket().remote_endpoint(ec);
  std::string key = !ex.client.empty() ? ex.client
                    : ec               ? std::string("unknown")
                                       : peer.address().to_string();
  ctx.service.clients().admit(key);
  return key;
}

// The value of query parameter `name` in a request target ("" when absent), as sent (no
// percent-decoding).
std::string query_parameter(std::string_view target, std::string_view name);

boost::asio::awaitable<Response> handle_request(ApiContext& context,
                                                const RequestParser::value_type& request,
                                                Exchange& exchange);

}  // namespace sra::http
