#include "http/api.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <optional>

#include "audio/decoder.h"
#include "core/errors.h"
#include "core/log_context.h"
#include "core/uuid.h"
#include "http/connection_watch.h"
#include "http/form.h"
#include "http/formats.h"
#include "http/openai_api.h"
#include "http/realtime.h"
#include "http/static_routes.h"
#include "service/builtin_parts.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
using bhttp_status = beast_http::status;

namespace {

constexpr std::size_t kProbeBytes = 1024 * 1024;  // start of an upload checked for audio
constexpr std::size_t kFlushBytes = 1024 * 1024;  // async upload pieces sent to storage

asio::awaitable<Response> sync_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                          Exchange& ex) {
  // Admitted before the body is read: a full queue costs the client no upload.
  std::string client = admit_client(ctx, ex);
  auto ticket = admit(ctx);
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  FormCollector form(max_upload);
  co_await read_form(req, ex.body, form, max_upload);
  if (!form.has_file()) co_return missing_field_response("file");

  std::string audio = std::move(form.file_data());
  TranscriptionJob job;
  job.client = client;
  job.request_id = ex.request_id;
  job.audio = audio;
  job.options = form.fields();
  CancelToken cancel;
  job.cancel = &cancel;
  Transcription t =
      co_await run_while_connected(ctx.inference.executor(), ex.stream, cancel,
                                   [&ctx, &job] { return ctx.service.transcribe(job); });
  co_return json_response(bhttp_status::ok, json::object{{"transcription", t.text}});
}

// The async route's work; `upload` is the caller's, so that an abandoned upload is aborted on the
// blocking pool (an S3 or GCS abort is a network call), never on the I/O thread. The submission
// is admitted into the backlog before its body is read, and its bytes and audio are counted
// against the backlog's bounds as they become known (see service/backlog_gate.h).
asio::awaitable<Response> store_and_enqueue(ApiContext& ctx, const RequestParser::value_type& req,
                                            Exchange& ex, std::unique_ptr<FileUpload>& upload) {
  std::string client = admit_client(ctx, ex);
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  std::string boundary = form_boundary(req);
  check_declared_length(req, max_upload);
  auto executor = ctx.blocking.get_executor();
  std::optional<BacklogGate::Admission> admission;
  co_await run_on(executor, [&] {
    admission.emplace(ctx.service.backlog().admit());
    return 0;
  });
  FormCollector form(max_upload);
  MultipartParser parser(boundary, form);
  std::string prefix;  // the start of the file, checked for audio before the task is created
  FileStorage* storage = nullptr;

  auto flush = [&]() -> asio::awaitable<void> {
    std::string& data = form.file_data();
    if (data.empty()) co_return;
    if (prefix.size() < kProbeBytes) {
      prefix.append(data, 0, std::min(data.size(), kProbeBytes - prefix.size()));
    }
    std::string piece = std::move(data);
    data.clear();
    co_await run_on(executor, [&] {
      if (!storage) storage = &ctx.service.parts().storage();
      admission->add_bytes(piece.size());
      if (!upload) upload = storage->begin_upload();
      upload->write(piece);
      return 0;
    });
  };

  while (auto piece = co_await ex.body.next()) {
    parser.feed(*piece);
    if (form.file_data().size() >= kFlushBytes) co_await flush();
  }
  parser.finish();
  if (!form.has_file()) co_return missing_field_response("file");
  // Options out of their bounds are refused now, not by a worker later (the upload is dropped).
  for (const auto& [field, value] : form.fields()) {
    if (const OptionSpec* spec = find_option(builtin_request_options(), field)) {
      parse_option(*spec, value);
    }
  }
  co_await flush();

  auto probed = co_await run_on(executor, [&] {
    auto p = audio::inspect(prefix, form.file_bytes());
    if (!p.refusal) admission->set_audio_seconds(p.seconds);
    return p;
  });
  if (probed.refusal) {
    throw unsupported_media("the upload is not audio that can be decoded: " + *probed.refusal);
  }
  ctx.service.clients().charge_audio(client, probed.seconds);
  json::object fields;
  for (auto& [k, v] : form.fields()) fields[k] = v;
  std::string options = json::serialize(fields);
  std::string task_id = co_await run_on(executor, [&] {
    std::string file_id = upload->commit();
    try {
      std::string id = ctx.service.parts().bus().create_task(
          {file_id, options, admission->audio_seconds(), admission->bytes(), ex.request_id});
      admission->commit();
      metrics().async_submitted.with({ctx.service.parts().bus_name()}).add();
      return id;
    } catch (...) {
      storage->remove(file_id);  // no task, so no file left behind
      throw;
    }
  });
  upload.reset();  // committed
  co_return json_response(bhttp_status::ok, json::object{{"task_id", task_id}});
}

