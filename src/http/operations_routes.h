// The routes operators and load balancers call: GET /health (the process answers), GET /ready
// (the storage and the bus can serve and the async backlog is below its bounds; the answer is
// kept for a second, so that a probe storm never becomes a storm of calls to S3 or the broker)
// and GET /metrics (Prometheus' text format). Handlers for the router (router.h), on the
// connection's strand; the checks run on the blocking pool.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "http/api.h"

namespace sra::http {

boost::asio::awaitable<Response> health_route(ApiContext& ctx,
                                              const RequestParser::value_type& request,
                                              Exchange& exchange, std::string_view tail);
boost::asio::awaitable<Response> ready_route(ApiContext& ctx,
                                             const RequestParser::value_type& request,
                                             Exchange& exchange, std::string_view tail);
boost::asio::awaitable<Response> metrics_route(ApiContext& ctx,
                                               const RequestParser::value_type& request,
                                               Exchange& exchange, std::string_view tail);

}  // namespace sra::http
