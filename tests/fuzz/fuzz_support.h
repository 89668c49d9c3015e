// Shared by the fuzz harnesses that need the test material: where shared/ is (SRA_SHARED_DIR, or
// ../shared next to the repository, as the tests find it). Called from LLVMFuzzerInitialize.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace sra::fuzz {

inline std::filesystem::path shared_dir() {
  if (const char* d = std::getenv("SRA_SHARED_DIR")) return d;
  return std::filesystem::path(SRA_SOURCE_DIR).parent_path() / "shared";
}

}  // namespace sra::fuzz
