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
#include "core/base64.h"
#include "core/languages.h"
#include "core/text.h"
#include "http/api.h"
#include "http/dispatch.h"
#include "http/form.h"
#include "http/formats.h"
#include "service/speaker_labels.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using bhttp::status;

namespace {

// OpenAI's error fields for an sra::Error: one map for the JSON responses and the streams' error
// events.
struct OpenAIError {
  status code = status::internal_server_error;
  std::string message;
  std::string type = "server_error";
  std::optional<std::string> param = {};
  std::optional<std::string> error_code = {};
};

OpenAIError openai_error_for(const Error& e) {
  OpenAIError o{.message = e.what(), .type = "invalid_request_error", .param = e.field()};
  switch (e.kind()) {
    case ErrorKind::invalid_request:
      o.code = status::bad_request;
      break;
    case ErrorKind::unsupported_media:
      o.code = status::bad_request;
      o.message =
          "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', "
          "'oga', 'ogg', 'wav', 'webm'] (" +
          o.message + ")";
      o.param = "file";
      o.error_code = "invalid_file_format";
      break;
    case ErrorKind::too_large:
      o.code = status::payload_too_large;
      o.param = "file";
      o.error_code = "file_too_large";
      break;
    case ErrorKind::not_found:
      o.code = status::not_found;
      break;
    case ErrorKind::unavailable:
    case ErrorKind::config:
      o.code = status::service_unavailable;
      o.type = "server_error";
      o.param.reset();
      break;
    case ErrorKind::unauthorized:  // OpenAI's own shape for a missing or wrong key
      o.code = status::unauthorized;
      o.param.reset();
      o.error_code = "invalid_api_key";
      break;
    case ErrorKind::forbidden:
      o.code = status::forbidden;
      o.param.reset();
      break;
    case ErrorKind::rate_limited:  // OpenAI's own shape for a rate limit
      o.code = status::too_many_requests;
      o.type = "requests";
      o.param.reset();
      o.error_code = "rate_limit_exceeded";
      break;
    case ErrorKind::request_timeout:
      o.code = status::request_timeout;
      o.param.reset();
      o.error_code = "timeout";
      break;
    case ErrorKind::cancelled:
      o.code = kClientClosedRequest;
      o.param.reset();
      break;
    case ErrorKind::deadline_exceeded:
      o.code = status::gateway_timeout;
      o.type = "server_error";
      o.param.reset();
      o.error_code = "timeout";
      break;
    case ErrorKind::conflict:
      o.code = status::conflict;
      break;
    case ErrorKind::not_implemented:
      o.code = status::not_implemented;
      o.param.reset();
      break;
    case ErrorKind::internal:
      o.message = "The server had an error while processing your request.";
      o.type = "server_error";
      o.param.reset();
      break;
  }
  return o;
}

json::object error_object(const OpenAIError& o) {
  return json::object{{"message", o.message},
                      {"type", o.type},
                      {"param", o.param ? json::value(*o.param) : json::value(nullptr)},
                      {"code", o.error_code ? json::value(*o.error_code) : json::value(nullptr)}};
}

Response openai_error(const OpenAIError& o) {
  return json_response(o.code, json::object{{"error", error_object(o)}});
}

// OpenAI's own fields of the transcription and translation routes, declared once: parsed by
// their specs (the model's options and the subtitle fields come from their own tables).
const std::vector<OptionSpec>& openai_field_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> t;
    t.push_back(make_option("model", OptionType::text, "",
                            "a served model: `whisper-1` or a name of GET /v1/models"));
    t.back().max_items = 256;
    t.push_back(
        make_option("response_format", OptionType::choice, "`json`", "the response's format"));
    t.back().choices = {"json", "text", "srt", "verbose_json", "vtt", "diarized_json"};
    t.push_back(make_option("stream", OptionType::boolean, "`false`",
                            "server-sent events: a delta per segment, then the whole text"));
    t.push_back(make_option("temperature", OptionType::number, "`0`",
                            "0 lets the model raise the temperature by itself when it needs to"));
    t.back().max = 1;
    t.push_back(make_option("timestamp_granularities[]", OptionType::text, "",
                            "`segment`, `word` or both (repeated field)"));
    t.back().max_items = 64;
    t.push_back(make_option(
        "callback_url", OptionType::text, "",
        "not OpenAI's: queue the work (202 with the task's id) and POST the json or verbose_json "
        "response to this URL when it is done, as a signed webhook (needs WEBHOOK_SECRET)"));
    t.back().max_items = 2048;
    t.push_back(make_option("include[]", OptionType::text, "",
                            "`logprobs`: each text token with its log-probability and bytes "
                            "(json, verbose_json and the stream's delta events)"));
    t.back().max_items = 64;
    t.push_back(make_option("known_speaker_names[]", OptionType::text, "",
                            "with diarization: up to 4 names (repeated field), each labelling the "
                            "speaker whose voice matches its clip in known_speaker_references[]"));
    t.back().max_items = kMaxSpeakerNameBytes;
    t.push_back(
        make_option("known_speaker_references[]", OptionType::text, "",
                    "the known speakers' clips, in the order of their names: base64 data "
                    "URLs (`data:audio/wav;base64,...`) of 1.2 to 10 s of each speaker alone"));
    t.back().max_items = 4 * 1024 * 1024;
    return t;
  }();
  return specs;
}

