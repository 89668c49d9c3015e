#include "core/message_bus.h"

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

}  // namespace sra
