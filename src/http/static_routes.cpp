#include "http/static_routes.h"

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/option_table.h"
#include "http/deepgram_api.h"
#include "http/formats.h"
#include "http/openai_api.h"
#include "service/builtin_parts.h"
#include "service/chunking.h"
#include "service/speaker_labels.h"
#include "service/voice_activity.h"

namespace sra::http {
namespace {

Response content(std::string_view type, std::string body) {
  Response res{beast_http::status::ok, 11};
  res.set(beast_http::field::content_type, type);
  res.set(beast_http::field::cache_control, "no-cache");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

constexpr const char* kDocsHtml = R"html(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>speech-recognition-api - API docs</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});
  </script>
</body>
</html>
)html";

// Swagger UI's files, by the names /docs serves; nothing else is ever read from disk.
const std::map<std::string_view, std::string_view>& docs_files() {
  static const std::map<std::string_view, std::string_view> files = {
      {"swagger-ui.css", "text/css"},
      {"swagger-ui-bundle.js", "application/javascript"},
      {"swagger-ui-standalone-preset.js", "application/javascript"},
      {"favicon-32x32.png", "image/png"},
  };
  return files;
}

std::optional<std::string> read_cached(const std::filesystem::path& path) {
  static std::mutex mutex;
  static std::map<std::string, std::string> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(path.string()); it != cache.end()) return it->second;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream bytes;
  bytes << in.rdbuf();
  return cache[path.string()] = bytes.str();
}

// The compiled-in document with every model option added from the option table, so that the
// documented fields, types and bounds are the ones the server enforces.
std::string build_openapi_document() {
  namespace json = boost::json;
  json::value doc = json::parse(kOpenApiJson);
  json::object options = options_schema_properties(builtin_request_options());
  auto& schemas = doc.at("components").at("schemas").as_object();
  auto add = [&](const char* schema, bool keep_existing) {
    auto& props = schemas.at(schema).as_object().at("properties").as_object();
    for (const auto& [name, spec] : options) {
      if (keep_existing && props.contains(name)) continue;  // OpenAI's own definition stays
      props[name] = spec;
    }
  };
  add("SeedUpload", false);
  add("TranscriptionRequest", true);
  add("TranslationRequest", true);
  // Voice activity detection, chunking and diarization belong to every transcription route.
  for (const auto* table :
       {&vad_option_specs(), &chunking_option_specs(), &diarization_option_specs()}) {
    for (const auto& [name, spec] : options_schema_properties(*table)) {
      for (const char* schema : {"SeedUpload", "TranscriptionRequest", "TranslationRequest"})
        schemas.at(schema).as_object().at("properties").as_object()[name] = spec;
    }
  }
  // The async route's form: the sync route's, and the task's webhook.
  json::object async_upload = schemas.at("SeedUpload").as_object();
  async_upload["properties"].as_object()["callback_url"] = json::object{
      {"type", "string"},
      {"maxLength", 2048},
      {"description",
       "An http(s) URL the task's result is POSTed to when it ends, signed as Standard Webhooks "
       "say (needs WEBHOOK_SECRET; a private host only when WEBHOOK_ALLOW_HOSTS names it)"}};
  schemas["AsyncUpload"] = std::move(async_upload);
  // The diarization route's fields, from its table.
  for (const auto& [name, spec] : options_schema_properties(diarization_route_specs()))
    schemas.at("DiarizationRequest").as_object().at("properties").as_object()[name] = spec;
  // The subtitle layout fields belong to the OpenAI routes' srt and vtt.
  for (const auto& [name, spec] : options_schema_properties(subtitle_option_specs())) {
    for (const char* schema : {"TranscriptionRequest", "TranslationRequest"})
      schemas.at(schema).as_object().at("properties").as_object()[name] = spec;
  }
  // Deepgram's query parameters, from their tables: the POST's, and the live connection's more.
  auto add_query_parameters = [](json::array& out, const std::vector<OptionSpec>& table) {
    for (const auto& [name, schema] : options_schema_properties(table)) {
      json::object parameter{
          {"name", name}, {"in", "query"}, {"required", false}, {"schema", schema}};
      if (const auto* doc_text = schema.as_object().if_contains("description")) {
        parameter["description"] = *doc_text;
      }
      out.push_back(std::move(parameter));
    }
  };
  json::array parameters;
  add_query_parameters(parameters, deepgram_option_specs());
  json::array live_parameters = parameters;
  add_query_parameters(live_parameters, deepgram_live_option_specs());
  doc.at("paths").at("/v1/listen").at("post").as_object()["parameters"] = std::move(parameters);
  doc.at("paths").at("/v1/listen").at("get").as_object()["parameters"] = std::move(live_parameters);
  return json::serialize(doc);
}

}  // namespace

const std::string& openapi_document() {
  static const std::string doc = build_openapi_document();
  return doc;
}

std::optional<Response> static_route(const ApiContext& ctx, std::string_view path) {
  if (path == "/") return content("text/html; charset=utf-8", kIndexHtml);
  if (path == "/openapi.json") return content("application/json", openapi_document());
  if (path == "/docs" || path == "/docs/") return content("text/html; charset=utf-8", kDocsHtml);
  constexpr std::string_view kDocs = "/docs/";
  if (path.starts_with(kDocs)) {
    auto it = docs_files().find(path.substr(kDocs.size()));
    if (it == docs_files().end()) return std::nullopt;
    auto bytes = read_cached(std::filesystem::path(ctx.web_assets_dir) / std::string(it->first));
    if (!bytes) {
      return detail_response(beast_http::status::service_unavailable,
                             "Swagger UI is not installed: WEB_ASSETS_DIR=" + ctx.web_assets_dir +
                                 " has no " + std::string(it->first) +
                                 " (the build installs swagger-ui-dist with npm)");
    }
    return content(it->second, *bytes);
  }
  return std::nullopt;
}

}  // namespace sra::http
