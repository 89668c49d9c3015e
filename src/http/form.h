// Reading a multipart/form-data request the way the API's routes need it: the first `file` part
// and small text fields, with the upload limit enforced as the bytes arrive. Also the helper that
// runs blocking or CPU-heavy work on a pool from a connection's coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "http/body_reader.h"
#include "http/multipart_parser.h"
#include "service/memory_budget.h"

namespace sra::http {

inline constexpr std::size_t kMultipartOverhead = 1024 * 1024;  // boundaries and small fields

// Runs `f` on `executor`'s threads and resumes the caller with its result (or exception).
template <typename Executor, typename F>
auto run_on(Executor executor, F f) -> boost::asio::awaitable<decltype(f())> {
  co_return co_await boost::asio::co_spawn(
      executor,
      [f = std::move(f)]() mutable -> boost::asio::awaitable<decltype(f())> { co_return f(); },
      boost::asio::use_awaitable);
}

// What a form may hold besides its file. Every text field counts against `max_parts` and its
// bytes against `max_field_bytes` (one field) and `max_fields_bytes` (all of them).
struct FormLimits {
  std::size_t max_file_bytes = 25 * 1024 * 1024;       // the `file` part (MAX_UPLOAD_BYTES)
  std::size_t max_parts = 64;                          // parts of every kind, the file included
  std::size_t max_field_bytes = 64 * 1024;             // one text field's value
  std::size_t max_fields_bytes = 256 * 1024;           // all text fields' values together
  std::size_t max_clip_field_bytes = 4 * 1024 * 1024;  // one audio clip field's value
};

// Which text fields a route takes. A field it does not know is never stored: it is refused
// (sra::Error(invalid_request) naming it) when `refuse_unknown`, else skipped, as FastAPI skips
// the fields a route does not declare.
struct FieldPolicy {
  std::function<bool(std::string_view name)> known;  // empty: every field is known
  bool refuse_unknown = false;
  // Known fields whose values are audio clips (data URLs such as OpenAI's
  // known_speaker_references[]): each at most `max_clip_field_bytes`, and together with the file
  // within `max_file_bytes` and the memory reservation; kept in lists() only. May be empty.
  std::function<bool(std::string_view name)> clip;
};

// Collects the form: the first `file` part (into file_data(), which a streaming reader may take
// from as it grows) and the known text fields within FormLimits. Other file parts are skipped.
// Fields named `x[]` collect every value, comma-separated in fields() and one by one in lists().
// When given a memory reservation, the bytes of the file and of the clip fields are reserved from
// it as they arrive (sra::Error(unavailable) when the budget is spent); the reservation is the
// caller's and outlives the bytes.
class FormCollector : public MultipartHandler {
 public:
  FormCollector(FormLimits limits, FieldPolicy policy, MemoryBudget::Reservation* memory = nullptr)
      : limits_(limits), policy_(std::move(policy)), memory_(memory) {}

  void on_part_begin(const PartHeaders& h) override;
  void on_part_data(std::string_view bytes) override;
  void on_part_end() override;

  bool has_file() const { return has_file_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  const std::optional<std::string>& file_name() const { return file_name_; }
  std::string& file_data() { return file_data_; }
  const std::map<std::string, std::string>& fields() const { return fields_; }
  // Every value of each `x[]` field in the order sent, and of each clip field.
  std::map<std::string, std::vector<std::string>>& lists() { return lists_; }

 private:
  FormLimits limits_;
  FieldPolicy policy_;
  MemoryBudget::Reservation* memory_;
  // Reserves what the file and clip fields hold plus `more` bytes; throws when it cannot.
  void reserve(std::size_t more);

  std::string current_;   // the text field being read ("" for a skipped part)
  bool in_clip_ = false;  // current_ is a clip field
  bool in_file_ = false;
  bool has_file_ = false;
  std::size_t parts_ = 0;
  std::size_t fields_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;
  std::size_t clip_bytes_ = 0;  // of every clip field, the one being read included
  std::optional<std::string> file_name_;
  std::string file_data_;
  std::string field_value_;
  std::map<std::string, std::string> fields_;
  std::map<std::string, std::vector<std::string>> lists_;
};

// The multipart boundary of the request; throws sra::Error(invalid_request) if it is not a
// multipart/form-data request.
std::string form_boundary(const RequestParser::value_type& request);
// Throws sra::Error(too_large) if the declared Content-Length cannot fit the upload limit.
void check_declared_length(const RequestParser::value_type& request, std::size_t max_upload);
// Reads the whole form, the file into memory (once).
boost::asio::awaitable<void> read_form(const RequestParser::value_type& request, BodyReader& body,
                                       FormCollector& form, std::size_t max_upload);

}  // namespace sra::http