asio::awaitable<Response> async_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                           Exchange& ex) {
  std::unique_ptr<FileUpload> upload;
  std::exception_ptr failure;
  Response res;
  try {
    res = co_await store_and_enqueue(ctx, req, ex, upload);
  } catch (...) {
    failure = std::current_exception();
  }
  if (upload) {
    co_await run_on(ctx.blocking.get_executor(), [&upload] {
      upload.reset();  // aborts the unfinished upload
      return 0;
    });
  }
  if (failure) std::rethrow_exception(failure);
  co_return res;
}

// The UTC time `seconds` from now, as RFC 3339 ("2026-12-03T18:40:05Z").
std::string utc_timestamp_in(double seconds) {
  auto at = std::chrono::system_clock::now() +
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::duration<double>(std::min(seconds, 1e9)));
  std::time_t t = std::chrono::system_clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// A pending task's place: `position` (1: the next to start) and `estimated_start` (UTC, from the
// measured drain rate), when the bus can tell.
asio::awaitable<void> add_queue_place(ApiContext& ctx, const std::string& task_id,
                                      json::object& body) {
  auto [ahead, start_in] = co_await run_on(ctx.blocking.get_executor(), [&] {
    std::optional<double> seconds;
    auto position = ctx.service.parts().bus().queue_position(task_id);
    if (position) seconds = ctx.service.backlog().start_in_seconds(*position);
    return std::pair{position, seconds};
  });
  if (!ahead) co_return;
  body["position"] = *ahead + 1;
  if (start_in) body["estimated_start"] = utc_timestamp_in(*start_in);
}

asio::awaitable<Response> task_result(ApiContext& ctx, const RequestParser::value_type& req,
                                      const std::string& task_id) {
  std::string format_name = query_parameter(req.target(), "response_format");
  std::optional<ResponseFormat> format;
  if (!format_name.empty()) {
    format = parse_response_format(format_name);
    if (!format) {
      throw invalid_request("response_format must be one of json, text, srt, vtt, verbose_json");
    }
  }
  auto result = co_await run_on(ctx.blocking.get_executor(),
                                [&] { return ctx.service.parts().bus().get_task_result(task_id); });
  if (!result) throw not_found("Task not found");
  // A finished task in the format asked for; otherwise the seed's status object.
  if (format && result->status == TaskStatus::success && result->transcription) {
    RenderOptions options;
    options.subtitles = parse_subtitle_options([&](const std::string& name) {
      std::string value = query_parameter(req.target(), name);
      return value.empty() ? std::nullopt : std::optional<std::string>(value);
    });
    for (const auto& s : result->transcription->segments) options.words |= !s.words.empty();
    Response res{bhttp_status::ok, 11};
    res.set(beast_http::field::content_type, content_type(*format));
    res.body() = render(*result->transcription, *format, "transcribe", options);
    res.prepare_payload();
    co_return res;
  }
  json::object body{
      {"status", to_string(result->status)},
      {"transcription",
       result->transcription ? json::value(result->transcription->text) : json::value(nullptr)}};
  if (result->error) body["error"] = *result->error;
  if (result->cancelled) body["cancelled"] = true;
  if (result->progress) {
    // Running: the status stays PENDING for clients of the Python project.
    json::value progress = to_json(*result->progress);
    body["progress"] = progress.as_object()["progress"];
    body["segments"] = std::move(progress.as_object()["segments"]);
  } else if (result->status == TaskStatus::pending) {
    co_await add_queue_place(ctx, task_id, body);
  }
  co_return json_response(bhttp_status::ok, body);
}

