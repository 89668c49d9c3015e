// Errors of the service: one exception type that carries what went wrong and whose fault it is.
//
// Every failure that crosses a layer boundary is an sra::Error. Its kind says how a caller must
// react (the HTTP layer maps it to a status code, a worker decides whether to retry), and its
// message says what happened in words an operator can act on: it names the variable, file or id
// involved. An error caused by one request field carries that field's name as data (field()),
// so that routes can report it in their own shape (FastAPI's `loc`, OpenAI's `param`) without
// reading it back out of the message. Errors are values: they are safe to copy and to throw from
// any thread.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace sra {

enum class ErrorKind {
  invalid_request,    // the request is malformed (missing field, bad multipart): HTTP 422
  unsupported_media,  // the bytes are not audio we can decode: HTTP 415; a task fails for good
  too_large,          // an upload or its audio exceeds a configured limit: HTTP 413
  not_found,          // unknown task or file id: HTTP 404
  unavailable,        // overloaded or a dependency is down; retry later: HTTP 503
  rate_limited,       // this client sent more than its share (RATE_LIMIT_*): HTTP 429
  unauthorized,       // no valid API key (API_KEY): HTTP 401
  forbidden,          // the caller may not do this (a page of an origin not allowed): HTTP 403
  config,             // a part is misconfigured; the message names the variable: HTTP 503
  request_timeout,    // the client sent its request too slowly: HTTP 408
  cancelled,          // the job was cancelled (client gone, shutdown): nobody waits for an answer
  deadline_exceeded,  // the job ran past its deadline (MAX_JOB_SECONDS): HTTP 504; a task fails
  conflict,           // the request does not fit the resource's state (a finished task): HTTP 409
  not_implemented,    // the configured part cannot do this (a bus that cannot cancel): HTTP 501
  internal,           // a fault of ours: HTTP 500, logged
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, std::optional<std::string> field = {})
      : std::runtime_error(message), kind_(kind), field_(std::move(field)) {}
  ErrorKind kind() const noexcept { return kind_; }
  // The request field (form field or option name) at fault, if one is.
  const std::optional<std::string>& field() const noexcept { return field_; }
  // When the same request may succeed again, in seconds (Retry-After), if the thrower knows.
  std::optional<double> retry_after() const noexcept { return retry_after_; }
  Error& set_retry_after(double seconds) {
    retry_after_ = seconds;
    return *this;
  }
  // True when the field at fault was not sent at all (FastAPI's "missing", not a bad value).
  bool field_missing() const noexcept { return field_missing_; }
  // True when retrying the same input can never succeed (the input itself is at fault, or its
  // job already used all the time it may have).
  bool is_permanent() const noexcept {
    return kind_ == ErrorKind::invalid_request || kind_ == ErrorKind::unsupported_media ||
           kind_ == ErrorKind::too_large || kind_ == ErrorKind::not_found ||
           kind_ == ErrorKind::deadline_exceeded;
  }

 private:
  ErrorKind kind_;
  std::optional<std::string> field_;
  std::optional<double> retry_after_;
  bool field_missing_ = false;

  friend Error missing_field(const std::string& field, const std::string& m);
};

inline Error invalid_request(const std::string& m) {
  return {ErrorKind::invalid_request, m};
}
// An invalid value of one request field; `message` does not repeat the field's name.
inline Error invalid_field(const std::string& field, const std::string& m) {
  return {ErrorKind::invalid_request, m, field};
}
// A required request field that was not sent.
inline Error missing_field(const std::string& field, const std::string& m) {
  Error e(ErrorKind::invalid_request, m, field);
  e.field_missing_ = true;
  return e;
}
inline Error forbidden(const std::string& m) {
  return {ErrorKind::forbidden, m};
}
inline Error unsupported_media(const std::string& m) {
  return {ErrorKind::unsupported_media, m};
}
inline Error too_large(const std::string& m) {
  return {ErrorKind::too_large, m};
}
inline Error not_found(const std::string& m) {
  return {ErrorKind::not_found, m};
}
inline Error unavailable(const std::string& m) {
  return {ErrorKind::unavailable, m};
}
// Overloaded (a full queue or backlog); the caller may try again after `retry_after` seconds.
inline Error overloaded(const std::string& m, double retry_after) {
  return Error(ErrorKind::unavailable, m).set_retry_after(retry_after);
}
inline Error rate_limited(const std::string& m, double retry_after) {
  return Error(ErrorKind::rate_limited, m).set_retry_after(retry_after);
}
inline Error unauthorized(const std::string& m) {
  return {ErrorKind::unauthorized, m};
}
inline Error config_error(const std::string& m) {
  return {ErrorKind::config, m};
}
inline Error request_timeout(const std::string& m) {
  return {ErrorKind::request_timeout, m};
}
inline Error cancelled(const std::string& m) {
  return {ErrorKind::cancelled, m};
}
inline Error deadline_exceeded(const std::string& m) {
  return {ErrorKind::deadline_exceeded, m};
}
inline Error conflict(const std::string& m) {
  return {ErrorKind::conflict, m};
}
inline Error not_implemented(const std::string& m) {
  return {ErrorKind::not_implemented, m};
}
inline Error internal_error(const std::string& m) {
  return {ErrorKind::internal, m};
}

}  // namespace sra
