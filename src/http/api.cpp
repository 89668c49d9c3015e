#include "http/api.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <map>

#include "audio/decoder.h"
#include "core/errors.h"
#include "http/multipart_parser.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;
using bhttp_status = beast_http::status;

namespace {

constexpr std::size_t kMultipartOverhead = 1024 * 1024;  // room for boundaries and small fields
constexpr std::size_t kMaxFieldBytes = 64 * 1024;        // largest non-file form field
constexpr std::size_t kProbeBytes = 1024 * 1024;         // start of an upload checked for audio
constexpr std::size_t kFlushBytes = 1024 * 1024;         // async upload pieces sent to storage

// Runs `f` on `executor`'s threads and resumes the caller with its result (or exception).
template <typename Executor, typename F>
auto run_on(Executor executor, F f) -> asio::awaitable<decltype(f())> {
  co_return co_await asio::co_spawn(
      executor, [f = std::move(f)]() mutable -> asio::awaitable<decltype(f())> { co_return f(); },
      asio::use_awaitable);
}

// Collects the form: the first `file` part (into `sink`) and small text fields.
class FormCollector : public MultipartHandler {
 public:
  explicit FormCollector(std::size_t max_file_bytes) : max_file_bytes_(max_file_bytes) {}

  void on_part_begin(const PartHeaders& h) override {
    current_ = h.name;
    in_file_ = h.name == "file" && !has_file_;
    if (in_file_) has_file_ = true;
    if (!in_file_ && h.filename) current_.clear();  // other uploaded files are ignored
  }
  void on_part_data(std::string_view bytes) override {
    if (in_file_) {
      file_bytes_ += bytes.size();
      if (file_bytes_ > max_file_bytes_) {
        throw too_large("upload is larger than MAX_UPLOAD_BYTES (" +
                        std::to_string(max_file_bytes_) + " bytes)");
      }
      file_data_.append(bytes);
    } else if (!current_.empty()) {
      std::string& value = fields_[current_];
      if (value.size() + bytes.size() > kMaxFieldBytes) {
        throw invalid_request("form field '" + current_ + "' is too long");
      }
      value.append(bytes);
    }
  }
  void on_part_end() override {
    in_file_ = false;
    current_.clear();
  }

  bool has_file() const { return has_file_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  // Bytes of the file part received since the last take (all of them, for a sync upload).
  std::string& file_data() { return file_data_; }
  const std::map<std::string, std::string>& fields() const { return fields_; }

 private:
  std::size_t max_file_bytes_;
  std::string current_;
  bool in_file_ = false;
  bool has_file_ = false;
  std::uint64_t file_bytes_ = 0;
  std::string file_data_;
  std::map<std::string, std::string> fields_;
};

std::string boundary_of(const RequestParser::value_type& request) {
  auto boundary = multipart_boundary(request[beast_http::field::content_type]);
  if (!boundary) throw invalid_request("expected a multipart/form-data body with a 'file' field");
  return *boundary;
}

void check_declared_length(const RequestParser::value_type& request, std::size_t max_upload) {
  auto length = request[beast_http::field::content_length];
  if (length.empty()) return;
  std::uint64_t declared = 0;
  try {
    declared = std::stoull(std::string(length));
  } catch (...) {
    return;  // the parser already validated it
  }
  if (declared > max_upload + kMultipartOverhead) {
    throw too_large("upload is larger than MAX_UPLOAD_BYTES (" + std::to_string(max_upload) +
                    " bytes)");
  }
}

TranscribeOptions options_from_fields(const std::map<std::string, std::string>& fields) {
  TranscribeOptions options;
  for (auto& [k, v] : fields) options.values[k] = v;
  return options;
}

json::object options_json(const std::map<std::string, std::string>& fields) {
  json::object o;
  for (auto& [k, v] : fields) o[k] = v;
  return o;
}

asio::awaitable<Response> sync_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                          BodyReader& body) {
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  std::string boundary = boundary_of(req);
  check_declared_length(req, max_upload);
  FormCollector form(max_upload);
  MultipartParser parser(boundary, form);
  while (auto piece = co_await body.next()) parser.feed(*piece);
  parser.finish();
  if (!form.has_file()) co_return missing_field_response("file");

  auto ticket = ctx.inference.try_admit();
  if (!ticket) {
    throw unavailable("the inference queue is full (" +
                      std::to_string(ctx.inference.options().queue_size) +
                      " waiting); retry later");
  }
  std::string audio = std::move(form.file_data());
  TranscribeOptions options = options_from_fields(form.fields());
  Transcription t = co_await run_on(ctx.inference.executor(), [&ctx, &audio, &options] {
    return ctx.service.transcribe_bytes(audio, options);
  });
  co_return json_response(bhttp_status::ok, json::object{{"transcription", t.text}});
}

asio::awaitable<Response> async_transcribe(ApiContext& ctx, const RequestParser::value_type& req,
                                           BodyReader& body) {
  std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  std::string boundary = boundary_of(req);
  check_declared_length(req, max_upload);
  FormCollector form(max_upload);
  MultipartParser parser(boundary, form);
  std::unique_ptr<FileUpload> upload;
  std::string prefix;  // the start of the file, checked for audio before the task is created
  auto executor = ctx.blocking.get_executor();
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
      if (!upload) upload = storage->begin_upload();
      upload->write(piece);
      return 0;
    });
  };

  while (auto piece = co_await body.next()) {
    parser.feed(*piece);
    if (form.file_data().size() >= kFlushBytes) co_await flush();
  }
  parser.finish();
  if (!form.has_file()) co_return missing_field_response("file");
  co_await flush();

  bool complete = form.file_bytes() <= prefix.size();
  if (auto why = co_await run_on(executor, [&] { return audio::probe(prefix, complete); })) {
    throw unsupported_media("the upload is not audio that can be decoded: " + *why);
  }
  std::string options = json::serialize(options_json(form.fields()));
  std::string task_id = co_await run_on(executor, [&] {
    std::string file_id = upload->commit();
    try {
      return ctx.service.parts().bus().create_task({file_id, options});
    } catch (...) {
      storage->remove(file_id);  // no task, so no file left behind
      throw;
    }
  });
  co_return json_response(bhttp_status::ok, json::object{{"task_id", task_id}});
}

