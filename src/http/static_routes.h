// The routes that serve fixed content: the web page (/), the OpenAPI document (/openapi.json)
// and Swagger UI (/docs and its files, from the swagger-ui-dist npm package the build installs).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/api.h"

namespace sra::http {

// The response for `path`, or nullopt if no fixed content lives there. Thread-safe.
std::optional<Response> static_route(const ApiContext& ctx, std::string_view path);

// The embedded documents (generated from web/index.html and src/http/openapi.json).
extern const char* const kIndexHtml;
extern const char* const kOpenApiJson;
// The OpenAPI document served at /openapi.json: kOpenApiJson with the model options of the option
// table added to the upload schemas. Built once; thread-safe.
const std::string& openapi_document();

}  // namespace sra::http
