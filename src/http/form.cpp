#include "http/form.h"

#include "core/errors.h"
#include "core/text.h"

namespace sra::http {

void FormCollector::on_part_begin(const PartHeaders& h) {
  if (++parts_ > limits_.max_parts) {
    throw invalid_request("the form has more than " + std::to_string(limits_.max_parts) + " parts");
  }
  current_.clear();
  field_value_.clear();
  in_clip_ = false;
  in_file_ = h.name == "file" && !has_file_;
  if (in_file_) {
    has_file_ = true;
    file_name_ = h.filename;
    return;
  }
  if (h.filename) return;  // other uploaded files are skipped
  if (policy_.known && !policy_.known(h.name)) {
    if (policy_.refuse_unknown) {
      throw invalid_field(std::string(utf8_prefix(h.name, 64)),
                          "Unknown parameter: '" + std::string(utf8_prefix(h.name, 64)) + "'.");
    }
    return;  // skipped, never stored
  }
  current_ = h.name;
  in_clip_ = policy_.clip && policy_.clip(current_);
}

void FormCollector::reserve(std::size_t more) {
  if (!memory_) return;
  const std::size_t held = file_data_.size() + clip_bytes_ + more;
  if (held <= memory_->bytes()) return;
  // Reserved a mebibyte at a time: the budget is shared by every upload in flight.
  constexpr std::size_t kStep = 1024 * 1024;
  const std::size_t need = held - memory_->bytes();
  if (!memory_->grow((need + kStep - 1) / kStep * kStep) && !memory_->grow(need)) {
    throw unavailable("uploads held in memory have reached MAX_BUFFERED_UPLOAD_BYTES; retry later")
        .set_retry_after(2);
  }
}

void FormCollector::on_part_data(std::string_view bytes) {
  if (in_file_) {
    file_bytes_ += bytes.size();
    if (file_bytes_ + clip_bytes_ > limits_.max_file_bytes) {
      throw too_large("upload is larger than MAX_UPLOAD_BYTES (" +
                      std::to_string(limits_.max_file_bytes) + " bytes)");
    }
    reserve(bytes.size());
    file_data_.append(bytes);
  } else if (in_clip_) {
    if (field_value_.size() + bytes.size() > limits_.max_clip_field_bytes) {
      throw invalid_field(current_, "holds a clip longer than " +
                                        std::to_string(limits_.max_clip_field_bytes) + " bytes");
    }
    if (file_bytes_ + clip_bytes_ + bytes.size() > limits_.max_file_bytes) {
      throw too_large("upload is larger than MAX_UPLOAD_BYTES (" +
                      std::to_string(limits_.max_file_bytes) + " bytes)");
    }
    reserve(bytes.size());
    clip_bytes_ += bytes.size();
    field_value_.append(bytes);
  } else if (!current_.empty()) {
    if (field_value_.size() + bytes.size() > limits_.max_field_bytes) {
      throw invalid_field(current_,
                          "is longer than " + std::to_string(limits_.max_field_bytes) + " bytes");
    }
    fields_bytes_ += bytes.size();
    if (fields_bytes_ > limits_.max_fields_bytes) {
      throw invalid_request("the form's fields hold more than " +
                            std::to_string(limits_.max_fields_bytes) + " bytes");
    }
    field_value_.append(bytes);
  }
}

void FormCollector::on_part_end() {
  if (in_clip_) {
    lists_[current_].push_back(std::move(field_value_));
  } else if (!in_file_ && !current_.empty()) {
    std::string& value = fields_[current_];
    bool list = current_.size() > 2 && current_.compare(current_.size() - 2, 2, "[]") == 0;
    if (list) lists_[current_].push_back(field_value_);
    if (list && !value.empty()) {
      value += "," + field_value_;
    } else {
      value = field_value_;
    }
  }
  field_value_.clear();
  in_clip_ = false;
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
