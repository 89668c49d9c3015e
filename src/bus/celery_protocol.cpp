#include "bus/celery_protocol.h"

#include <unistd.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <stdexcept>

namespace sra::bus {

namespace json = boost::json;
namespace b64 = boost::beast::detail::base64;

std::string base64_encode(const std::string& data) {
  std::string out(b64::encoded_size(data.size()), '\0');
  out.resize(b64::encode(out.data(), data.data(), data.size()));
  return out;
}

std::string base64_decode(const std::string& text) {
  std::string out(b64::decoded_size(text.size()), '\0');
  auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  if (read != text.size() && text.find_first_not_of("= \r\n", read) != std::string::npos) {
    throw std::runtime_error("body is not valid base64");
  }
  out.resize(written);
  return out;
}

namespace {

std::string origin() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return "gen" + std::to_string(getpid()) + "@" + host;
}

json::array args_of(const CeleryTask& task) {
  return json::array{json::value(task.file_id)};
}

json::object kwargs_of(const CeleryTask& task) {
  json::object kwargs;
  if (!task.options_json.empty() && task.options_json != "{}")
    kwargs["options"] = task.options_json;
  return kwargs;
}

}  // namespace

std::string celery_body(const CeleryTask& task) {
  json::object embed{
      {"callbacks", nullptr}, {"errbacks", nullptr}, {"chain", nullptr}, {"chord", nullptr}};
  return json::serialize(json::array{args_of(task), kwargs_of(task), embed});
}

json::object celery_headers(const CeleryTask& task) {
  json::object headers{{"lang", "py"},
                       {"task", task.name},
                       {"id", task.id},
                       {"shadow", nullptr},
                       {"eta", nullptr},
                       {"expires", nullptr},
                       {"group", nullptr},
                       {"group_index", nullptr},
                       {"retries", task.retries},
                       {"timelimit", json::array{nullptr, nullptr}},
                       {"root_id", task.id},
                       {"parent_id", nullptr},
                       {"argsrepr", "['" + task.file_id + "']"},
                       {"kwargsrepr", json::serialize(kwargs_of(task))},
                       {"origin", origin()},
                       {"ignore_result", false},
                       {"replaced_task_nesting", 0},
                       {"stamped_headers", nullptr},
                       {"stamps", json::object{}}};
  if (!task.request_id.empty()) headers["request_id"] = task.request_id;
  return headers;
}

std::string redis_envelope(const CeleryTask& task, const std::string& queue,
                           const std::string& delivery_tag) {
  json::object properties{{"correlation_id", task.id},
                          {"reply_to", task.id},
                          {"delivery_mode", 2},
                          {"delivery_info", json::object{{"exchange", ""}, {"routing_key", queue}}},
                          {"priority", 0},
                          {"body_encoding", "base64"},
                          {"delivery_tag", delivery_tag}};
  return json::serialize(json::object{{"body", base64_encode(celery_body(task))},
                                      {"content-encoding", "utf-8"},
                                      {"content-type", "application/json"},
                                      {"headers", celery_headers(task)},
                                      {"properties", properties}});
}

CeleryTask parse_celery_task(const json::object& headers, const std::string& body) {
  CeleryTask t;
  try {
    t.id = std::string(headers.at("id").as_string());
    t.name = std::string(headers.at("task").as_string());
    if (auto* r = headers.if_contains("retries"); r && r->is_int64())
      t.retries = static_cast<int>(r->as_int64());
    if (auto* r = headers.if_contains("request_id"); r && r->is_string())
      t.request_id = std::string(r->as_string());
    auto parsed = json::parse(body);
    const auto& parts = parsed.as_array();
    const auto& args = parts.at(0).as_array();
    const auto& kwargs = parts.at(1).as_object();
    if (!args.empty()) {
      t.file_id = std::string(args.at(0).as_string());
    } else if (auto* f = kwargs.if_contains("file_id")) {
      t.file_id = std::string(f->as_string());
    }
    if (auto* o = kwargs.if_contains("options"); o && o->is_string())
      t.options_json = std::string(o->as_string());
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("not a Celery protocol 2 task: ") + e.what());
  }
  return t;
}

CeleryTask parse_redis_envelope(const std::string& envelope, std::string* delivery_tag) {
  try {
    auto v = json::parse(envelope).as_object();
    std::string body(v.at("body").as_string());
    const auto& props = v.at("properties").as_object();
    if (auto* enc = props.if_contains("body_encoding"); enc && enc->as_string() == "base64")
      body = base64_decode(body);
    if (delivery_tag) *delivery_tag = std::string(props.at("delivery_tag").as_string());
    return parse_celery_task(v.at("headers").as_object(), body);
  } catch (const std::runtime_error&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("not a kombu message: ") + e.what());
  }
}

std::string result_meta(const std::string& task_id, const std::string& status,
                        const json::value& result, const std::string& traceback) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  char date[64];
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::snprintf(date, sizeof date, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  // Celery dates only the states that are final (READY_STATES).
  bool ready = status == "SUCCESS" || status == "FAILURE" || status == "REVOKED";
  return json::serialize(
      json::object{{"status", status},
                   {"result", result},
                   {"traceback", traceback.empty() ? json::value(nullptr) : json::value(traceback)},
                   {"children", json::array{}},
                   {"date_done", ready ? json::value(date) : json::value(nullptr)},
                   {"task_id", task_id}});
}

json::value exception_result(const std::string& type, const std::string& message,
                             const std::string& module) {
  return json::object{{"exc_type", type},
                      {"exc_message", json::array{json::value(message)}},
                      {"exc_module", module}};
}

}  // namespace sra::bus
