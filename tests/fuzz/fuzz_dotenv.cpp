// libFuzzer harness: the .env parser (python-dotenv's syntax, with ${VAR} expansion). Property:
// no crash, no hang; a malformed file is an sra::Error naming the line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dotenv.h"
#include "core/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto values = sra::parse_dotenv(text, "fuzz.env", [](const std::string& name) {
      return name == "HOME" ? std::optional<std::string>("/root") : std::nullopt;
    });
    for (const auto& [k, v] : values) {
      if (k.empty()) __builtin_trap();  // a variable without a name was accepted
    }
  } catch (const sra::Error&) {
  }
  return 0;
}
