// Celery's task message protocol v2 and result format, as kombu and Celery 5 write them, so that
// Python producers, result readers and monitoring interoperate with our workers and API.
// Pure functions; safe from any thread.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace sra::bus {

inline constexpr const char* kSeedCeleryTask =
    "speech_recognition_api.extra.celery_bus.celery_bus.celery_task";

struct CeleryTask {
  std::string id;            // task id (a UUID)
  std::string name;          // registered task name
  std::string file_id;       // the first positional argument, as the seed's task takes it
  std::string options_json;  // per-request options ("{}" or empty: none)
  int retries = 0;           // how often the task was retried
  std::string request_id;    // the submission's X-Request-Id (header "request_id"; may be empty)
};

// [args, kwargs, embed] of protocol v2.
std::string celery_body(const CeleryTask& task);
// The headers of protocol v2.
boost::json::object celery_headers(const CeleryTask& task);
// The JSON envelope kombu's Redis transport LPUSHes (body base64-encoded).
std::string redis_envelope(const CeleryTask& task, const std::string& queue,
                           const std::string& delivery_tag);

// Reads a task from its headers and (decoded) body. Throws std::runtime_error if malformed.
CeleryTask parse_celery_task(const boost::json::object& headers, const std::string& body);
// Reads kombu's Redis envelope. Throws std::runtime_error if malformed.
CeleryTask parse_redis_envelope(const std::string& envelope, std::string* delivery_tag);

// The value Celery's Redis backend stores at celery-task-meta-<id>; `status` is one of Celery's
// states (SUCCESS, FAILURE, REVOKED, or a custom one such as PROGRESS, whose `result` is its meta).
std::string result_meta(const std::string& task_id, const std::string& status,
                        const boost::json::value& result, const std::string& traceback);
// {"exc_type", "exc_message", "exc_module"} as Celery's JSON serializer writes exceptions.
boost::json::value exception_result(const std::string& type, const std::string& message,
                                    const std::string& module = "builtins");

std::string base64_encode(const std::string& data);
std::string base64_decode(const std::string& text);

}  // namespace sra::bus