// DELETE: cancels a task that has not finished. 200 when it had not started (it never will),
// 202 when a worker runs it (it stops within about a second), 409 when it has finished.
asio::awaitable<Response> cancel_task(ApiContext& ctx, const std::string& task_id) {
  auto outcome = co_await run_on(ctx.blocking.get_executor(), [&] {
    std::string file;
    auto o = ctx.service.parts().bus().cancel_task(task_id, &file);
    if (o == CancelOutcome::cancelled && !file.empty()) {
      ctx.service.after_task(TaskRequest{file, "{}"});  // its audio, as after any task
    }
    return o;
  });
  if (!outcome) throw not_found("Task not found");
  if (*outcome == CancelOutcome::finished) throw conflict("the task has already finished");
  bool running = *outcome == CancelOutcome::cancelling;
  spdlog::info("task {}: {}", task_id, running ? "cancellation requested" : "cancelled");
  co_return json_response(
      running ? bhttp_status::accepted : bhttp_status::ok,
      json::object{{"task_id", task_id}, {"state", running ? "cancelling" : "cancelled"}});
}

// Ready when the storage and the bus can serve: builds them if needed and asks each.
asio::awaitable<Response> readiness(ApiContext& ctx) {
  std::string problem = co_await run_on(ctx.blocking.get_executor(), [&]() -> std::string {
    try {
      ctx.service.parts().storage().check_ready();
      ctx.service.parts().bus().check_ready();
      // Past the backlog's bound, a load balancer should send async work elsewhere.
      return ctx.service.backlog().over_bound().value_or("");
    } catch (const Error& e) {
      return e.what();
    }
  });
  if (problem.empty()) co_return json_response(bhttp_status::ok, json::object{{"status", "ready"}});
  Response res = detail_response(bhttp_status::service_unavailable, problem);
  res.set(beast_http::field::retry_after, "5");
  co_return res;
}

Response method_not_allowed(const char* allow) {
  Response res = detail_response(bhttp_status::method_not_allowed, "Method Not Allowed");
  res.set(beast_http::field::allow, allow);
  return res;
}

bool is_openai_path(std::string_view path) {
  return path.starts_with("/v1/");
}

asio::awaitable<Response> route(ApiContext& ctx, const RequestParser::value_type& req,
                                Exchange& ex) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  auto method = req.method();
  const bool get = method == beast_http::verb::get || method == beast_http::verb::head;
  const bool post = method == beast_http::verb::post;
  constexpr std::string_view kTaskPrefix = "/async/v1/transcribe/";
  constexpr std::string_view kModelPrefix = "/v1/models/";

  if (path == "/health") {
    if (!get) co_return method_not_allowed("GET");
    co_return json_response(bhttp_status::ok, json::object{{"status", "ok"}});
  }
  if (path == "/ready") {
    if (!get) co_return method_not_allowed("GET");
    co_return co_await readiness(ctx);
  }
  if (path == "/metrics") {
    if (!get) co_return method_not_allowed("GET");
    // Rendered on the blocking pool: the backlog gauges may ask the broker.
    std::string text =
        co_await run_on(ctx.blocking.get_executor(), [] { return metrics().render(); });
    Response res{bhttp_status::ok, 11};
    res.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = std::move(text);
    res.prepare_payload();
    co_return res;
  }
  if (path == "/sync/v1/transcribe") {
    if (!post) co_return method_not_allowed("POST");
    co_return co_await sync_transcribe(ctx, req, ex);
  }
  if (path == "/async/v1/transcribe") {
    if (!post) co_return method_not_allowed("POST");
    co_return co_await async_transcribe(ctx, req, ex);
  }
  if (path.starts_with(kTaskPrefix) && path.size() > kTaskPrefix.size() &&
      path.find('/', kTaskPrefix.size()) == std::string_view::npos) {
    std::string task_id(path.substr(kTaskPrefix.size()));
    if (method == beast_http::verb::delete_) co_return co_await cancel_task(ctx, task_id);
    if (!get) co_return method_not_allowed("GET, DELETE");
    co_return co_await task_result(ctx, req, task_id);
  }
  if (path == "/v1/audio/transcriptions" || path == "/v1/audio/translations") {
    if (!post) co_return openai_method_not_allowed("POST");
    co_return co_await openai_transcribe(ctx, req, ex, path == "/v1/audio/translations");
  }
  if (path == kRealtimePath) {
    if (!get) co_return openai_method_not_allowed("GET");
    co_return co_await realtime_route(ctx, req, ex);
  }
  if (path == "/v1/audio/language") {
    if (!post) co_return openai_method_not_allowed("POST");
    co_return co_await openai_detect_language(ctx, req, ex);
  }
  if (path == "/v1/models") {
    if (!get) co_return openai_method_not_allowed("GET");
    co_return openai_models(ctx);
  }
  if (path.starts_with(kModelPrefix) && path.size() > kModelPrefix.size()) {
    if (!get) co_return openai_method_not_allowed("GET");
    co_return openai_model(ctx, std::string(path.substr(kModelPrefix.size())));
  }
  if (auto res = static_route(ctx, path)) {
    if (!get) co_return method_not_allowed("GET");
    co_return std::move(*res);
  }
  if (is_openai_path(path)) co_return openai_not_found(std::string(path));
  co_return detail_response(bhttp_status::not_found, "Not Found");
}

}  // namespace