const UploadRoute& openai_upload() {
  static const UploadRoute route = [] {
    UploadRoute r{.option_tables = transcription_option_tables(),
                  .clip_fields = {"known_speaker_references[]"},
                  .refuse_unknown = true,
                  .openai_shape = true};
    r.option_tables.push_back(&openai_field_specs());
    r.option_tables.push_back(&subtitle_option_specs());
    return r;
  }();
  return route;
}

struct OpenAIRequest {
  std::string callback_url;  // queue the work and answer by webhook
  std::string model;
  ResponseFormat format = ResponseFormat::json;
  bool stream = false;
  RenderOptions render;
  std::map<std::string, std::string> options;  // for the model
};

OpenAIRequest parse_fields(const std::map<std::string, std::string>& fields, bool translate) {
  OpenAIRequest r;
  auto field = [&](const std::string& name) -> std::optional<std::string> {
    auto it = fields.find(name);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
  auto parsed = [&](std::string_view name) -> std::optional<ParsedOption> {
    auto value = field(std::string(name));
    if (!value) return std::nullopt;
    return parse_option(*find_option(openai_field_specs(), name), *value);
  };
  if (auto m = parsed("model")) r.model = strip(m->text);
  if (r.model.empty()) throw missing_field("model", "you must provide a model parameter");
  // OpenAI's diarizing model is the default model here, as whisper-1 is.
  if (r.model == "gpt-4o-transcribe-diarize") r.model = kOpenAIDefaultModelName;
  if (auto f = parsed("response_format")) r.format = *parse_response_format(f->text);
  if (auto s = parsed("stream")) r.stream = s->flag;
  if (auto c = parsed("callback_url")) {
    r.callback_url = strip(c->text);
    if (r.stream) throw invalid_field("callback_url", "a streamed response takes no callback_url");
    if (r.format != ResponseFormat::json && r.format != ResponseFormat::verbose_json) {
      throw invalid_field("callback_url",
                          "a callback gets json or verbose_json: ask for one of those");
    }
  }
  // Granularities (repeated fields arrive comma-joined): word times cost a second decoder pass
  // per window, so they are computed only when asked for (or needed by the subtitle options).
  bool want_words = false, want_segments = false;
  if (auto g = parsed("timestamp_granularities[]")) {
    for (const std::string& item : split_list(g->text)) {
      if (item == "word") {
        want_words = true;
      } else if (item == "segment") {
        want_segments = true;
      } else {
        throw invalid_field("timestamp_granularities[]", "'" + std::string(utf8_prefix(item, 40)) +
                                                             "' is not one of ['word', 'segment']");
      }
    }
  }
  if (auto inc = parsed("include[]")) {
    for (const std::string& item : split_list(inc->text)) {
      if (item != "logprobs") {
        throw invalid_field(
            "include[]", "'" + std::string(utf8_prefix(item, 40)) + "' is not one of ['logprobs']");
      }
      r.render.logprobs = true;
    }
  }
  r.render.usage = true;
  // As OpenAI: segments unless only words were asked for.
  r.render.words = want_words;
  r.render.segments = want_segments || !want_words;
  r.render.subtitles = parse_subtitle_options(field);
  // The model's own options (beam_size, ...) and voice activity detection go to the service.
  for (const auto& [k, v] : fields) {
    for (const auto* table : transcription_option_tables()) {
      if (find_option(*table, k)) r.options[k] = v;
    }
  }
  r.options.erase("temperature");  // OpenAI's temperature is its own field (below)
  // Without chunking_strategy, OpenAI's long-form decoding, token for token.
  r.options.try_emplace("chunking_strategy", "none");
  if (r.format == ResponseFormat::diarized_json) r.options["diarize"] = "true";
  if (want_words || r.render.subtitles.any()) r.options["word_timestamps"] = "true";
  if (r.render.logprobs) r.options["logprobs"] = "true";
  // As OpenAI documents: 0 lets the model raise the temperature by itself when it needs to;
  // another value is the one temperature used.
  if (auto t = parsed("temperature"); t && t->number > 0)
    r.options["temperature"] = field("temperature").value();
  if (translate) {
    r.options["task"] = "translate";
    r.options.erase("language");
  }
  return r;
}

// OpenAI's known speakers: each name of known_speaker_names[] with the clip at the same place of
// known_speaker_references[], a base64 data URL. Throws sra::Error(invalid_request) naming the
// field at fault (the names and their count are checked by the service).
std::vector<KnownSpeaker> parse_known_speakers(
    const std::map<std::string, std::vector<std::string>>& lists) {
  static const std::vector<std::string> none;
  auto list = [&](const std::string& name) -> const std::vector<std::string>& {
    auto it = lists.find(name);
    return it == lists.end() ? none : it->second;
  };
  const auto& names = list("known_speaker_names[]");
  const auto& clips = list("known_speaker_references[]");
  if (names.size() != clips.size()) {
    throw invalid_field("known_speaker_references[]",
                        "gives " + std::to_string(clips.size()) + " clips for " +
                            std::to_string(names.size()) +
                            " names of known_speaker_names[]: one clip per name");
  }
  std::vector<KnownSpeaker> known;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto url = parse_base64_data_url(clips[i]);
    if (!url) {
      throw invalid_field("known_speaker_references[]",
                          "clip " + std::to_string(i + 1) +
                              " is not a base64 data URL (data:audio/wav;base64,...)");
    }
    known.push_back({names[i], std::move(url->bytes)});
  }
  return known;
}

