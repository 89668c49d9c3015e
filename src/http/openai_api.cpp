#include "http/openai_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <mutex>

#include "audio/decoder.h"
#include "core/languages.h"
#include "core/text.h"
#include "http/api.h"
#include "http/connection_watch.h"
#include "http/form.h"
#include "http/formats.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using bhttp::status;

namespace {

Response openai_error(status code, const std::string& message, const std::string& type,
                      const std::optional<std::string>& param,
                      const std::optional<std::string>& error_code) {
  json::object error{{"message", message},
                     {"type", type},
                     {"param", param ? json::value(*param) : json::value(nullptr)},
                     {"code", error_code ? json::value(*error_code) : json::value(nullptr)}};
  return json_response(code, json::object{{"error", std::move(error)}});
}

Error field_error(const std::string& field, const std::string& message) {
  return invalid_field(field, message);
}

struct OpenAIRequest {
  std::string model;
  ResponseFormat format = ResponseFormat::json;
  bool stream = false;
  RenderOptions render;
  TranscribeOptions options;
};

OpenAIRequest parse_fields(const std::map<std::string, std::string>& fields, bool translate) {
  OpenAIRequest r;
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = fields.find(name);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
  r.model = field("model").value_or("");
  if (r.model.empty()) throw field_error("model", "you must provide a model parameter");
  if (auto f = field("response_format")) {
    auto parsed = parse_response_format(*f);
    if (!parsed) {
      throw field_error("response_format", "'" + *f +
                                               "' is not one of ['json', 'text', 'srt', "
                                               "'verbose_json', 'vtt']");
    }
    r.format = *parsed;
  }
  if (auto s = field("stream")) {
    if (*s == "true" || *s == "True" || *s == "1") {
      r.stream = true;
    } else if (!(*s == "false" || *s == "False" || *s == "0" || s->empty())) {
      throw field_error("stream", "expected a boolean, got '" + *s + "'");
    }
  }
  // Granularities (repeated fields arrive comma-joined): word times cost a second decoder pass
  // per window, so they are computed only when asked for (or needed by the subtitle options).
  bool want_words = false, want_segments = false;
  if (auto g = field("timestamp_granularities[]")) {
    std::string list = *g + ",";
    for (std::size_t at = 0; at < list.size();) {
      std::size_t comma = list.find(',', at);
      std::string item = strip(list.substr(at, comma - at));
      at = comma + 1;
      if (item.empty()) continue;
      if (item == "word") {
        want_words = true;
      } else if (item == "segment") {
        want_segments = true;
      } else {
        throw field_error("timestamp_granularities[]",
                          "'" + item + "' is not one of ['word', 'segment']");
      }
    }
  }
  // As OpenAI: segments unless only words were asked for.
  r.render.words = want_words;
  r.render.segments = want_segments || !want_words;
  r.render.subtitles =
      parse_subtitle_options([&](const std::string& name) { return field(name.c_str()); });
  // Everything else goes to the model: the OpenAI fields by their model names, and the model's
  // own options (beam_size, ...) as extensions.
  for (const auto& [k, v] : fields) {
    if (k == "model" || k == "response_format" || k == "stream" || k == "temperature" ||
        k == "timestamp_granularities[]" || find_option(subtitle_option_specs(), k)) {
      continue;
    }
    r.options.values[k] = v;
  }
  if (want_words || r.render.subtitles.any()) r.options.values["word_timestamps"] = "true";
  if (auto t = field("temperature")) {
    char* end = nullptr;
    double value = std::strtod(t->c_str(), &end);
    if (t->empty() || end != t->c_str() + t->size() || !(value >= 0 && value <= 1)) {
      throw field_error("temperature", "expected a number between 0 and 1, got '" + *t + "'");
    }
    // As OpenAI documents: 0 lets the model raise the temperature by itself when it needs to.
    if (value > 0) r.options.values["temperature"] = *t;
  }
  if (translate) {
    r.options.values["task"] = "translate";
    r.options.values.erase("language");
  }
  return r;
}

std::string sse_event(const json::value& v) {
  return "data: " + json::serialize(v) + "\n\n";
}

// Built outside the coroutine: GCC 12 mishandles string literals in braced lists inside one.
std::string delta_event(const std::string& delta) {
  return sse_event(json::object{{"type", "transcript.text.delta"}, {"delta", delta}});
}
std::string done_event(const std::string& text) {
  return sse_event(json::object{{"type", "transcript.text.done"}, {"text", text}});
}
std::string error_event(const std::string& message, const std::string& type) {
  json::object error{{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  return sse_event(json::object{{"type", "error"}, {"error", std::move(error)}});
}

// The shared state of a streamed transcription between the inference thread and the connection.
// The inference owns what it uses (through this state), so the connection may go away first.
struct StreamState {
  std::mutex mutex;
  std::deque<std::string> deltas;
  bool done = false;
  std::optional<Transcription> result;
  std::exception_ptr error;
  std::string audio;
  TranscriptionJob job;
  CancelToken cancel;
};

asio::awaitable<void> write_chunk(boost::beast::tcp_stream& stream, const std::string& data) {
  stream.expires_after(std::chrono::seconds(60));
  co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(data)), asio::use_awaitable);
}

// `state` and `ticket` are the caller's (taken by reference: see run_while_connected on GCC 12
// and temporaries of co_await expressions); the job gets its own copies.
asio::awaitable<void> stream_transcription(ApiContext& ctx, Exchange& ex,
                                           const std::shared_ptr<StreamState>& state,
                                           std::unique_ptr<InferencePool::Ticket>& ticket) {
  auto executor = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(executor);
  auto notify = [wake] { asio::post(wake->get_executor(), [wake] { wake->cancel(); }); };
  state->job.audio = state->audio;
  state->job.cancel = &state->cancel;
  state->job.on_segment = [raw = state.get(), notify](const Segment& s) {
    {
      std::lock_guard lock(raw->mutex);
      raw->deltas.push_back(s.text);
    }
    notify();
  };
  asio::post(ctx.inference.executor(),
             [state, notify, &service = ctx.service,
              ticket = std::shared_ptr<InferencePool::Ticket>(std::move(ticket))] {
               try {
                 Transcription t = service.transcribe(state->job);
                 std::lock_guard lock(state->mutex);
                 state->result = std::move(t);
               } catch (...) {
                 std::lock_guard lock(state->mutex);
                 state->error = std::current_exception();
               }
               {
                 std::lock_guard lock(state->mutex);
                 state->done = true;
               }
               notify();
             });
  // Whatever ends this coroutine early (the client gone, a failed write) cancels the job.
  struct CancelOnExit {
    std::shared_ptr<StreamState> state;
    ~CancelOnExit() {
      std::lock_guard lock(state->mutex);
      if (!state->done) state->cancel.cancel("the client closed the connection");
    }
  } cancel_on_exit{state};

  bhttp::response<bhttp::empty_body> head{status::ok, 11};
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-cache");
  head.set(bhttp::field::server, "speech-recognition-api");
  head.set("X-Request-Id", ex.request_id);
  if (!ex.allow_origin.empty()) {
    head.set(bhttp::field::access_control_allow_origin, ex.allow_origin);
    head.set(bhttp::field::vary, "Origin");
  }
  head.chunked(true);
  head.keep_alive(ex.keep_alive);
  bhttp::response_serializer<bhttp::empty_body> serializer{head};
  ex.responded = true;
  ex.stream.expires_after(std::chrono::seconds(60));
  co_await bhttp::async_write_header(ex.stream, serializer, asio::use_awaitable);

  std::string streamed;
  while (true) {
    std::deque<std::string> deltas;
    bool done;
    {
      std::lock_guard lock(state->mutex);
      deltas.swap(state->deltas);
      done = state->done;
    }
    for (const auto& d : deltas) {
      streamed += d;
      co_await write_chunk(ex.stream, delta_event(d));
    }
    if (done) break;
    // Woken by the inference thread; also every second, so that neither a missed wake-up nor a
    // client that left unnoticed can keep this loop waiting.
    if (peer_closed(ex.stream.socket())) {
      spdlog::info("streamed transcription: the client closed the connection; job cancelled");
      ex.keep_alive = false;
      co_return;
    }
    wake->expires_after(std::chrono::seconds(1));
    co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (state->error) {
    std::string message = "Internal Server Error";
    std::string type = "server_error";
    try {
      std::rethrow_exception(state->error);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::internal) {
        spdlog::error("streamed transcription: {}", e.what());
      } else {
        message = e.what();
      }
      if (e.kind() != ErrorKind::internal && e.kind() != ErrorKind::unavailable &&
          e.kind() != ErrorKind::config && e.kind() != ErrorKind::deadline_exceeded)
        type = "invalid_request_error";
    } catch (const std::exception& e) {
      spdlog::error("streamed transcription: {}", e.what());
    }
    co_await write_chunk(ex.stream, error_event(message, type));
  } else {
    co_await write_chunk(ex.stream, done_event(state->result->text));
  }
  ex.stream.expires_after(std::chrono::seconds(60));
  co_await asio::async_write(ex.stream, bhttp::make_chunk_last(), asio::use_awaitable);
}

}  // namespace

