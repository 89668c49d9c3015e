// The routes that serve fixed content: the web page (/), the OpenAPI document (/openapi.json)
// and Swagger UI (/docs and its files, from the swagger-ui-dist npm package the build installs).
#pragma once

#include <optional>
#include <string_view>

#include "http/api.h"

namespace sra::http {

// The response for `path`, or nullopt if no fixed content lives there. Thread-safe.
std::optional<Response> static_route(const ApiContext& ctx, std::string_view path);

// The embedded documents (generated from web/index.html and src/http/openapi.json).
extern const char* const kIndexHtml;
extern const char* const kOpenApiJson;

}  // namespace sra::http
