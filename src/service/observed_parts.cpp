#include "service/observed_parts.h"

#include "core/errors.h"
#include "service/metrics.h"

namespace sra {
namespace {

// Runs f(), counting a failure of the part (not one of the caller's input) under `operation`.
// The series exists from the first call, failed or not: a scrape tells "no failures" (0) from
// "never called" (no series).
template <typename F>
auto counted(const char* part, const char* operation, F f) -> decltype(f()) {
  auto& errors = metrics().part_errors.with({part, operation});
  try {
    return f();
  } catch (const Error& e) {
    if (!e.is_permanent() && e.kind() != ErrorKind::not_implemented &&
        e.kind() != ErrorKind::cancelled) {
      errors.add();
    }
    throw;
  } catch (...) {
    errors.add();
    throw;
  }
}

class ObservedUpload final : public FileUpload {
 public:
  explicit ObservedUpload(std::unique_ptr<FileUpload> inner) : inner_(std::move(inner)) {}
  void write(std::span<const char> bytes) override {
    counted("storage", "write", [&] { inner_->write(bytes); });
  }
  std::string commit() override {
    return counted("storage", "commit", [&] { return inner_->commit(); });
  }

 private:
  std::unique_ptr<FileUpload> inner_;
};

class ObservedStorage final : public FileStorage {
 public:
  explicit ObservedStorage(std::unique_ptr<FileStorage> inner) : inner_(std::move(inner)) {}
  std::unique_ptr<FileUpload> begin_upload() override {
    return std::make_unique<ObservedUpload>(
        counted("storage", "begin_upload", [&] { return inner_->begin_upload(); }));
  }
  std::string read(const std::string& file_id) override {
    return counted("storage", "read", [&] { return inner_->read(file_id); });
  }
  void remove(const std::string& file_id) override {
    counted("storage", "remove", [&] { inner_->remove(file_id); });
  }
  void check_ready() override {
    counted("storage", "check_ready", [&] { inner_->check_ready(); });
  }
  std::optional<std::uint64_t> free_bytes() override {
    return counted("storage", "free_bytes", [&] { return inner_->free_bytes(); });
  }

 private:
  std::unique_ptr<FileStorage> inner_;
};

class ObservedBus final : public MessageBus {
 public:
  explicit ObservedBus(std::unique_ptr<MessageBus> inner) : inner_(std::move(inner)) {}
  std::string create_task(const TaskRequest& request) override {
    return counted("bus", "create_task", [&] { return inner_->create_task(request); });
  }
  std::optional<TaskResult> get_task_result(const std::string& task_id) override {
    return counted("bus", "get_task_result", [&] { return inner_->get_task_result(task_id); });
  }
  void run_worker(const WorkerOptions& options, const TaskHandler& handler,
                  std::stop_token stop) override {
    counted("bus", "run_worker", [&] { inner_->run_worker(options, handler, stop); });
  }
  std::optional<CancelOutcome> cancel_task(const std::string& task_id,
                                           std::string* file_id) override {
    return counted("bus", "cancel_task", [&] { return inner_->cancel_task(task_id, file_id); });
  }
  void check_ready() override {
    counted("bus", "check_ready", [&] { inner_->check_ready(); });
  }
  std::optional<Backlog> backlog() override {
    return counted("bus", "backlog", [&] { return inner_->backlog(); });
  }
  std::optional<std::int64_t> queue_position(const std::string& task_id) override {
    return counted("bus", "queue_position", [&] { return inner_->queue_position(task_id); });
  }

 private:
  std::unique_ptr<MessageBus> inner_;
};

}  // namespace

PartHooks observed_part_hooks() {
  PartHooks hooks;
  hooks.model_built = [](const std::string& name, double seconds) {
    metrics().model_load_seconds.with({name}).set(seconds);
  };
  hooks.wrap_storage = [](std::unique_ptr<FileStorage> storage) -> std::unique_ptr<FileStorage> {
    return std::make_unique<ObservedStorage>(std::move(storage));
  };
  hooks.wrap_bus = [](std::unique_ptr<MessageBus> bus) -> std::unique_ptr<MessageBus> {
    return std::make_unique<ObservedBus>(std::move(bus));
  };
  return hooks;
}

}  // namespace sra