Response openai_error_response(const Error& e) {
  std::string message = e.what();
  std::optional<std::string> param = e.field();
  switch (e.kind()) {
    case ErrorKind::invalid_request:
      return openai_error(status::bad_request, message, "invalid_request_error", param,
                          std::nullopt);
    case ErrorKind::unsupported_media:
      return openai_error(status::bad_request,
                          "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', "
                          "'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'] (" +
                              message + ")",
                          "invalid_request_error", std::string("file"),
                          std::string("invalid_file_format"));
    case ErrorKind::too_large:
      return openai_error(status::payload_too_large, message, "invalid_request_error",
                          std::string("file"), std::string("file_too_large"));
    case ErrorKind::not_found:
      return openai_error(status::not_found, message, "invalid_request_error", param, std::nullopt);
    case ErrorKind::unavailable:
    case ErrorKind::config: {
      Response res = openai_error(status::service_unavailable, message, "server_error",
                                  std::nullopt, std::nullopt);
      set_retry_after(res, e);
      return res;
    }
    case ErrorKind::unauthorized: {
      // OpenAI's own shape for a missing or wrong key.
      Response res = openai_error(status::unauthorized, message, "invalid_request_error",
                                  std::nullopt, std::string("invalid_api_key"));
      res.set(bhttp::field::www_authenticate, "Bearer");
      return res;
    }
    case ErrorKind::rate_limited: {
      // OpenAI's own shape for a rate limit.
      Response res = openai_error(status::too_many_requests, message, "requests", std::nullopt,
                                  std::string("rate_limit_exceeded"));
      set_retry_after(res, e);
      return res;
    }
    case ErrorKind::request_timeout:
      return openai_error(status::request_timeout, message, "invalid_request_error", std::nullopt,
                          std::string("timeout"));
    case ErrorKind::cancelled:
      return openai_error(kClientClosedRequest, message, "invalid_request_error", std::nullopt,
                          std::nullopt);
    case ErrorKind::deadline_exceeded:
      return openai_error(status::gateway_timeout, message, "server_error", std::nullopt,
                          std::string("timeout"));
    case ErrorKind::conflict:
      return openai_error(status::conflict, message, "invalid_request_error", param, std::nullopt);
    case ErrorKind::not_implemented:
      return openai_error(status::not_implemented, message, "invalid_request_error", std::nullopt,
                          std::nullopt);
    case ErrorKind::internal:
      return openai_error(status::internal_server_error,
                          "The server had an error while processing your request.", "server_error",
                          std::nullopt, std::nullopt);
  }
  return openai_error(status::internal_server_error, message, "server_error", std::nullopt,
                      std::nullopt);
}

