#include "service/catalog_model_loader.h"

#include <spdlog/spdlog.h>

#include "models/model_pull.h"

namespace sra::detail {

// The model and its pull, shared with the pull's thread.
struct ModelFetch::State {
  std::mutex mutex;
  std::condition_variable changed;  // a pull ended
  std::shared_ptr<const void> model;
  bool running = false;                            // a pull is in progress
  std::optional<std::string> failure;              // why the last pull failed
  std::chrono::steady_clock::time_point retry_at;  // no new pull before this
  double retry_after_seconds = 15;                 // doubled at each failure
  std::atomic<bool> stopping{false};               // the loader is being destroyed
};

ModelFetch::ModelFetch(CatalogModelSource source, Load load)
    : source_(std::move(source)), load_(std::move(load)), state_(std::make_shared<State>()) {}

ModelFetch::~ModelFetch() {
  state_->stopping = true;
  if (puller_.joinable()) puller_.join();
}

std::shared_ptr<const void> ModelFetch::get() {
  std::lock_guard lock(state_->mutex);
  if (state_->model) return state_->model;
  if (!source_.path.empty()) {
    state_->model = load_(source_.path);
    return state_->model;
  }
  const CatalogModel* found = find_catalog_model(source_.catalog_name);
  if (!found) {
    throw config_error("the " + source_.what + " " + source_.catalog_name +
                       " is not in the catalog (`speech-recognition-api models list`)");
  }
  const CatalogModel& m = *found;
  const std::filesystem::path path = catalog_model_path(m, source_.models_dir);
  if (std::filesystem::exists(path)) {
    state_->model = load_(path);
    return state_->model;
  }
  if (!source_.download) {
    throw config_error("the " + source_.what + " " + path.string() +
                       " is missing and MODEL_DOWNLOAD=false: run `speech-recognition-api "
                       "models pull " +
                       m.name + "` first");
  }
  const auto now = std::chrono::steady_clock::now();
  if (state_->running) {
    throw unavailable("the " + source_.what + " " + m.name + " is being pulled; retry in a moment")
        .set_retry_after(5);
  }
  if (state_->failure && now < state_->retry_at) {
    throw config_error(*state_->failure)
        .set_retry_after(std::chrono::duration<double>(state_->retry_at - now).count());
  }
  // The pull (a download) runs on a thread of its own, never on a request's.
  state_->running = true;
  spdlog::info("pulling {} {} into {} (once)", source_.what, m.name, source_.models_dir.string());
  PullOptions pull;
  pull.models_dir = source_.models_dir;
  pull.sources = source_.sources;
  pull.cancelled = [state = state_.get()] { return state->stopping.load(); };
  if (puller_.joinable()) puller_.join();  // the last pull ended (running is false)
  puller_ = std::thread([state = state_, &m, pull, load = load_, what = source_.what] {
    std::shared_ptr<const void> loaded;
    std::optional<std::string> failure;
    auto failed = [&](const std::string& why) {
      failure = "the " + what + " " + m.name + " could not be pulled: " + why +
                " (run `speech-recognition-api models pull " + m.name + "`)";
      spdlog::error("{}", *failure);
    };
    try {
      loaded = load(pull_model(m, pull));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) return;  // the loader is going away
      failed(e.what());
    } catch (const std::exception& e) {
      failed(e.what());
    }
    std::lock_guard lock(state->mutex);
    state->running = false;
    state->model = loaded;
    state->failure = failure;
    state->changed.notify_all();
    if (failure) {
      // Tried again no sooner than this: 30 s, doubling up to an hour.
      state->retry_after_seconds = std::min(state->retry_after_seconds * 2, 3600.0);
      state->retry_at = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(state->retry_after_seconds));
    }
  });
  throw unavailable("the " + source_.what + " " + m.name + " is being pulled; retry in a moment")
      .set_retry_after(5);
}

void ModelFetch::prefetch() {
  try {
    get();
  } catch (const Error&) {
    // Being pulled, or failed (logged): the requests that need it are told.
  }
}

void ModelFetch::wait() {
  std::unique_lock lock(state_->mutex);
  state_->changed.wait(lock, [this] { return !state_->running; });
  if (state_->failure) throw config_error(*state_->failure);
}

}  // namespace sra::detail
