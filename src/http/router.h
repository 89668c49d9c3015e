// The router: every route of the API in one table (its path, the methods it answers, the shape of
// its errors, its metrics label), API keys and CORS for all of them, one access line and the
// request metrics per request.
//
// handle_request() is called by the server's connection coroutine once a request's headers are
// in; the route reads the body through the exchange only if it needs it. It never throws: every
// error becomes a response in the route's shape (FastAPI's {"detail"} on the Python project's
// routes, OpenAI's {"error"} under /v1/), internal faults a logged 500. Runs on the connection's
// strand.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/api.h"

namespace sra::http {

boost::asio::awaitable<Response> handle_request(ApiContext& context,
                                                const RequestParser::value_type& request,
                                                Exchange& exchange);

// The route a request took, as a metrics label: a closed set (ids and unknown paths folded).
std::string route_label(std::string_view path);

}  // namespace sra::http
