#include "core/errors.h"

namespace sra {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request:
      return "invalid_request";
    case ErrorKind::unsupported_media:
      return "unsupported_media";
    case ErrorKind::too_large:
      return "too_large";
    case ErrorKind::not_found:
      return "not_found";
    case ErrorKind::unavailable:
      return "unavailable";
    case ErrorKind::rate_limited:
      return "rate_limited";
    case ErrorKind::unauthorized:
      return "unauthorized";
    case ErrorKind::forbidden:
      return "forbidden";
    case ErrorKind::config:
      return "config";
    case ErrorKind::request_timeout:
      return "request_timeout";
    case ErrorKind::cancelled:
      return "cancelled";
    case ErrorKind::deadline_exceeded:
      return "deadline_exceeded";
    case ErrorKind::conflict:
      return "conflict";
    case ErrorKind::not_implemented:
      return "not_implemented";
    case ErrorKind::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace sra
