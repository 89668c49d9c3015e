// accept_upload(): the one way in for every route that takes an uploaded file to transcribe now
// (the Python project's sync route, OpenAI's transcription, translation and language routes).
//
// In this order: the client's rate limit (before a byte of the body is read); the form, read
// within its bounds (MAX_UPLOAD_BYTES, the field count and bytes of FormLimits, the memory budget
// of uploads held at once, MAX_BUFFERED_UPLOAD_BYTES); the `file` field required (in the route's
// error shape); the fields the route declares kept, the others refused or skipped as the route
// says; and only then, with the whole body in, a place in the inference queue, so that a slow
// upload never holds one. Throws sra::Error for every refusal (the route maps it to its shape).
//
// Called from the connection's coroutine; the Upload it returns belongs to the caller and holds
// its memory reservation and queue place until it is destroyed or handed to dispatch().
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/option_table.h"
#include "http/api.h"

namespace sra::http {

// What a route takes besides the file.
struct UploadRoute {
  std::vector<const std::vector<OptionSpec>*> option_tables = {};  // options it passes on
  std::vector<std::string_view> own_fields = {};                   // fields the route reads itself
  std::vector<std::string_view> clip_fields = {};  // its own fields that hold audio clips
  bool refuse_unknown = false;  // an undeclared field is a 400/422 naming it (else skipped)
  bool openai_shape = false;    // a missing file is OpenAI's 400, else FastAPI's 422
};

// The request options every transcription route passes to the model: the model's table (the
// Whisper options) and voice activity detection.
std::vector<const std::vector<OptionSpec>*> transcription_option_tables();

struct Upload {
  std::string client;                                     // who asked (rate limits)
  std::string audio;                                      // the file's bytes
  std::optional<std::string> file_name;                   // as the client named it
  std::map<std::string, std::string> fields;              // the declared fields it sent
  std::map<std::string, std::vector<std::string>> lists;  // each `x[]` and clip field's values
  std::unique_ptr<MemoryBudget::Reservation> memory;      // the budget its bytes hold
  std::unique_ptr<InferencePool::Ticket> ticket;          // its place in the inference queue
};

// The error of a full inference queue (503 + Retry-After).
Error inference_queue_full(const ApiContext& ctx);

// A place in the inference queue (counted in sra_refused_total when refused), or throws
// inference_queue_full().
std::unique_ptr<InferencePool::Ticket> admit(ApiContext& ctx);

// Whether `field` is one `route` declares (the name or an alias of an option, its own, a clip, or a
// `name[member]` of an option with members).
bool declares_field(const UploadRoute& route, std::string_view field);

// `name[member]` fields folded into their option as one JSON object of strings (OpenAI's SDKs
// send an object that way). Throws sra::Error(invalid_request) for an option given both ways.
std::map<std::string, std::string> fold_member_fields(const UploadRoute& route,
                                                      std::map<std::string, std::string> fields);

boost::asio::awaitable<Upload> accept_upload(ApiContext& ctx, const RequestParser::value_type& req,
                                             Exchange& ex, const UploadRoute& route);

// A callback URL a route was given, checked before any work is queued: webhooks must be on
// (WEBHOOK_SECRET) and the URL one a server may call (see service/webhooks.h); otherwise
// sra::Error(invalid_request) naming `field`. The host is resolved on the blocking pool.
boost::asio::awaitable<void> check_callback(ApiContext& ctx, const std::string& url,
                                            const std::string& field);

// The work of a route asked to answer by webhook (OpenAI's `callback_url`, Deepgram's `callback`)
// queued as an async task: the URL checked (check_callback()), the audio probed
// (unsupported_media), admitted into the async backlog, stored, and a task created with
// `options_json` (which names the callback as the task's `callback_url`). Returns the task's id.
// Runs its blocking work on the blocking pool.
boost::asio::awaitable<std::string> queue_for_webhook(ApiContext& ctx,
                                                      const std::string& request_id,
                                                      std::string audio, std::string options_json,
                                                      const std::string& callback,
                                                      const std::string& field);

}  // namespace sra::http
