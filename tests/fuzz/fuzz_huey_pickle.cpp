// libFuzzer harness: the pickle reader behind the Huey bus (bus/pickle.h, bus/huey_wire.h) and
// the RESP reader behind every Redis client (bus/resp_reader.h). Bytes from a shared Redis are
// hostile. Properties: no crash, no hang, no leak (cycles included); refusals are PickleError or
// sra::Error; a message that is read is written back and read again to the same fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/huey_wire.h"
#include "bus/resp_reader.h"
#include "core/errors.h"

using namespace sra::bus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    huey::Message m = huey::read_message(bytes);
    huey::Message again = huey::read_message(huey::write_message(m));
    if (again.id != m.id || again.name != m.name || again.args != m.args ||
        again.kwargs != m.kwargs || again.retries != m.retries)
      __builtin_trap();  // the writer and the reader disagree
  } catch (const pickle::PickleError&) {
  }
  try {
    huey::read_result(bytes);
  } catch (const pickle::PickleError&) {
  }
  try {
    huey::revokes(bytes, 0);
  } catch (const pickle::PickleError&) {
  }
  try {
    RedisReply reply;
    RespLimits limits;
    limits.max_bulk_bytes = 1 << 20;
    std::size_t used = parse_resp_reply(bytes, reply, limits);
    if (used > size) __builtin_trap();
  } catch (const sra::Error&) {
  }
  return 0;
}
