// Where the unit tests find their material, and small helpers shared by them.
#pragma once

#include <filesystem>
#include <string>

namespace sra::test {

// ../shared beside the repository (SRA_SHARED_DIR), or $SRA_SHARED_DIR if set.
std::filesystem::path shared_dir();
// Debian's pocketsphinx-testdata clips.
std::filesystem::path pocketsphinx_testdata();
std::string read_file(const std::filesystem::path& path);

// A fresh empty folder under the system temp folder, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace sra::test
