// Response formats of a transcription, as OpenAI's transcription API writes them: json, text,
// srt, vtt and verbose_json. Pure functions; safe from any thread.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "core/transcription.h"

namespace sra::http {

enum class ResponseFormat { json, text, srt, vtt, verbose_json };

// nullopt for a name that is not a format.
std::optional<ResponseFormat> parse_response_format(const std::string& name);
const char* content_type(ResponseFormat format);

// The body for `format`. `task` is "transcribe" or "translate" (verbose_json names it).
std::string render(const Transcription& t, ResponseFormat format, const std::string& task);
boost::json::value verbose_json(const Transcription& t, const std::string& task);

// "00:01:02,345" (srt) or "00:01:02.345" (vtt).
std::string subtitle_time(double seconds, char decimal_marker);

}  // namespace sra::http
