#include "http/multipart_parser.h"

#include <algorithm>
#include <cctype>

#include "core/errors.h"

namespace sra::http {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parameters of a header value: `type; a=b; c="d;e"`. Keys lower-cased.
std::vector<std::pair<std::string, std::string>> header_params(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::size_t eq = value.find('=', i);
    std::size_t semi = value.find(';', i);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      i = semi;
      continue;
    }
    std::string key = lower(trim(value.substr(i, eq - i)));
    std::size_t j = eq + 1;
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    std::string v;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        v += value[j++];
      }
      if (j < value.size()) ++j;  // closing quote
      i = value.find(';', j);
    } else {
      std::size_t end = value.find(';', j);
      v = std::string(trim(value.substr(j, end == std::string_view::npos ? end : end - j)));
      i = end;
    }
    out.emplace_back(std::move(key), std::move(v));
  }
  return out;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (lower(type) != "multipart/form-data") return std::nullopt;
  for (auto& [key, value] : header_params(content_type)) {
    if (key == "boundary") {
      if (value.empty() || value.size() > 200) return std::nullopt;
      return value;
    }
  }
  return std::nullopt;
}

MultipartParser::MultipartParser(std::string boundary, MultipartHandler& handler,
                                 std::size_t max_header_bytes)
    : dash_boundary_("--" + boundary),
      delimiter_("\r\n--" + boundary),
      handler_(handler),
      max_header_bytes_(max_header_bytes) {}

void MultipartParser::feed(std::string_view bytes) {
  if (state_ == State::epilogue) return;  // anything after the close delimiter is ignored
  pending_.append(bytes);
  while (step()) {
  }
}

void MultipartParser::finish() {
  if (state_ != State::epilogue) {
    throw invalid_request("multipart body ended before its closing boundary");
  }
}

// Consumes what it can from pending_; false when it needs more bytes.
bool MultipartParser::step() {
  switch (state_) {
    case State::preamble: {
      // The first boundary may open the body directly, or follow a preamble and CRLF.
      if (first_boundary_ && pending_.size() >= dash_boundary_.size() &&
          pending_.compare(0, dash_boundary_.size(), dash_boundary_) == 0) {
        pending_.erase(0, dash_boundary_.size());
        first_boundary_ = false;
        state_ = State::after_boundary;
        return true;
      }
      if (first_boundary_ && pending_.size() < dash_boundary_.size() &&
          dash_boundary_.compare(0, pending_.size(), pending_) == 0) {
        return false;
      }
      first_boundary_ = false;
      std::size_t at = pending_.find(delimiter_);
      if (at == std::string::npos) {
        if (pending_.size() > delimiter_.size()) {
          pending_.erase(0, pending_.size() - delimiter_.size());
        }
        return false;
      }
      pending_.erase(0, at + delimiter_.size());
      state_ = State::after_boundary;
      return true;
    }
    case State::after_boundary: {
      if (pending_.size() < 2) return false;
      if (pending_.compare(0, 2, "--") == 0) {
        pending_.clear();
        state_ = State::epilogue;
        return false;
      }
      // Transport padding (spaces or tabs) may follow a boundary before its CRLF.
      std::size_t i = 0;
      while (i < pending_.size() && (pending_[i] == ' ' || pending_[i] == '\t')) ++i;
      if (i + 2 > pending_.size()) {
        if (pending_.size() > 256) throw invalid_request("malformed multipart boundary line");
        return false;
      }
      if (pending_.compare(i, 2, "\r\n") != 0) {
        throw invalid_request("malformed multipart boundary line");
      }
      pending_.erase(0, i + 2);
      state_ = State::headers;
      return true;
    }
    case State::headers: {
      // A part without headers starts with the blank line at once; it is refused below for
      // lacking Content-Disposition.
      std::size_t end = pending_.compare(0, 2, "\r\n") == 0 ? 0 : pending_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (pending_.size() > max_header_bytes_) {
          throw invalid_request("multipart part headers are too large");
        }
        return false;
      }
      if (end > max_header_bytes_) throw invalid_request("multipart part headers are too large");
      parse_headers(std::string_view(pending_).substr(0, end));
      pending_.erase(0, end == 0 ? 2 : end + 4);
      state_ = State::body;
      return true;
    }
    case State::body: {
      std::size_t at = pending_.find(delimiter_);
      if (at == std::string::npos) {
        // Keep a tail that could be the start of the delimiter.
        if (pending_.size() > delimiter_.size()) {
          std::size_t emit = pending_.size() - delimiter_.size();
          handler_.on_part_data(std::string_view(pending_).substr(0, emit));
          pending_.erase(0, emit);
        }
        return false;
      }
      if (at > 0) handler_.on_part_data(std::string_view(pending_).substr(0, at));
      handler_.on_part_end();
      pending_.erase(0, at + delimiter_.size());
      state_ = State::after_boundary;
      return true;
    }
    case State::epilogue:
      pending_.clear();
      return false;
  }
  return false;
}

void MultipartParser::parse_headers(std::string_view block) {
  PartHeaders headers;
  bool has_disposition = false;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t eol = block.find("\r\n", pos);
    std::string_view line = block.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? block.size() : eol + 2;
    if (line.empty()) continue;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw invalid_request("malformed multipart part header");
    }
    std::string name = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      std::string_view kind = trim(value.substr(0, value.find(';')));
      if (lower(kind) != "form-data") {
        throw invalid_request("multipart part is not form-data");
      }
      has_disposition = true;
      for (auto& [key, v] : header_params(value)) {
        if (key == "name") headers.name = v;
        if (key == "filename") headers.filename = v;
      }
    } else if (name == "content-type") {
      headers.content_type = std::string(value);
    }
  }
  if (!has_disposition) throw invalid_request("multipart part lacks Content-Disposition");
  handler_.on_part_begin(headers);
}

}  // namespace sra::http