namespace {

// The route a request took, as a metrics label: a closed set (ids and unknown paths folded).
std::string route_label(std::string_view path) {
  static const char* const kRoutes[] = {"/health",
                                        "/ready",
                                        "/metrics",
                                        "/sync/v1/transcribe",
                                        "/async/v1/transcribe",
                                        "/v1/audio/transcriptions",
                                        "/v1/audio/translations",
                                        "/v1/audio/language",
                                        "/v1/realtime",
                                        "/v1/models",
                                        "/openapi.json",
                                        "/docs",
                                        "/"};
  for (const char* r : kRoutes) {
    if (path == r) return r;
  }
  if (path.starts_with("/async/v1/transcribe/")) return "/async/v1/transcribe/{task_id}";
  if (path.starts_with("/v1/models/")) return "/v1/models/{model}";
  if (path.starts_with("/docs/")) return "/docs/{file}";
  return "other";
}

// The answer to a browser's preflight: what a page of an allowed origin may send.
Response preflight(bool allowed) {
  if (!allowed) {
    return detail_response(bhttp_status::forbidden,
                           "this origin may not call the API (CORS_ALLOW_ORIGINS)");
  }
  Response res{bhttp_status::no_content, 11};
  res.set(beast_http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
  res.set(beast_http::field::access_control_allow_headers,
          "Authorization, Content-Type, X-Request-Id, OpenAI-Organization, OpenAI-Project");
  res.set(beast_http::field::access_control_max_age, "600");
  res.prepare_payload();
  return res;
}

asio::awaitable<Response> answer(ApiContext& ctx, const RequestParser::value_type& req,
                                 Exchange& ex, std::string_view path, bool openai) {
  try {
    if (ctx.access.keys_required() && !Access::is_open_path(path)) {
      auto who = ctx.access.identify(req[beast_http::field::authorization]);
      // A browser cannot set headers on a WebSocket: it offers the key as a subprotocol.
      if (!who && path == kRealtimePath) {
        if (auto key = subprotocol_api_key(req[beast_http::field::sec_websocket_protocol])) {
          who = ctx.access.identify("Bearer " + *key);
        }
      }
      if (!who) {
        throw unauthorized(
            "a valid API key is required: send it as 'Authorization: Bearer <key>' (API_KEY)");
      }
      ex.client = *who;
    }
    co_return co_await route(ctx, req, ex);
  } catch (const Error& e) {
    LogScope scope({.request_id = ex.request_id});
    if (e.kind() == ErrorKind::internal) {
      spdlog::error("{} {}: {}", std::string(req.method_string()), std::string(req.target()),
                    e.what());
    } else {
      spdlog::info("{} {}: {} ({})", std::string(req.method_string()), std::string(req.target()),
                   e.what(), to_string(e.kind()));
    }
    co_return openai ? openai_error_response(e) : error_response(e);
  } catch (const std::exception& e) {
    LogScope scope({.request_id = ex.request_id});
    spdlog::error("{} {}: internal error: {}", std::string(req.method_string()),
                  std::string(req.target()), e.what());
    co_return openai
        ? openai_error_response(internal_error("Internal Server Error"))
        : detail_response(bhttp_status::internal_server_error, "Internal Server Error");
  }
}

}  // namespace

asio::awaitable<Response> handle_request(ApiContext& ctx, const RequestParser::value_type& req,
                                         Exchange& ex) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
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
    res = preflight(cors);
  } else {
    res = co_await answer(ctx, req, ex, path, is_openai_path(path));
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

}  // namespace sra::http