std::string sse_event(const json::value& v) {
  return "data: " + json::serialize(v) + "\n\n";
}

// Built outside the coroutine: GCC 12 mishandles string literals in braced lists inside one.
std::string delta_event(const Segment& segment, bool logprobs) {
  json::object e{{"type", "transcript.text.delta"}, {"delta", segment.text}};
  if (logprobs) e["logprobs"] = logprobs_json(segment.logprobs);
  return sse_event(e);
}
std::string done_event(const Transcription& t, bool logprobs) {
  json::object e{{"type", "transcript.text.done"}, {"text", t.text}};
  if (logprobs) e["logprobs"] = transcript_logprobs(t);
  e["usage"] = duration_usage(t.duration);
  return sse_event(e);
}
std::string error_event(const Error& e) {
  return sse_event(json::object{{"type", "error"}, {"error", error_object(openai_error_for(e))}});
}

asio::awaitable<void> write_chunk(boost::beast::tcp_stream& stream, const std::string& data) {
  stream.expires_after(std::chrono::seconds(60));
  co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(data)), asio::use_awaitable);
}

// Server-sent events: a delta per segment as the job finishes it, then (diarized) each speaker
// segment, then the whole text (or an error event). Whatever ends this early (the client gone, a
// failed write) cancels the job.
asio::awaitable<void> stream_transcription(Exchange& ex, const std::shared_ptr<JobRun>& run,
                                           bool logprobs, bool diarized) {
  CancelUnlessDone guard(run);
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

  for (;;) {
    JobNews news = co_await next(run, &ex);
    for (const auto& segment : news.segments) {
      co_await write_chunk(ex.stream, delta_event(segment, logprobs));
    }
    if (news.done) break;
  }
  std::string last;
  if (run->error) {
    try {
      std::rethrow_exception(run->error);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) {
        spdlog::info("streamed transcription: {}", e.what());
        ex.keep_alive = false;
      } else {
        if (e.kind() == ErrorKind::internal) spdlog::error("streamed transcription: {}", e.what());
        last = error_event(e);
      }
    } catch (const std::exception& e) {
      spdlog::error("streamed transcription: {}", e.what());
      last = error_event(internal_error(e.what()));
    }
    if (last.empty()) co_return;  // cancelled: the client is gone
  } else {
    if (diarized) {  // the speakers are known once the whole audio is transcribed
      const json::value all = diarized_json(run->transcription, "transcribe", RenderOptions{});
      // Each is OpenAI's transcript.text.segment event as it is (type, id, start, end, ...).
      for (const auto& segment : all.as_object().at("segments").as_array()) {
        co_await write_chunk(ex.stream, sse_event(segment));
      }
    }
    last = done_event(run->transcription, logprobs);
  }
  co_await write_chunk(ex.stream, last);
  ex.stream.expires_after(std::chrono::seconds(60));
  co_await asio::async_write(ex.stream, bhttp::make_chunk_last(), asio::use_awaitable);
}

}  // namespace

