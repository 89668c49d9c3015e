#include "http/responses.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

namespace sra::http {

Response json_response(beast_http::status status, const boost::json::value& body) {
  Response res{status, 11};
  res.set(beast_http::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
  return res;
}

Response detail_response(beast_http::status status, const std::string& message) {
  return json_response(status, boost::json::object{{"detail", message}});
}

Response missing_field_response(const std::string& field) {
  boost::json::object item{{"type", "missing"},
                           {"loc", boost::json::array{"body", field}},
                           {"msg", "Field required"},
                           {"input", nullptr}};
  return json_response(beast_http::status::unprocessable_entity,
                       boost::json::object{{"detail", boost::json::array{item}}});
}

beast_http::status status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request:
      return beast_http::status::unprocessable_entity;
    case ErrorKind::unsupported_media:
      return beast_http::status::unsupported_media_type;
    case ErrorKind::too_large:
      return beast_http::status::payload_too_large;
    case ErrorKind::not_found:
      return beast_http::status::not_found;
    case ErrorKind::unavailable:
      return beast_http::status::service_unavailable;
    case ErrorKind::rate_limited:
      return beast_http::status::too_many_requests;
    case ErrorKind::unauthorized:
      return beast_http::status::unauthorized;
    case ErrorKind::forbidden:
      return beast_http::status::forbidden;
    case ErrorKind::config:
      return beast_http::status::service_unavailable;
    case ErrorKind::request_timeout:
      return beast_http::status::request_timeout;
    case ErrorKind::cancelled:
      return kClientClosedRequest;
    case ErrorKind::deadline_exceeded:
      return beast_http::status::gateway_timeout;
    case ErrorKind::conflict:
      return beast_http::status::conflict;
    case ErrorKind::not_implemented:
      return beast_http::status::not_implemented;
    case ErrorKind::internal:
      return beast_http::status::internal_server_error;
  }
  return beast_http::status::internal_server_error;
}

void set_retry_after(Response& res, const Error& error) {
  if (auto seconds = error.retry_after()) {
    res.set(beast_http::field::retry_after,
            std::to_string(static_cast<long>(std::clamp(std::ceil(*seconds), 1.0, 86400.0))));
  } else if (res.result() == beast_http::status::service_unavailable) {
    res.set(beast_http::field::retry_after, "5");
  }
}

Response error_response(const Error& error) {
  auto status = status_for(error.kind());
  if (error.kind() == ErrorKind::invalid_request && error.field()) {
    if (error.field_missing()) return missing_field_response(*error.field());
    // FastAPI's validation shape, as for a missing field: the field is in `loc`.
    boost::json::object item{{"type", "value_error"},
                             {"loc", boost::json::array{"body", *error.field()}},
                             {"msg", error.what()},
                             {"input", nullptr}};
    return json_response(beast_http::status::unprocessable_entity,
                         boost::json::object{{"detail", boost::json::array{item}}});
  }
  Response res = detail_response(status, error.what());
  set_retry_after(res, error);
  if (status == beast_http::status::unauthorized)
    res.set(beast_http::field::www_authenticate, "Bearer");
  return res;
}

}  // namespace sra::http
