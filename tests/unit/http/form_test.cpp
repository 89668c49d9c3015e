// The form collector the upload routes use: repeated fields kept one by one, clip fields (audio
// as data URLs) bounded on their own and together with the file.
#include "http/form.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "http/multipart_parser.h"

namespace sra::http {
namespace {

const std::string kFormBoundary = "b0undary";

std::string form_part(const std::string& name, const std::string& value, bool file = false) {
  return "--" + kFormBoundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"" +
         (file ? "; filename=\"a.wav\"" : "") + "\r\n\r\n" + value + "\r\n";
}

// Parses `body` (the parts, closed here) into `form`; the error's field, or "" when accepted.
std::string collect_form(FormCollector& form, const std::string& parts) {
  try {
    MultipartParser parser(kFormBoundary, form);
    parser.feed(parts + "--" + kFormBoundary + "--\r\n");
    parser.finish();
  } catch (const Error& e) {
    return e.field().value_or(e.what());
  }
  return "";
}

bool is_clip_field(std::string_view name) {
  return name == "clips[]";
}

TEST(FormCollector, RepeatedFieldsAreKeptOneByOne) {
  FormCollector form(FormLimits{}, FieldPolicy{.clip = is_clip_field});
  ASSERT_EQ(collect_form(form, form_part("names[]", "Doe, Jane") + form_part("names[]", "Roe") +
                                   form_part("clips[]", "data:audio/wav;base64,AAAA") +
                                   form_part("file", "RIFF", true)),
            "");
  EXPECT_EQ(form.fields().at("names[]"), "Doe, Jane,Roe");  // comma-joined, as before
  EXPECT_EQ(form.lists().at("names[]"), (std::vector<std::string>{"Doe, Jane", "Roe"}));
  EXPECT_EQ(form.lists().at("clips[]"), (std::vector<std::string>{"data:audio/wav;base64,AAAA"}));
  EXPECT_FALSE(form.fields().count("clips[]"));  // clips only in lists()
  EXPECT_EQ(form.file_data(), "RIFF");
}

TEST(FormCollector, ClipsHaveTheirOwnBoundAndShareTheFilesWithIt) {
  // A clip may be longer than a text field, not longer than its own bound.
  FormCollector big(
      FormLimits{.max_file_bytes = 1000, .max_field_bytes = 10, .max_clip_field_bytes = 100},
      FieldPolicy{.clip = is_clip_field});
  EXPECT_EQ(collect_form(big, form_part("clips[]", std::string(100, 'A'))), "");
  FormCollector too_big(
      FormLimits{.max_file_bytes = 1000, .max_field_bytes = 10, .max_clip_field_bytes = 100},
      FieldPolicy{.clip = is_clip_field});
  EXPECT_EQ(collect_form(too_big, form_part("clips[]", std::string(101, 'A'))), "clips[]");
  // The clips and the file together stay within the upload limit.
  FormCollector shared(FormLimits{.max_file_bytes = 250, .max_clip_field_bytes = 100},
                       FieldPolicy{.clip = is_clip_field});
  const std::string message =
      collect_form(shared, form_part("clips[]", std::string(100, 'A')) +
                               form_part("clips[]", std::string(100, 'A')) +
                               form_part("file", std::string(60, 'x'), true));
  EXPECT_NE(message.find("MAX_UPLOAD_BYTES"), std::string::npos) << message;
  // Without a clip policy the same field is text, bounded as text.
  FormCollector text(FormLimits{.max_field_bytes = 10}, FieldPolicy{});
  EXPECT_EQ(collect_form(text, form_part("clips[]", std::string(11, 'A'))), "clips[]");
}

TEST(FormCollector, ClipBytesAreReservedFromTheMemoryBudget) {
  MemoryBudget budget(150);
  MemoryBudget::Reservation reservation(budget);
  FormCollector form(FormLimits{.max_clip_field_bytes = 1000}, FieldPolicy{.clip = is_clip_field},
                     &reservation);
  const std::string message = collect_form(form, form_part("clips[]", std::string(200, 'A')));
  EXPECT_NE(message.find("MAX_BUFFERED_UPLOAD_BYTES"), std::string::npos) << message;
}

}  // namespace
}  // namespace sra::http
