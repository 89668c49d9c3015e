#include "test_paths.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/uuid.h"

namespace sra::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("SRA_SHARED_DIR")) return env;
  return SRA_SHARED_DIR;
}

std::filesystem::path pocketsphinx_testdata() {
  return "/usr/share/pocketsphinx/test/data";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test material missing: " + path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TempDir::TempDir() : path_(std::filesystem::temp_directory_path() / ("sra-test-" + make_uuid())) {
  std::filesystem::create_directories(path_);
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace sra::test