Response openai_not_found(const std::string& path) {
  return openai_error(status::not_found, "Invalid URL (" + path + ")", "invalid_request_error",
                      std::nullopt, std::nullopt);
}

Response openai_method_not_allowed(const char* allow) {
  Response res = openai_error(status::method_not_allowed, "Method Not Allowed",
                              "invalid_request_error", std::nullopt, std::nullopt);
  res.set(bhttp::field::allow, allow);
  return res;
}

namespace {

json::object model_object(const std::string& name) {
  return json::object{
      {"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "speech-recognition-api"}};
}

bool is_served(Parts& parts, const std::string& name) {
  auto names = parts.served_model_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

Response model_not_found(const std::string& name) {
  return openai_error(status::not_found, "The model '" + name + "' does not exist",
                      "invalid_request_error", std::string("model"),
                      std::string("model_not_found"));
}

}  // namespace

Response openai_models(ApiContext& ctx) {
  json::array data;
  for (const auto& name : ctx.service.parts().served_model_names()) {
    data.emplace_back(model_object(name));
  }
  return json_response(status::ok, json::object{{"object", "list"}, {"data", std::move(data)}});
}

Response openai_model(ApiContext& ctx, const std::string& id) {
  if (!is_served(ctx.service.parts(), id)) return model_not_found(id);
  return json_response(status::ok, model_object(id));
}

asio::awaitable<Response> openai_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                            Exchange& ex, bool translate) {
  // Admitted before the body is read: a full queue costs the client no upload.
  std::string client = admit_client(ctx, ex);
  auto ticket = admit(ctx);
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  FormCollector form(max_upload);
  co_await read_form(req, ex.body, form, max_upload);
  if (!form.has_file()) throw field_error("file", "you must provide a file");
  OpenAIRequest r = parse_fields(form.fields(), translate);
  if (!is_served(ctx.service.parts(), r.model)) co_return model_not_found(r.model);

  auto state = std::make_shared<StreamState>();
  state->audio = std::move(form.file_data());
  state->job.model = r.model;
  state->job.client = client;
  state->job.request_id = ex.request_id;
  state->job.options = std::move(r.options.values);
  if (r.stream) {
    ex.keep_alive = req.keep_alive();
    co_await stream_transcription(ctx, ex, state, ticket);
    co_return Response{};
  }
  state->job.audio = state->audio;
  state->job.cancel = &state->cancel;
  // Captured by reference: GCC 12 destroys a non-trivial temporary of a co_await expression (a
  // lambda holding a shared_ptr) twice, which freed the state under the running job.
  Transcription t =
      co_await run_while_connected(ctx.inference.executor(), ex.stream, state->cancel,
                                   [&ctx, &state] { return ctx.service.transcribe(state->job); });
  Response res{status::ok, 11};
  res.set(bhttp::field::content_type, content_type(r.format));
  res.body() = render(t, r.format, translate ? "translate" : "transcribe", r.render);
  res.prepare_payload();
  co_return res;
}

// {"language", "language_name", "probability", "languages": [{"language", "language_name",
// "probability"}, ...]}: every language the model knows, the most likely first.
asio::awaitable<Response> openai_detect_language(ApiContext& ctx,
                                                 const RequestParser::value_type& req,
                                                 Exchange& ex) {
  std::string client = admit_client(ctx, ex);
  auto ticket = admit(ctx);
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  FormCollector form(max_upload);
  co_await read_form(req, ex.body, form, max_upload);
  if (!form.has_file()) throw field_error("file", "you must provide a file");
  const auto& fields = form.fields();
  std::string model;
  if (auto it = fields.find("model"); it != fields.end()) model = it->second;
  if (!model.empty() && !is_served(ctx.service.parts(), model)) co_return model_not_found(model);
  auto state = std::make_shared<StreamState>();
  state->audio = std::move(form.file_data());
  state->job.model = model;
  state->job.client = client;
  state->job.request_id = ex.request_id;
  state->job.audio = state->audio;
  state->job.cancel = &state->cancel;
  LanguageScores scores = co_await run_while_connected(
      ctx.inference.executor(), ex.stream, state->cancel,
      [&ctx, &state] { return ctx.service.detect_language(state->job); });
  auto entry = [](const LanguageScore& s) {
    return json::object{{"language", s.language},
                        {"language_name", language_name(s.language)},
                        {"probability", s.probability}};
  };
  json::array languages;
  for (const auto& s : scores) languages.push_back(entry(s));
  json::object body;
  if (!scores.empty()) body = entry(scores.front());
  body["languages"] = std::move(languages);
  Response res{status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = json::serialize(body);
  res.prepare_payload();
  co_return res;
}

}  // namespace sra::http
