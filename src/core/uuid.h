// Random UUIDs (version 4) for file and task ids, and a strict check of their text form.
// Thread-safe: the bits come from the kernel's CSPRNG (getrandom), as ids are capabilities.
#pragma once

#include <string>
#include <string_view>

namespace sra {

std::string make_uuid();
// True only for the canonical lower- or upper-case 8-4-4-4-12 hex form.
bool is_uuid(std::string_view text);

}  // namespace sra
