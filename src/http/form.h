// Reading a multipart/form-data request the way the API's routes need it: the first `file` part
// and small text fields, with the upload limit enforced as the bytes arrive. Also the helper that
// runs blocking or CPU-heavy work on a pool from a connection's coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <string>

#include "http/body_reader.h"
#include "http/multipart_parser.h"

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

// Collects the form: the first `file` part (into file_data(), which a streaming reader may take
// from as it grows) and text fields up to 64 KiB each. Other file parts are ignored. Fields named
// `x[]` collect every value, comma-separated.
class FormCollector : public MultipartHandler {
 public:
  explicit FormCollector(std::size_t max_file_bytes) : max_file_bytes_(max_file_bytes) {}

  void on_part_begin(const PartHeaders& h) override;
  void on_part_data(std::string_view bytes) override;
  void on_part_end() override;

  bool has_file() const { return has_file_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  const std::optional<std::string>& file_name() const { return file_name_; }
  std::string& file_data() { return file_data_; }
  const std::map<std::string, std::string>& fields() const { return fields_; }

 private:
  std::size_t max_file_bytes_;
  std::string current_;
  bool in_file_ = false;
  bool has_file_ = false;
  std::uint64_t file_bytes_ = 0;
  std::optional<std::string> file_name_;
  std::string file_data_;
  std::string field_value_;
  std::map<std::string, std::string> fields_;
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