Response openai_error_response(const Error& e) {
  Response res = openai_error(openai_error_for(e));
  if (e.kind() == ErrorKind::unauthorized) res.set(bhttp::field::www_authenticate, "Bearer");
  if (e.kind() == ErrorKind::unavailable || e.kind() == ErrorKind::config ||
      e.kind() == ErrorKind::rate_limited) {
    set_retry_after(res, e);
  }
  return res;
}

Response openai_not_found(const std::string& path) {
  return openai_error(OpenAIError{.code = status::not_found,
                                  .message = "Invalid URL (" + path + ")",
                                  .type = "invalid_request_error"});
}

Response openai_method_not_allowed(std::string_view allow) {
  Response res = openai_error(OpenAIError{.code = status::method_not_allowed,
                                          .message = "Method Not Allowed",
                                          .type = "invalid_request_error"});
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
  return openai_error(OpenAIError{.code = status::not_found,
                                  .message = "The model '" + name + "' does not exist",
                                  .type = "invalid_request_error",
                                  .param = "model",
                                  .error_code = "model_not_found"});
}

}  // namespace

namespace {

asio::awaitable<Response> openai_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                            Exchange& ex, bool translate) {
  Upload upload = co_await accept_upload(ctx, req, ex, openai_upload());
  OpenAIRequest r = parse_fields(upload.fields, translate);
  // Up to MAX_UPLOAD_BYTES of base64: decoded on the blocking pool, not the connection's thread.
  std::vector<KnownSpeaker> known = co_await run_on(
      ctx.blocking.get_executor(), [&upload] { return parse_known_speakers(upload.lists); });
  upload.lists.clear();
  if (!is_served(ctx.service.parts(), r.model)) co_return model_not_found(r.model);
  if (!known.empty() && !r.callback_url.empty()) {
    throw invalid_field("known_speaker_names[]",
                        "known speakers are not kept for queued work: ask without callback_url");
  }
  if (!r.callback_url.empty()) {
    // Queued: the form's fields are kept to render the response as this request would have.
    json::object options;
    for (const auto& [name, value] : r.options) options[name] = value;
    json::object fields;
    for (const auto& [name, value] : upload.fields) fields[name] = value;
    options["callback_url"] = r.callback_url;
    options["callback_format"] = "openai";
    options["openai_fields"] = json::serialize(fields);
    options["openai_task"] = translate ? "translate" : "transcribe";
    if (r.model != kOpenAIDefaultModelName && r.model != ctx.service.parts().model_name()) {
      options["openai_model"] = r.model;
    }
    upload.ticket.reset();  // no transcription here: a worker does it
    std::string id =
        co_await queue_for_webhook(ctx, ex.request_id, std::move(upload.audio),
                                   json::serialize(options), r.callback_url, "callback_url");
    co_return json_response(
        status::accepted,
        json::object{{"id", id}, {"object", "transcription.task"}, {"status", "queued"}});
  }
  auto run = run_for(upload, ex);
  run->job.model = r.model;
  run->job.options = std::move(r.options);
  run->job.known_speakers = std::move(known);
  if (r.stream) {
    ex.keep_alive = req.keep_alive();
    run->stream_segments = true;
    start(ctx, run);
    co_await stream_transcription(ex, run, r.render.logprobs,
                                  r.format == ResponseFormat::diarized_json);
    co_return Response{};
  }
  start(ctx, run);
  co_await wait(run, &ex);
  Response res{status::ok, 11};
  res.set(bhttp::field::content_type, content_type(r.format));
  res.body() =
      render(run->transcription, r.format, translate ? "translate" : "transcribe", r.render);
  res.prepare_payload();
  co_return res;
}

}  // namespace

