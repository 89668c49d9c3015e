// Building the service's HTTP responses: JSON bodies, FastAPI's error shape, and the mapping from
// sra::Error kinds to status codes. Pure functions; safe from any thread.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "core/errors.h"

namespace sra::http {

namespace beast_http = boost::beast::http;
using Response = beast_http::response<beast_http::string_body>;

Response json_response(beast_http::status status, const boost::json::value& body);
// {"detail": "<message>"}, FastAPI's shape for HTTPException.
Response detail_response(beast_http::status status, const std::string& message);
// FastAPI's 422 for a missing required form field:
// {"detail":[{"type":"missing","loc":["body",<field>],"msg":"Field required","input":null}]}
Response missing_field_response(const std::string& field);
// nginx's 499 "client closed request": logged for a job cancelled because its client left (no
// one reads the response).
inline constexpr auto kClientClosedRequest = static_cast<beast_http::status>(499);
beast_http::status status_for(ErrorKind kind);
// The response for an error; a 503 carries Retry-After; an invalid field is FastAPI's 422
// validation shape with the field in `loc`.
Response error_response(const Error& error);
// Retry-After from the error's retry_after(), else 5 s on a 503; nothing otherwise.
void set_retry_after(Response& res, const Error& error);

}  // namespace sra::http
