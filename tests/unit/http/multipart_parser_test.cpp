#include "http/multipart_parser.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace sra::http {
namespace {

struct Part {
  PartHeaders headers;
  std::string data;
  bool ended = false;
};

class Recorder : public MultipartHandler {
 public:
  void on_part_begin(const PartHeaders& h) override { parts.push_back({h, "", false}); }
  void on_part_data(std::string_view b) override { parts.back().data.append(b); }
  void on_part_end() override { parts.back().ended = true; }
  std::vector<Part> parts;
};

const std::string kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string body_with(const std::string& file_bytes) {
  return "--" + kBoundary + "\r\n" + "Content-Disposition: form-data; name=\"language\"\r\n\r\n" +
         "en\r\n" + "--" + kBoundary + "\r\n" +
         "Content-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"c\\\".wav\"\r\n" +
         "Content-Type: audio/wav\r\n\r\n" + file_bytes + "\r\n" + "--" + kBoundary + "--\r\n";
}

// Bytes that look like pieces of the delimiter, to trip a naive search.
std::string tricky_bytes() {
  std::string s = "RIFF\r\n--\r\n--" + kBoundary.substr(0, 10) + "\r\n-";
  for (int i = 0; i < 300; ++i) s += static_cast<char>(i % 256);
  s += "\r\n--" + kBoundary.substr(0, kBoundary.size() - 1) + "X end";
  return s;
}

void expect_parsed(const std::vector<Part>& parts, const std::string& file) {
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].headers.name, "language");
  EXPECT_FALSE(parts[0].headers.filename.has_value());
  EXPECT_EQ(parts[0].data, "en");
  EXPECT_EQ(parts[1].headers.name, "file");
  EXPECT_EQ(parts[1].headers.filename, "a;b \"c\".wav");
  EXPECT_EQ(parts[1].headers.content_type, "audio/wav");
  EXPECT_EQ(parts[1].data, file);
  EXPECT_TRUE(parts[0].ended && parts[1].ended);
}

TEST(MultipartParser, WholeBody) {
  Recorder r;
  MultipartParser p(kBoundary, r);
  std::string file = tricky_bytes();
  p.feed(body_with(file));
  p.finish();
  expect_parsed(r.parts, file);
}

TEST(MultipartParser, SplitAtEveryByte) {
  std::string file = tricky_bytes();
  std::string body = body_with(file);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    Recorder r;
    MultipartParser p(kBoundary, r);
    p.feed(std::string_view(body).substr(0, cut));
    p.feed(std::string_view(body).substr(cut));
    p.finish();
    expect_parsed(r.parts, file);
    if (HasFailure()) FAIL() << "split at " << cut;
  }
}

TEST(MultipartParser, OneByteAtATime) {
  std::string file = tricky_bytes();
  std::string body = body_with(file);
  Recorder r;
  MultipartParser p(kBoundary, r);
  for (char c : body) p.feed(std::string_view(&c, 1));
  p.finish();
  expect_parsed(r.parts, file);
}

TEST(MultipartParser, PreambleEpilogueAndTransportPadding) {
  std::string body = "preamble text\r\n--" + kBoundary + "  \r\n" +
                     "content-disposition: form-data; name=file; filename=x.mp3\r\n\r\n" +
                     "DATA\r\n--" + kBoundary + "--\r\nepilogue";
  Recorder r;
  MultipartParser p(kBoundary, r);
  p.feed(body);
  p.finish();
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].headers.name, "file");
  EXPECT_EQ(r.parts[0].headers.filename, "x.mp3");
  EXPECT_EQ(r.parts[0].data, "DATA");
}

TEST(MultipartParser, EmptyFilePart) {
  std::string body = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; " +
                     "filename=\"e.wav\"\r\n\r\n\r\n--" + kBoundary + "--";
  Recorder r;
  MultipartParser p(kBoundary, r);
  p.feed(body);
  p.finish();
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].data, "");
}

void expect_invalid(const std::string& body) {
  Recorder r;
  MultipartParser p(kBoundary, r);
  try {
    p.feed(body);
    p.finish();
    FAIL() << "accepted: " << body;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_request);
  }
}

TEST(MultipartParser, MalformedBodies) {
  expect_invalid("");
  expect_invalid("no boundary at all");
  expect_invalid("--" + kBoundary +
                 "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nDATA");
  expect_invalid("--" + kBoundary + "\r\nContent-Type: text/plain\r\n\r\nDATA\r\n--" + kBoundary +
                 "--");
  expect_invalid("--" + kBoundary + "\r\nno colon here\r\n\r\nDATA\r\n--" + kBoundary + "--");
  expect_invalid("--" + kBoundary + "garbage\r\n\r\n");
  expect_invalid("--" + kBoundary +
                 "\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\nD\r\n--" + kBoundary +
                 "--");
  expect_invalid("--" + kBoundary + "\r\nX-Long: " + std::string(20000, 'a'));
}

TEST(MultipartParser, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""), "a b");
  EXPECT_EQ(multipart_boundary("application/json"), std::nullopt);
  EXPECT_EQ(multipart_boundary("multipart/form-data"), std::nullopt);
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary="), std::nullopt);
  EXPECT_EQ(multipart_boundary(""), std::nullopt);
}

}  // namespace
}  // namespace sra::http
