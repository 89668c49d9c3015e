// The API's routes: the seed's sync and async transcription endpoints and /health.
//
// handle_request() is called by the server's connection coroutine once a request's headers are
// in; it reads the body through `body` only if the route needs it, and returns the response. It
// never throws: every error becomes a JSON response (FastAPI's shapes), internal faults a logged
// 500. Runs on the connection's strand; CPU-heavy and blocking work is moved to the pools in
// ApiContext.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "http/body_reader.h"
#include "http/responses.h"
#include "service/inference_pool.h"
#include "service/transcription_service.h"

namespace sra::http {

struct ApiContext {
  TranscriptionService& service;       // decoding, models, storage and bus
  InferencePool& inference;            // where transcriptions run
  boost::asio::thread_pool& blocking;  // where storage and bus calls run
};

boost::asio::awaitable<Response> handle_request(ApiContext& context,
                                                const RequestParser::value_type& request,
                                                BodyReader& body);

}  // namespace sra::http
