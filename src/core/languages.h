// The languages Whisper knows: their codes in token order and English names, as OpenAI's
// whisper.tokenizer.LANGUAGES lists them. Shared by the engine (language tokens), the model
// options (names accepted for codes) and the response formats (verbose_json's language name).
// Immutable tables; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sra {

// Whisper's language codes in token order ("en" first ... "yue" last of 100).
const std::vector<std::string>& language_codes();
// English name of a language code ("en" -> "english"), or empty if unknown.
std::string language_name(std::string_view code);
// The code for a lower-case code or English name ("de" or "german" -> "de"), or nullopt.
std::optional<std::string> language_code_for(std::string_view code_or_name);

}  // namespace sra
