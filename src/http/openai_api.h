// OpenAI's transcription API: POST /v1/audio/transcriptions and /v1/audio/translations (with
// every response format and server-sent-event streaming), GET /v1/models and /v1/models/{id},
// and errors in OpenAI's shape {"error": {"message", "type", "param", "code"}}. Beside them, in
// the same shape, POST /v1/audio/language: the spoken language of a file (OpenAI has no such
// route; whisper-asr-webservice calls it /detect-language). With `callback_url` (not OpenAI's)
// a transcription or translation is queued as an async task and answered 202 {"id", "object":
// "transcription.task", "status": "queued"}; its response comes as a signed webhook.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <string>

#include "core/errors.h"
#include "core/message_bus.h"
#include "http/api.h"

namespace sra::http {

// Route handlers for the router (router.h), on the connection's strand.
boost::asio::awaitable<Response> openai_transcriptions_route(
    ApiContext& ctx, const RequestParser::value_type& request, Exchange& exchange,
    std::string_view tail);
boost::asio::awaitable<Response> openai_translations_route(ApiContext& ctx,
                                                           const RequestParser::value_type& request,
                                                           Exchange& exchange,
                                                           std::string_view tail);
boost::asio::awaitable<Response> openai_language_route(ApiContext& ctx,
                                                       const RequestParser::value_type& request,
                                                       Exchange& exchange, std::string_view tail);
// The fields of POST /v1/audio/diarization (for the OpenAPI document).
const std::vector<OptionSpec>& diarization_route_specs();
boost::asio::awaitable<Response> openai_diarization_route(ApiContext& ctx,
                                                          const RequestParser::value_type& request,
                                                          Exchange& exchange,
                                                          std::string_view tail);
boost::asio::awaitable<Response> openai_models_route(ApiContext& ctx,
                                                     const RequestParser::value_type& request,
                                                     Exchange& exchange, std::string_view tail);
// GET /v1/models/{id}: `tail` is the id.
boost::asio::awaitable<Response> openai_model_route(ApiContext& ctx,
                                                    const RequestParser::value_type& request,
                                                    Exchange& exchange, std::string_view tail);

// The webhook body of a task queued by a transcription or translation with `callback_url` (the
// service's webhook format "openai"): the json or verbose_json response the request asked for,
// or OpenAI's error object (with `task_id`) for a failure.
std::string openai_callback_body(const std::string& task_id, const TaskResult& result,
                                 const std::map<std::string, std::string>& options);

// The one map from sra::Error to OpenAI's error response (status, type, param, code).
Response openai_error_response(const Error& error);
Response openai_not_found(const std::string& path);
Response openai_method_not_allowed(std::string_view allow);

}  // namespace sra::http
