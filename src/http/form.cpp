#include "http/form.h"

#include "core/errors.h"

namespace sra::http {

namespace {
constexpr std::size_t kMaxFieldBytes = 64 * 1024;
}

void FormCollector::on_part_begin(const PartHeaders& h) {
  current_ = h.name;
  field_value_.clear();
  in_file_ = h.name == "file" && !has_file_;
  if (in_file_) {
    has_file_ = true;
    file_name_ = h.filename;
  }
  if (!in_file_ && h.filename) current_.clear();  // other uploaded files are ignored
}

void FormCollector::on_part_data(std::string_view bytes) {
  if (in_file_) {
    file_bytes_ += bytes.size();
    if (file_bytes_ > max_file_bytes_) {
      throw too_large("upload is larger than MAX_UPLOAD_BYTES (" + std::to_string(max_file_bytes_) +
                      " bytes)");
    }
    file_data_.append(bytes);
  } else if (!current_.empty()) {
    if (field_value_.size() + bytes.size() > kMaxFieldBytes) {
      throw invalid_request("form field '" + current_ + "' is too long");
    }
    field_value_.append(bytes);
  }
}

void FormCollector::on_part_end() {
  if (!in_file_ && !current_.empty()) {
    std::string& value = fields_[current_];
    bool list = current_.size() > 2 && current_.compare(current_.size() - 2, 2, "[]") == 0;
    if (list && !value.empty()) {
      value += "," + field_value_;
    } else {
      value = field_value_;
    }
  }
  in_file_ = false;
  current_.clear();
}

std::string form_boundary(const RequestParser::value_type& request) {
  auto boundary = multipart_boundary(request[boost::beast::http::field::content_type]);
  if (!boundary) throw invalid_request("expected a multipart/form-data body with a 'file' field");
  return *boundary;
}

void check_declared_length(const RequestParser::value_type& request, std::size_t max_upload) {
  auto length = request[boost::beast::http::field::content_length];
  if (length.empty()) return;
  std::uint64_t declared = 0;
  try {
    declared = std::stoull(std::string(length));
  } catch (...) {
    return;  // the parser already validated it
  }
  if (declared > max_upload + kMultipartOverhead) {
    throw too_large("upload is larger than MAX_UPLOAD_BYTES (" + std::to_string(max_upload) +
                    " bytes)");
  }
}

boost::asio::awaitable<void> read_form(const RequestParser::value_type& request, BodyReader& body,
                                       FormCollector& form, std::size_t max_upload) {
  std::string boundary = form_boundary(request);
  check_declared_length(request, max_upload);
  MultipartParser parser(boundary, form);
  while (auto piece = co_await body.next()) parser.feed(*piece);
  parser.finish();
}

}  // namespace sra::http
