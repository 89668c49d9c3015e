// The Python speech-recognition-api project's routes, whose contract holds unchanged:
// POST /sync/v1/transcribe (the transcription in the response), POST /async/v1/transcribe (a task
// id; the upload goes to storage and the task to the message bus), GET
// /async/v1/transcribe/{task_id} (its status and result, in any response format) and, beyond the
// Python project, DELETE on the same path (cancellation). Errors in FastAPI's shapes.
//
// Route handlers for the router (router.h): called on the connection's strand; they throw
// sra::Error for every refusal. `tail` is the part of the path after the route's prefix.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "http/api.h"

namespace sra::http {

boost::asio::awaitable<Response> sync_transcribe(ApiContext& ctx,
                                                 const RequestParser::value_type& request,
                                                 Exchange& exchange, std::string_view tail);
boost::asio::awaitable<Response> async_transcribe(ApiContext& ctx,
                                                  const RequestParser::value_type& request,
                                                  Exchange& exchange, std::string_view tail);
// GET: the task's status or result; DELETE: cancels it. `task_id` is the path's tail.
boost::asio::awaitable<Response> task_route(ApiContext& ctx,
                                            const RequestParser::value_type& request,
                                            Exchange& exchange, std::string_view task_id);

}  // namespace sra::http
