#include "http/python_project_api.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <optional>

#include "audio/decoder.h"
#include "core/errors.h"
#include "http/dispatch.h"
#include "http/form.h"
#include "http/formats.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
using bhttp_status = beast_http::status;

namespace {

constexpr std::size_t kProbeBytes = 1024 * 1024;  // start of an upload checked for audio
constexpr std::size_t kFlushBytes = 1024 * 1024;  // async upload pieces sent to storage

const UploadRoute& python_project_upload() {
  static const UploadRoute route{.option_tables = transcription_option_tables()};
  return route;
}

// The async route also takes `callback_url`, the webhook of its task (see service/webhooks.h).
const UploadRoute& python_project_async_upload() {
  static const UploadRoute route{.option_tables = transcription_option_tables(),
                                 .own_fields = {"callback_url"}};
  return route;
}

}  // namespace

asio::awaitable<Response> sync_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                          Exchange& ex, std::string_view) {
  Upload upload = co_await accept_upload(ctx, req, ex, python_project_upload());
  auto run = run_for(upload, ex);
  start(ctx, run);
  co_await wait(run, &ex);
  co_return json_response(bhttp_status::ok,
                          json::object{{"transcription", run->transcription.text}});
}

namespace {

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
  const UploadRoute& route = python_project_async_upload();
  auto executor = ctx.blocking.get_executor();
  std::optional<BacklogGate::Admission> admission;
  co_await run_on(executor, [&] {
    admission.emplace(ctx.service.backlog().admit());
    return 0;
  });
  // The file goes to storage a piece at a time; only the declared fields are kept (and stored
  // with the task), the others skipped as FastAPI skips them.
  FormCollector form(
      FormLimits{.max_file_bytes = max_upload},
      FieldPolicy{.known = [&route](std::string_view f) { return declares_field(route, f); }});
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
  if (!form.has_file()) throw missing_field("file", "Field required");
  // Options out of their bounds are refused now, not by a worker later (the upload is dropped).
  const std::map<std::string, std::string> form_fields = fold_member_fields(route, form.fields());
  for (const auto& [field, value] : form_fields) {
    for (const auto* table : route.option_tables) {
      if (const OptionSpec* spec = find_option(*table, field)) parse_option(*spec, value);
    }
  }
  co_await flush();
  // A webhook that cannot be sent is refused now, not found out when the task ends.
  if (auto callback = form_fields.find("callback_url"); callback != form_fields.end()) {
    co_await check_callback(ctx, callback->second, "callback_url");
  }

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
  for (auto& [k, v] : form_fields) fields[k] = v;
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

}  // namespace

asio::awaitable<Response> async_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                           Exchange& ex, std::string_view) {
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

namespace {

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
      throw invalid_request(
          "response_format must be one of json, text, srt, vtt, verbose_json, diarized_json, "
          "rttm");
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
    const bool needs_speakers =
        *format == ResponseFormat::diarized_json || *format == ResponseFormat::rttm;
    if (needs_speakers && !result->transcription->diarized) {
      throw invalid_request("response_format " + format_name +
                            " needs speakers: submit the task with diarize=true");
    }
    Response res{bhttp_status::ok, 11};
    res.set(beast_http::field::content_type, content_type(*format));
    res.body() = render(*result->transcription, *format,
                        *format == ResponseFormat::rttm ? task_id : "transcribe", options);
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

}  // namespace

asio::awaitable<Response> task_route(ApiContext& ctx, const RequestParser::value_type& req,
                                     Exchange& ex, std::string_view task_id) {
  if (req.method() == beast_http::verb::delete_) {
    co_return co_await cancel_task(ctx, std::string(task_id));
  }
  co_return co_await task_result(ctx, req, std::string(task_id));
}

}  // namespace sra::http
