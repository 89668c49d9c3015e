#include "http/upload.h"

#include "core/errors.h"
#include "http/form.h"
#include "service/builtin_parts.h"
#include "service/metrics.h"
#include "service/voice_activity.h"

namespace sra::http {

std::vector<const std::vector<OptionSpec>*> transcription_option_tables() {
  return {&builtin_request_options(), &vad_option_specs()};
}

Error inference_queue_full(const ApiContext& ctx) {
  return unavailable("the inference queue is full (" +
                     std::to_string(ctx.inference.options().queue_size) + " waiting); retry later");
}

std::unique_ptr<InferencePool::Ticket> admit(ApiContext& ctx) {
  auto ticket = ctx.inference.try_admit();
  if (!ticket) {
    metrics().refused.with({"inference_queue"}).add();
    throw inference_queue_full(ctx);
  }
  return ticket;
}

bool declares_field(const UploadRoute& route, std::string_view field) {
  for (std::string_view own : route.own_fields) {
    if (own == field) return true;
  }
  for (const auto* table : route.option_tables) {
    if (find_option(*table, field)) return true;
  }
  return false;
}

boost::asio::awaitable<Upload> accept_upload(ApiContext& ctx, const RequestParser::value_type& req,
                                             Exchange& ex, const UploadRoute& route) {
  Upload upload;
  upload.client = admit_client(ctx, ex);
  // A queue full now refuses before the upload is invited (the place is taken once it is in).
  if (ctx.inference.full()) {
    metrics().refused.with({"inference_queue"}).add();
    throw inference_queue_full(ctx);
  }
  const std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  upload.memory = std::make_unique<MemoryBudget::Reservation>(ctx.service.upload_memory());
  FormCollector form(
      FormLimits{.max_file_bytes = max_upload},
      FieldPolicy{.known = [&route](std::string_view f) { return declares_field(route, f); },
                  .refuse_unknown = route.refuse_unknown},
      upload.memory.get());
  co_await read_form(req, ex.body, form, max_upload);
  if (!form.has_file()) {
    throw missing_field("file", route.openai_shape ? "you must provide a file" : "Field required");
  }
  upload.audio = std::move(form.file_data());
  upload.file_name = form.file_name();
  upload.fields = form.fields();
  upload.ticket = admit(ctx);
  co_return upload;
}

}  // namespace sra::http