std::string openai_callback_body(const std::string& task_id, const TaskResult& result,
                                 const std::map<std::string, std::string>& options) {
  if (result.status != TaskStatus::success || !result.transcription) {
    json::object error{{"message", result.error.value_or("the task failed")},
                       {"type", result.cancelled ? "cancelled" : "server_error"},
                       {"param", nullptr},
                       {"code", nullptr}};
    return json::serialize(json::object{{"task_id", task_id}, {"error", std::move(error)}});
  }
  std::map<std::string, std::string> fields;
  if (auto it = options.find("openai_fields"); it != options.end()) {
    boost::system::error_code ec;
    json::value v = json::parse(it->second, ec);
    if (!ec && v.is_object()) {
      for (const auto& [name, value] : v.as_object()) {
        if (value.is_string()) fields[std::string(name)] = std::string(value.as_string());
      }
    }
  }
  auto task = options.find("openai_task");
  const bool translate = task != options.end() && task->second == "translate";
  OpenAIRequest r;
  try {
    r = parse_fields(fields, translate);
  } catch (const Error&) {
    r.format = ResponseFormat::json;  // checked when it was queued; a damaged record gets json
  }
  return render(*result.transcription, r.format, translate ? "translate" : "transcribe", r.render);
}

asio::awaitable<Response> openai_transcriptions_route(ApiContext& ctx,
                                                      const RequestParser::value_type& req,
                                                      Exchange& ex, std::string_view) {
  co_return co_await openai_transcribe(ctx, req, ex, false);
}

asio::awaitable<Response> openai_translations_route(ApiContext& ctx,
                                                    const RequestParser::value_type& req,
                                                    Exchange& ex, std::string_view) {
  co_return co_await openai_transcribe(ctx, req, ex, true);
}

