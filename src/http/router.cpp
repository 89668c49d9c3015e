#include "http/router.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>

#include "core/errors.h"
#include "core/log_context.h"
#include "core/text.h"
#include "core/uuid.h"
#include "http/deepgram_api.h"
#include "http/openai_api.h"
#include "http/operations_routes.h"
#include "http/python_project_api.h"
#include "http/realtime.h"
#include "http/static_routes.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
using bhttp_status = beast_http::status;

namespace {

enum class ErrorShape {
  fastapi,   // {"detail": ...}: the Python project's routes and the service's own
  openai,    // {"error": {"message", "type", "param", "code"}}: everything under /v1/
  deepgram,  // {"err_code", "err_msg", "request_id"}: Deepgram's /v1/listen
};

struct Route {
  std::string_view path;   // the exact path, or with `prefix` what a path starts with
  bool prefix = false;     // the route takes every path below `path` (the rest is its tail)
  std::string_view allow;  // the methods it answers ("GET" answers HEAD too)
  ErrorShape shape = ErrorShape::fastapi;
  std::string_view label;  // the metrics label of the route
  RouteHandler handler = nullptr;
};

asio::awaitable<Response> static_content(ApiContext& ctx, const RequestParser::value_type& req,
                                         Exchange&, std::string_view) {
  std::string_view target = req.target();
  auto res = static_route(ctx, target.substr(0, target.find('?')));
  if (!res) throw not_found("Not Found");
  co_return std::move(*res);
}

constexpr auto F = ErrorShape::fastapi;
constexpr auto O = ErrorShape::openai;
constexpr auto D = ErrorShape::deepgram;

// Every route the server answers. The static documents come last: "/" is exact, "/docs/" a
// prefix.
constexpr std::array kRoutes{
    Route{"/health", false, "GET", F, "/health", health_route},
    Route{"/ready", false, "GET", F, "/ready", ready_route},
    Route{"/metrics", false, "GET", F, "/metrics", metrics_route},
    Route{"/sync/v1/transcribe", false, "POST", F, "/sync/v1/transcribe", sync_transcribe},
    Route{"/async/v1/transcribe", false, "POST", F, "/async/v1/transcribe", async_transcribe},
    Route{"/async/v1/transcribe/", true, "GET, DELETE", F, "/async/v1/transcribe/{task_id}",
          task_route},
    Route{"/v1/audio/transcriptions", false, "POST", O, "/v1/audio/transcriptions",
          openai_transcriptions_route},
    Route{"/v1/audio/translations", false, "POST", O, "/v1/audio/translations",
          openai_translations_route},
    Route{"/v1/audio/language", false, "POST", O, "/v1/audio/language", openai_language_route},
    Route{"/v1/audio/diarization", false, "POST", O, "/v1/audio/diarization",
          openai_diarization_route},
    Route{kRealtimePath, false, "GET", O, "/v1/realtime", realtime_route},
    Route{"/v1/listen", false, "GET, POST", D, "/v1/listen", deepgram_listen_route},
    Route{"/v1/models", false, "GET", O, "/v1/models", openai_models_route},
    Route{"/v1/models/", true, "GET", O, "/v1/models/{model}", openai_model_route},
    Route{"/openapi.json", false, "GET", F, "/openapi.json", static_content},
    Route{"/docs", false, "GET", F, "/docs", static_content},
    Route{"/docs/", false, "GET", F, "/docs", static_content},
    Route{"/docs/", true, "GET", F, "/docs/{file}", static_content},
    Route{"/", false, "GET", F, "/", static_content},
};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// The route for `path` and the path's tail after a prefix route's prefix; null if none.
const Route* find_route(std::string_view path, std::string_view& tail) {
  for (const Route& r : kRoutes) {
    if (r.prefix) {
      // A prefix route takes one more path segment, never a deeper path or an empty one.
      if (path.size() > r.path.size() && path.starts_with(r.path) &&
          path.find('/', r.path.size()) == std::string_view::npos) {
        tail = path.substr(r.path.size());
        return &r;
      }
    } else if (path == r.path) {
      tail = {};
      return &r;
    }
  }
  return nullptr;
}

bool allows(const Route& route, beast_http::verb method) {
  if (method == beast_http::verb::head) method = beast_http::verb::get;
  std::string_view name = beast_http::to_string(method);
  std::string_view allow = route.allow;
  while (!allow.empty()) {
    auto comma = allow.find(',');
    std::string_view m = allow.substr(0, comma);
    while (m.starts_with(' ')) m.remove_prefix(1);
    if (m == name) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
  }
  return false;
}

ErrorShape shape_of(std::string_view path) {
  return path.starts_with("/v1/") ? ErrorShape::openai : ErrorShape::fastapi;
}

Response error_in(ErrorShape shape, const Error& e, const std::string& request_id) {
  switch (shape) {
    case ErrorShape::openai:
      return openai_error_response(e);
    case ErrorShape::deepgram:
      return deepgram_error_response(e, request_id);
    case ErrorShape::fastapi:
      break;
  }
  return error_response(e);
}

Response method_not_allowed(ErrorShape shape, std::string_view allow,
                            const std::string& request_id) {
  if (shape == ErrorShape::openai) return openai_method_not_allowed(allow);
  if (shape == ErrorShape::deepgram) {
    Response res = deepgram_error_response(Error(ErrorKind::invalid_request, "Method Not Allowed"),
                                           request_id);
    res.result(bhttp_status::method_not_allowed);
    res.set(beast_http::field::allow, allow);
    return res;
  }
  Response res = detail_response(bhttp_status::method_not_allowed, "Method Not Allowed");
  res.set(beast_http::field::allow, allow);
  return res;
}

Response route_not_found(ErrorShape shape, std::string_view path) {
  if (shape == ErrorShape::openai) return openai_not_found(std::string(path));
  return detail_response(bhttp_status::not_found, "Not Found");
}

// The answer to a browser's preflight: what a page of an allowed origin may send; 403 in the
// route's error shape for any other origin.
Response preflight(ErrorShape shape, bool allowed, const std::string& request_id) {
  if (!allowed) {
    return error_in(
        shape, Error(ErrorKind::forbidden, "this origin may not call the API (CORS_ALLOW_ORIGINS)"),
        request_id);
  }
  Response res{bhttp_status::no_content, 11};
  res.set(beast_http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
  res.set(beast_http::field::access_control_allow_headers,
          "Authorization, Content-Type, X-Request-Id, OpenAI-Organization, OpenAI-Project");
  res.set(beast_http::field::access_control_max_age, "600");
  res.prepare_payload();
  return res;
}

// Who the caller is, when keys are required: throws unauthorized or, past the key's share of
// connections, rate_limited.
void authenticate(ApiContext& ctx, const RequestParser::value_type& req, Exchange& ex,
                  std::string_view path) {
  if (!ctx.access.keys_required() || Access::is_open_path(path)) return;
  std::string authorization(req[beast_http::field::authorization]);
  // Deepgram's clients send `Token <key>`.
  if (path == "/v1/listen" && authorization.size() > 6 &&
      (authorization.starts_with("Token ") || authorization.starts_with("token "))) {
    authorization = "Bearer " + authorization.substr(6);
  }
  auto who = ctx.access.identify(authorization);
  // A browser cannot set headers on a WebSocket: it offers the key as a subprotocol (OpenAI's
  // `openai-insecure-api-key.<key>`, Deepgram's `token, <key>`).
  if (!who && path == kRealtimePath) {
    if (auto key = subprotocol_api_key(req[beast_http::field::sec_websocket_protocol])) {
      who = ctx.access.identify("Bearer " + *key);
    }
  }
  if (!who && path == "/v1/listen") {
    std::string_view protocols = req[beast_http::field::sec_websocket_protocol];
    if (protocols.starts_with("token,")) {
      std::string key = strip(protocols.substr(6));
      if (!key.empty() && key.find(',') == std::string::npos) {
        who = ctx.access.identify("Bearer " + key);
      }
    }
  }
  if (!who) {
    throw unauthorized(
        "a valid API key is required: send it as 'Authorization: Bearer <key>' (API_KEY)");
  }
  ex.client = *who;
  if (ex.claim_client && !ex.claim_client(*who)) {
    ex.close_connection = true;
    throw Error(ErrorKind::rate_limited,
                "this API key has too many connections open (MAX_CONNECTIONS_PER_CLIENT)")
        .set_retry_after(1);
  }
}

asio::awaitable<Response> answer(ApiContext& ctx, const RequestParser::value_type& req,
                                 Exchange& ex) {
  const std::string_view path = path_of(req.target());
  std::string_view tail;
  const Route* route = find_route(path, tail);
  const ErrorShape shape = route ? route->shape : shape_of(path);
  try {
    authenticate(ctx, req, ex, path);
    if (!route) co_return route_not_found(shape, path);
    if (!allows(*route, req.method())) {
      co_return method_not_allowed(shape, route->allow, ex.request_id);
    }
    co_return co_await route->handler(ctx, req, ex, tail);
  } catch (const Error& e) {
    LogScope scope({.request_id = ex.request_id});
    if (e.kind() == ErrorKind::internal) {
      spdlog::error("{} {}: {}", std::string(req.method_string()), std::string(req.target()),
                    e.what());
    } else {
      spdlog::info("{} {}: {} ({})", std::string(req.method_string()), std::string(req.target()),
                   e.what(), to_string(e.kind()));
    }
    co_return error_in(shape, e, ex.request_id);
  } catch (const std::exception& e) {
    LogScope scope({.request_id = ex.request_id});
    spdlog::error("{} {}: internal error: {}", std::string(req.method_string()),
                  std::string(req.target()), e.what());
    co_return error_in(shape, internal_error("Internal Server Error"), ex.request_id);
  }
}

}  // namespace

std::string route_label(std::string_view path) {
  std::string_view tail;
  const Route* route = find_route(path, tail);
  return route ? std::string(route->label) : std::string("other");
}

asio::awaitable<Response> handle_request(ApiContext& ctx, const RequestParser::value_type& req,
                                         Exchange& ex) {
  const std::string_view path = path_of(req.target());
  auto started = std::chrono::steady_clock::now();
  ex.request_id = checked_request_id(req["X-Request-Id"]);
  if (ex.request_id.empty()) ex.request_id = make_uuid();
  std::string origin(req[beast_http::field::origin]);
  const bool cors =
      !origin.empty() && ctx.access.cors_enabled() && ctx.access.origin_allowed(origin);
  if (cors) ex.allow_origin = origin;
  Response res;
  if (req.method() == beast_http::verb::options && !origin.empty() &&
      req.count(beast_http::field::access_control_request_method)) {
    res = preflight(shape_of(path), cors, ex.request_id);
  } else {
    res = co_await answer(ctx, req, ex);
  }
  if (cors) {
    res.set(beast_http::field::access_control_allow_origin, origin);
    res.set(beast_http::field::access_control_expose_headers, "Retry-After, X-Request-Id");
    res.set(beast_http::field::vary, "Origin");
  }
  // A streamed response (SSE) was written by its handler: 200.
  int status = ex.responded ? 200 : static_cast<int>(res.result_int());
  res.set("X-Request-Id", ex.request_id);
  std::string route = route_label(path);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics().http_requests.with({route, std::to_string(status)}).add();
  metrics().http_duration.with({route}).observe(seconds);
  {
    // One access line per request; probes only at debug level.
    LogScope scope({.request_id = ex.request_id,
                    .route = route,
                    .status = status,
                    .duration_ms = seconds * 1000});
    auto level = route == "/health" || route == "/metrics" || route == "/ready"
                     ? spdlog::level::debug
                     : spdlog::level::info;
    spdlog::log(level, "{} {} {} {:.1f} ms", std::string(req.method_string()), route, status,
                seconds * 1000);
  }
  co_return res;
}

std::string query_parameter(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%') {
      const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw invalid_request("a malformed %-escape in the query string");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> query_parameters(std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      if (out.size() >= 128) throw invalid_request("more than 128 query parameters");
      auto eq = pair.find('=');
      out.emplace_back(percent_decoded(pair.substr(0, eq)),
                       eq == std::string_view::npos ? "" : percent_decoded(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace sra::http
