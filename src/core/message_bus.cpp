#include "core/message_bus.h"

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra {

const char* to_string(TaskStatus status) {
  switch (status) {
    case TaskStatus::pending:
      return "PENDING";
    case TaskStatus::success:
      return "SUCCESS";
    case TaskStatus::failed:
      return "FAILED";
  }
  return "PENDING";
}

boost::json::value to_json(const TaskProgress& p) {
  boost::json::array segments;
  for (const auto& s : p.segments) segments.push_back(to_json(s));
  return boost::json::object{{"progress", p.fraction}, {"segments", std::move(segments)}};
}

TaskProgress task_progress_from_json(const boost::json::value& v) {
  TaskProgress p;
  try {
    const auto& o = v.as_object();
    p.fraction = o.at("progress").to_number<double>();
    for (const auto& s : o.at("segments").as_array()) p.segments.push_back(segment_from_json(s));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw internal_error(std::string("stored progress is not valid: ") + e.what());
  }
  return p;
}

std::optional<CancelOutcome> MessageBus::cancel_task(const std::string& /*task_id*/,
                                                     std::string* /*file_id*/) {
  throw not_implemented("the configured MESSAGE_BUS cannot cancel tasks");
}

}  // namespace sra