// {"language", "language_name", "probability", "languages": [{"language", "language_name",
// "probability"}, ...]}: every language the model knows, the most likely first.
asio::awaitable<Response> openai_language_route(ApiContext& ctx,
                                                const RequestParser::value_type& req, Exchange& ex,
                                                std::string_view) {
  static const UploadRoute route{
      .option_tables = {},
      .own_fields = {"model", "allowed_languages", "languages", "languages[]"},
      .refuse_unknown = true,
      .openai_shape = true};
  Upload upload = co_await accept_upload(ctx, req, ex, route);
  std::string model;
  if (auto it = upload.fields.find("model"); it != upload.fields.end()) model = strip(it->second);
  if (!model.empty() && !is_served(ctx.service.parts(), model)) co_return model_not_found(model);
  auto run = run_for(upload, ex);
  run->work = JobRun::Work::detect_language;
  run->job.model = model;
  run->job.options.clear();
  // The languages to choose among (the model's option checks them).
  for (const char* name : {"allowed_languages", "languages", "languages[]"}) {
    if (auto it = upload.fields.find(name); it != upload.fields.end())
      run->job.options["allowed_languages"] = it->second;
  }
  start(ctx, run);
  co_await wait(run, &ex);
  auto entry = [](const LanguageScore& s) {
    return json::object{{"language", s.language},
                        {"language_name", language_name(s.language)},
                        {"probability", s.probability}};
  };
  json::array languages;
  for (const auto& s : run->languages) languages.push_back(entry(s));
  json::object body;
  if (!run->languages.empty()) body = entry(run->languages.front());
  body["languages"] = std::move(languages);
  co_return json_response(status::ok, body);
}

// The fields of POST /v1/audio/diarization, as LocalAI and speaches take them.
const std::vector<OptionSpec>& diarization_route_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> t;
    t.push_back(make_option("model", OptionType::text, "",
                            "accepted (any served model name; diarization uses its own models)"));
    t.back().max_items = 256;
    auto count = [&](const char* name, double min, std::string doc) {
      t.push_back(make_option(name, OptionType::integer, "", std::move(doc)));
      t.back().min = min;
      t.back().max = 64;
    };
    count("num_speakers", 0, "exactly this many speakers; 0: find out");
    count("min_speakers", 1, "at least this many speakers (`1`)");
    count("max_speakers", 1, "at most this many speakers (`20`)");
    auto seconds = [&](const char* name, double min, double max, std::string doc) {
      t.push_back(make_option(name, OptionType::number, "", std::move(doc)));
      t.back().min = min;
      t.back().max = max;
    };
    seconds("clustering_threshold", 0.05, 1.5,
            "cosine distance below which two voices are one speaker (DIARIZATION_THRESHOLD)");
    seconds("min_duration_on", 0, 60, "turns shorter than this (seconds) are dropped (`0.25`)");
    seconds("min_duration_off", 0, 60,
            "a speaker's pauses shorter than this (seconds) are filled (`0.25`)");
    t.push_back(make_option("response_format", OptionType::choice, "`json`",
                            "`json`, `verbose_json` (a summary per speaker too) or `rttm`"));
    t.back().choices = {"json", "verbose_json", "rttm"};
    t.push_back(make_option("include_text", OptionType::boolean, "`false`",
                            "refused when true: transcribe with `diarize=true` for text"));
    t.push_back(make_option("language", OptionType::text, "",
                            "accepted and unused (no transcription here)"));
    t.back().max_items = 32;
    return t;
  }();
  return specs;
}

// "SPEAKER_00" for speaker label "A".
static std::string numbered_speaker(const std::string& label) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "SPEAKER_%02d", std::max(0, speaker_label_index(label)));
  return buf;
}

