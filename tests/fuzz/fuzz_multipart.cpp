// libFuzzer harness: the streaming multipart parser and the form collector the routes use, fed
// the input in pieces whose sizes come from the input itself. Property: no crash, no unbounded
// growth (the collector's limits hold), every error is an sra::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/errors.h"
#include "http/form.h"
#include "http/multipart_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first byte picks the piece size (1..256): splits land everywhere across the corpus.
  std::size_t piece = static_cast<std::size_t>(static_cast<std::uint8_t>(input[0])) + 1;
  input.remove_prefix(1);
  // Every field is known here, so that the collector's bounds on fields are what is fuzzed;
  // fields whose name starts with "c" hold clips (bounded with the file).
  sra::http::FormCollector form(
      sra::http::FormLimits{.max_file_bytes = 64 * 1024, .max_clip_field_bytes = 16 * 1024},
      sra::http::FieldPolicy{
          .clip = [](std::string_view name) { return !name.empty() && name[0] == 'c'; }});
  try {
    sra::http::MultipartParser parser("xYzZY", form);
    for (std::size_t at = 0; at < input.size(); at += piece) {
      parser.feed(input.substr(at, piece));
      if (form.file_data().size() > 64 * 1024 + 65536) __builtin_trap();  // limit not enforced
      std::size_t field_bytes = 0;
      for (const auto& [name, value] : form.fields()) field_bytes += value.size();
      if (field_bytes > 256 * 1024 + 64 * 2 + 65536) __builtin_trap();  // fields unbounded
      std::size_t clip_bytes = 0;
      for (const auto& [name, values] : form.lists())
        for (const auto& value : values) clip_bytes += name[0] == 'c' ? value.size() : 0;
      if (clip_bytes + form.file_data().size() > 64 * 1024 + 65536) __builtin_trap();
    }
    parser.finish();
  } catch (const sra::Error&) {
  }
  return 0;
}
