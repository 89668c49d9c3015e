// The parts built into this binary, under their short names and the seed's class paths.
#pragma once

#include <vector>

#include "core/option_table.h"
#include "core/parts.h"

namespace sra {

PartCatalogs builtin_part_catalogs();

// The request options the built-in models accept (Whisper's table; PocketSphinx has none), for
// the README table and the OpenAPI document.
const std::vector<OptionSpec>& builtin_request_options();

}  // namespace sra
