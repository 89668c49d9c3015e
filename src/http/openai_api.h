// OpenAI's transcription API: POST /v1/audio/transcriptions and /v1/audio/translations (with
// every response format and server-sent-event streaming), GET /v1/models and /v1/models/{id},
// and errors in OpenAI's shape {"error": {"message", "type", "param", "code"}}. Beside them, in
// the same shape, POST /v1/audio/language: the spoken language of a file (OpenAI has no such
// route; whisper-asr-webservice calls it /detect-language).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "core/errors.h"
#include "http/api.h"

namespace sra::http {

boost::asio::awaitable<Response> openai_transcribe(ApiContext& ctx,
                                                   const RequestParser::value_type& request,
                                                   Exchange& exchange, bool translate);
boost::asio::awaitable<Response> openai_detect_language(ApiContext& ctx,
                                                        const RequestParser::value_type& request,
                                                        Exchange& exchange);
Response openai_models(ApiContext& ctx);
Response openai_model(ApiContext& ctx, const std::string& id);

Response openai_error_response(const Error& error);
Response openai_not_found(const std::string& path);
Response openai_method_not_allowed(const char* allow);

}  // namespace sra::http
