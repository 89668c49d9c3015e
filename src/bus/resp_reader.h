// RESP (Redis serialization protocol, version 2) replies: the value type and a strict, bounded
// parser of one reply from a byte buffer. The server's bytes are not trusted: a byte that is not
// RESP, a length past the bounds or nesting too deep is an error, never a crash or an unbounded
// allocation. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sra::bus {

struct RedisReply {
  enum class Type { nil, string, integer, array, status, error } type = Type::nil;
  std::string str;                   // string, status and error replies
  long long integer = 0;             // integer replies
  std::vector<RedisReply> elements;  // array replies
  bool is_nil() const { return type == Type::nil; }
};

struct RespLimits {
  std::size_t max_bulk_bytes = 512u << 20;  // Redis's own proto-max-bulk-len default
  std::size_t max_elements = 1u << 24;      // elements of one array
  std::size_t max_line_bytes = 64u << 10;   // a status, error or length line
  int max_depth = 16;                       // arrays within arrays
};

// Parses the reply at the start of `data` into `out`. Returns the bytes it took, or 0 when
// `data` does not hold a whole reply yet (read more and call again). Throws
// sra::Error(unavailable) "Redis protocol error: ..." for bytes that break the protocol or the
// limits.
std::size_t parse_resp_reply(std::string_view data, RedisReply& out, const RespLimits& limits = {});

// The RESP encoding of a command: an array of bulk strings.
std::string encode_resp_command(const std::vector<std::string>& argv);

}  // namespace sra::bus
