#include "storage/local_storage.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/uuid.h"

namespace sra {
namespace {

namespace fs = std::filesystem;

std::string errno_text() {
  return std::strerror(errno);
}

class LocalUpload final : public FileUpload {
 public:
  LocalUpload(fs::path folder) : folder_(std::move(folder)), id_(make_uuid()) {
    temp_ = folder_ / ("." + id_ + ".part");
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      std::string why = errno_text();
      spdlog::error("local storage: cannot create {}: {}", temp_.string(), why);
      throw unavailable("local storage: cannot create a file in LOCAL_STORAGE_FOLDER_PATH (" + why +
                        ")");
    }
  }

  ~LocalUpload() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  void write(std::span<const char> bytes) override {
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        std::string why = errno_text();
        spdlog::error("local storage: cannot write {}: {}", temp_.string(), why);
        throw unavailable("local storage: cannot write to LOCAL_STORAGE_FOLDER_PATH (" + why + ")");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  std::string commit() override {
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      std::string why = errno_text();
      fd_ = -1;
      spdlog::error("local storage: cannot flush {}: {}", temp_.string(), why);
      throw unavailable("local storage: cannot flush a file in LOCAL_STORAGE_FOLDER_PATH (" + why +
                        ")");
    }
    fd_ = -1;
    fs::path final_path = folder_ / id_;
    if (::rename(temp_.c_str(), final_path.c_str()) != 0) {
      std::string why = errno_text();
      spdlog::error("local storage: cannot rename to {}: {}", final_path.string(), why);
      throw unavailable("local storage: cannot store a file in LOCAL_STORAGE_FOLDER_PATH (" + why +
                        ")");
    }
    committed_ = true;
    // The rename is durable only once the folder itself is synced.
    int dir = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || ::fsync(dir) != 0) {
      std::string why = errno_text();
      if (dir >= 0) ::close(dir);
      ::unlink(final_path.c_str());
      spdlog::error("local storage: cannot sync {}: {}", folder_.string(), why);
      throw unavailable("local storage: cannot sync LOCAL_STORAGE_FOLDER_PATH (" + why + ")");
    }
    ::close(dir);
    return id_;
  }

 private:
  fs::path folder_;
  std::string id_;
  fs::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

class LocalStorage final : public FileStorage {
 public:
  explicit LocalStorage(LocalStorageOptions options) : options_(std::move(options)) {
    std::error_code ec;
    fs::create_directories(options_.folder, ec);
    if (ec || !fs::is_directory(options_.folder)) {
      throw config_error("LOCAL_STORAGE_FOLDER_PATH=" + options_.folder.string() +
                         " cannot be created: " + (ec ? ec.message() : "not a directory"));
    }
    sweep_stale_parts();
  }

  std::unique_ptr<FileUpload> begin_upload() override {
    return std::make_unique<LocalUpload>(options_.folder);
  }

  std::string read(const std::string& file_id) override {
    if (!is_uuid(file_id)) throw not_found("no file with id '" + file_id + "'");
    fs::path path = options_.folder / file_id;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw not_found("no file with id '" + file_id + "'");
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (in.bad()) {
      spdlog::error("local storage: cannot read {}", path.string());
      throw unavailable("local storage: cannot read a file in LOCAL_STORAGE_FOLDER_PATH");
    }
    return std::move(bytes).str();
  }

  void check_ready() override {
    if (::access(options_.folder.c_str(), W_OK | X_OK) != 0) {
      std::string why = errno_text();
      spdlog::error("local storage: {} is not writable: {}", options_.folder.string(), why);
      throw unavailable("LOCAL_STORAGE_FOLDER_PATH is not writable (" + why + ")");
    }
  }

  std::optional<std::uint64_t> free_bytes() override {
    struct statvfs st {};
    if (::statvfs(options_.folder.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

  void remove(const std::string& file_id) override {
    if (!is_uuid(file_id)) return;
    std::error_code ec;
    fs::remove(options_.folder / file_id, ec);
  }

 private:
  // Unfinished uploads (".<uuid>.part") left by a process that died mid-upload, older than any
  // upload can take, are removed when the storage starts.
  void sweep_stale_parts() {
    std::error_code ec;
    auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
    int removed = 0;
    for (const auto& entry : fs::directory_iterator(options_.folder, ec)) {
      std::string name = entry.path().filename().string();
      if (name.size() < 6 || name[0] != '.' || !name.ends_with(".part")) continue;
      std::error_code ignored;
      if (entry.last_write_time(ignored) < cutoff && !ignored) {
        fs::remove(entry.path(), ignored);
        if (!ignored) ++removed;
      }
    }
    if (removed)
      spdlog::info("local storage: removed {} unfinished uploads older than a day", removed);
  }

  LocalStorageOptions options_;
};

}  // namespace

LocalStorageOptions local_storage_options_from(const Config& config) {
  LocalStorageOptions o;
  o.folder = config.get_string("LOCAL_STORAGE_FOLDER_PATH");
  return o;
}

std::unique_ptr<FileStorage> make_local_storage(const LocalStorageOptions& options) {
  return std::make_unique<LocalStorage>(options);
}

}  // namespace sra
