// The parts built into this binary, under their short names and the seed's class paths.
#pragma once

#include "core/parts.h"

namespace sra {

PartCatalogs builtin_part_catalogs();

}  // namespace sra
