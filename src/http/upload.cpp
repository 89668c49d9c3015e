#include "http/upload.h"

#include <algorithm>
#include <boost/json.hpp>

#include "audio/decoder.h"
#include "core/errors.h"
#include "http/form.h"
#include "service/builtin_parts.h"
#include "service/chunking.h"
#include "service/metrics.h"
#include "service/speaker_labels.h"
#include "service/voice_activity.h"
#include "service/webhooks.h"

namespace sra::http {

std::vector<const std::vector<OptionSpec>*> transcription_option_tables() {
  return {&builtin_request_options(), &vad_option_specs(), &chunking_option_specs(),
          &diarization_option_specs()};
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

namespace {

// The option and member of a `name[member]` field whose option declares that member, or null.
const OptionSpec* member_option(const UploadRoute& route, std::string_view field,
                                std::string_view* member) {
  const std::size_t open = field.find('[');
  if (open == std::string_view::npos || open == 0 || field.size() < open + 3 || field.back() != ']')
    return nullptr;
  const std::string_view name = field.substr(0, open);
  const std::string_view key = field.substr(open + 1, field.size() - open - 2);
  for (const auto* table : route.option_tables) {
    const OptionSpec* spec = find_option(*table, name);
    if (!spec) continue;
    for (const auto& m : spec->members) {
      if (m == key) {
        *member = key;
        return spec;
      }
    }
  }
  return nullptr;
}

}  // namespace

std::map<std::string, std::string> fold_member_fields(const UploadRoute& route,
                                                      std::map<std::string, std::string> fields) {
  std::map<std::string, boost::json::object> objects;
  for (auto it = fields.begin(); it != fields.end();) {
    std::string_view member;
    if (const OptionSpec* spec = member_option(route, it->first, &member)) {
      objects[spec->name][member] = it->second;
      it = fields.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [name, object] : objects) {
    if (fields.count(name)) {
      throw invalid_field(name, "is given both as a value and as " + name + "[...] fields");
    }
    fields[name] = boost::json::serialize(object);
  }
  return fields;
}

bool declares_field(const UploadRoute& route, std::string_view field) {
  for (const auto* names : {&route.own_fields, &route.clip_fields}) {
    for (std::string_view own : *names) {
      if (own == field) return true;
    }
  }
  for (const auto* table : route.option_tables) {
    if (find_option(*table, field)) return true;
  }
  std::string_view member;
  return member_option(route, field, &member) != nullptr;
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
                  .refuse_unknown = route.refuse_unknown,
                  .clip =
                      [&route](std::string_view f) {
                        return std::find(route.clip_fields.begin(), route.clip_fields.end(), f) !=
                               route.clip_fields.end();
                      }},
      upload.memory.get());
  co_await read_form(req, ex.body, form, max_upload);
  if (!form.has_file()) {
    throw missing_field("file", route.openai_shape ? "you must provide a file" : "Field required");
  }
  upload.audio = std::move(form.file_data());
  upload.file_name = form.file_name();
  upload.fields = fold_member_fields(route, form.fields());
  upload.lists = std::move(form.lists());
  upload.ticket = admit(ctx);
  co_return upload;
}

boost::asio::awaitable<void> check_callback(ApiContext& ctx, const std::string& url,
                                            const std::string& field) {
  if (!ctx.service.webhooks().enabled()) {
    throw invalid_field(field, "webhooks are off on this server (WEBHOOK_SECRET is not set)");
  }
  co_await run_on(ctx.blocking.get_executor(), [&] {
    try {
      check_webhook_url(url, ctx.service.webhooks().settings());
    } catch (const Error& e) {
      throw invalid_field(field, e.what());
    }
    return 0;
  });
}

boost::asio::awaitable<std::string> queue_for_webhook(ApiContext& ctx,
                                                      const std::string& request_id,
                                                      std::string audio, std::string options_json,
                                                      const std::string& callback,
                                                      const std::string& field) {
  co_await check_callback(ctx, callback, field);
  co_return co_await run_on(ctx.blocking.get_executor(), [&] {
    auto probed = audio::inspect(std::string_view(audio).substr(0, 1024 * 1024), audio.size());
    if (probed.refusal) {
      throw unsupported_media("the upload is not audio that can be decoded: " + *probed.refusal);
    }
    BacklogGate::Admission admission = ctx.service.backlog().admit();
    admission.add_bytes(audio.size());
    admission.set_audio_seconds(probed.seconds);
    FileStorage& storage = ctx.service.parts().storage();
    auto upload = storage.begin_upload();
    upload->write(audio);
    std::string file_id = upload->commit();
    try {
      std::string id = ctx.service.parts().bus().create_task(
          {file_id, options_json, probed.seconds, audio.size(), request_id});
      admission.commit();
      metrics().async_submitted.with({ctx.service.parts().bus_name()}).add();
      return id;
    } catch (...) {
      storage.remove(file_id);  // no task, so no file left behind
      throw;
    }
  });
}

}  // namespace sra::http