// Who spoke when, without transcription (LocalAI's and speaches' route): json {task, duration,
// num_speakers, segments[{id, speaker, label, start, end}]}, verbose_json with `speakers`
// [{id, label, duration, segments}], or rttm.
asio::awaitable<Response> openai_diarization_route(ApiContext& ctx,
                                                   const RequestParser::value_type& req,
                                                   Exchange& ex, std::string_view) {
  static const UploadRoute route{
      .option_tables = {&diarization_route_specs()}, .refuse_unknown = true, .openai_shape = true};
  Upload upload = co_await accept_upload(ctx, req, ex, route);
  auto parsed = [&](const char* name) -> std::optional<ParsedOption> {
    auto it = upload.fields.find(name);
    if (it == upload.fields.end()) return std::nullopt;
    return parse_option(*find_option(diarization_route_specs(), name), it->second);
  };
  if (auto model = parsed("model");
      model && !strip(model->text).empty() && !is_served(ctx.service.parts(), strip(model->text)))
    co_return model_not_found(strip(model->text));
  if (auto text = parsed("include_text"); text && text->flag)
    throw invalid_field("include_text",
                        "no text here: POST /v1/audio/transcriptions with diarize=true instead");
  speakers::DiarizationOptions o;
  if (auto n = parsed("num_speakers"); n && n->number > 0) o.num_speakers = int(n->number);
  if (auto n = parsed("min_speakers")) o.min_speakers = int(n->number);
  if (auto n = parsed("max_speakers")) o.max_speakers = int(n->number);
  if (o.min_speakers > o.max_speakers)
    throw invalid_field("min_speakers", "is more than max_speakers");
  if (o.num_speakers && (*o.num_speakers < o.min_speakers || *o.num_speakers > o.max_speakers))
    throw invalid_field("num_speakers", "lies outside min_speakers..max_speakers");
  o.threshold = 0;  // DIARIZATION_THRESHOLD unless asked
  if (auto t = parsed("clustering_threshold")) o.threshold = static_cast<float>(t->number);
  if (auto t = parsed("min_duration_on")) o.min_turn_seconds = t->number;
  if (auto t = parsed("min_duration_off")) o.min_gap_seconds = t->number;
  std::string format = "json";
  if (auto f = parsed("response_format")) format = f->text;
  auto run = run_for(upload, ex);
  run->work = JobRun::Work::diarize;
  run->diarization = o;
  run->job.options.clear();
  start(ctx, run);
  co_await wait(run, &ex);
  const Transcription& t = run->transcription;
  if (format == "rttm") {
    Response res{status::ok, 11};
    res.set(beast_http::field::content_type, content_type(ResponseFormat::rttm));
    res.body() = render(t, ResponseFormat::rttm, "audio");
    res.prepare_payload();
    co_return res;
  }
  json::array segments;
  std::map<int, std::pair<double, int>> per_speaker;  // by index: duration, turns
  for (const auto& turn : t.speaker_turns) {
    const int index = std::max(0, speaker_label_index(turn.speaker));
    segments.push_back(json::object{{"id", static_cast<std::int64_t>(segments.size())},
                                    {"speaker", numbered_speaker(turn.speaker)},
                                    {"label", std::to_string(index)},
                                    {"start", std::round(turn.start * 1000) / 1000},
                                    {"end", std::round(turn.end * 1000) / 1000}});
    auto& [seconds, turns] = per_speaker[index];
    seconds += turn.end - turn.start;
    ++turns;
  }
  json::object body{{"task", "diarize"},
                    {"duration", std::round(t.duration * 1000) / 1000},
                    {"num_speakers", static_cast<std::int64_t>(per_speaker.size())},
                    {"segments", std::move(segments)}};
  if (format == "verbose_json") {
    json::array speakers;
    for (const auto& [index, summary] : per_speaker) {
      speakers.push_back(json::object{{"id", numbered_speaker(speaker_label(index))},
                                      {"label", std::to_string(index)},
                                      {"duration", std::round(summary.first * 1000) / 1000},
                                      {"segments", summary.second}});
    }
    body["speakers"] = std::move(speakers);
  }
  co_return json_response(status::ok, body);
}

asio::awaitable<Response> openai_models_route(ApiContext& ctx, const RequestParser::value_type&,
                                              Exchange&, std::string_view) {
  json::array data;
  for (const auto& name : ctx.service.parts().served_model_names()) {
    data.emplace_back(model_object(name));
  }
  co_return json_response(status::ok, json::object{{"object", "list"}, {"data", std::move(data)}});
}

asio::awaitable<Response> openai_model_route(ApiContext& ctx, const RequestParser::value_type&,
                                             Exchange&, std::string_view id) {
  if (!is_served(ctx.service.parts(), std::string(id))) co_return model_not_found(std::string(id));
  co_return json_response(status::ok, model_object(std::string(id)));
}

}  // namespace sra::http