asio::awaitable<Response> task_result(ApiContext& ctx, const std::string& task_id) {
  auto result = co_await run_on(ctx.blocking.get_executor(),
                                [&] { return ctx.service.parts().bus().get_task_result(task_id); });
  if (!result) throw not_found("Task not found");
  json::object body{
      {"status", to_string(result->status)},
      {"transcription",
       result->transcription ? json::value(result->transcription->text) : json::value(nullptr)}};
  if (result->error) body["error"] = *result->error;
  co_return json_response(bhttp_status::ok, body);
}

Response method_not_allowed(const char* allow) {
  Response res = detail_response(bhttp_status::method_not_allowed, "Method Not Allowed");
  res.set(beast_http::field::allow, allow);
  return res;
}

asio::awaitable<Response> route(ApiContext& ctx, const RequestParser::value_type& req,
                                BodyReader& body) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  auto method = req.method();
  constexpr std::string_view kTaskPrefix = "/async/v1/transcribe/";

  if (path == "/health") {
    if (method != beast_http::verb::get) co_return method_not_allowed("GET");
    co_return json_response(bhttp_status::ok, json::object{{"status", "ok"}});
  }
  if (path == "/sync/v1/transcribe") {
    if (method != beast_http::verb::post) co_return method_not_allowed("POST");
    co_return co_await sync_transcribe(ctx, req, body);
  }
  if (path == "/async/v1/transcribe") {
    if (method != beast_http::verb::post) co_return method_not_allowed("POST");
    co_return co_await async_transcribe(ctx, req, body);
  }
  if (path.starts_with(kTaskPrefix) && path.size() > kTaskPrefix.size() &&
      path.find('/', kTaskPrefix.size()) == std::string_view::npos) {
    if (method != beast_http::verb::get) co_return method_not_allowed("GET");
    co_return co_await task_result(ctx, std::string(path.substr(kTaskPrefix.size())));
  }
  co_return detail_response(bhttp_status::not_found, "Not Found");
}

}  // namespace

asio::awaitable<Response> handle_request(ApiContext& ctx, const RequestParser::value_type& req,
                                         BodyReader& body) {
  try {
    co_return co_await route(ctx, req, body);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal) {
      spdlog::error("{} {}: {}", std::string(req.method_string()), std::string(req.target()),
                    e.what());
    } else {
      spdlog::info("{} {}: {} ({})", std::string(req.method_string()), std::string(req.target()),
                   e.what(), to_string(e.kind()));
    }
    co_return error_response(e);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: internal error: {}", std::string(req.method_string()),
                  std::string(req.target()), e.what());
    co_return detail_response(bhttp_status::internal_server_error, "Internal Server Error");
  }
}

}  // namespace sra::http
