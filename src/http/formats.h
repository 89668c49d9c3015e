// Response formats of a transcription, as OpenAI's transcription API writes them: json, text,
// srt, vtt, verbose_json (with OpenAI's flat `words` list when word times were asked for) and
// diarized_json. A diarized transcription also puts `speaker` on verbose_json's segments and
// words, WebVTT voice tags (`<v A>`) on vtt cues and a `[A]` prefix on srt cues.
// With word times, srt and vtt cues are laid out as whisper.utils' subtitle writers do it
// (max_line_width, max_line_count, max_words_per_line, highlight_words), those options declared
// once in subtitle_option_specs(). Pure functions; safe from any thread.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/option_table.h"
#include "core/transcription.h"

namespace sra::http {

// diarized_json: OpenAI's TranscriptionDiarized (segments with `speaker`, `type`
// "transcript.text.segment").
// rttm: NIST's speaker turns (not OpenAI's), one `SPEAKER` line per turn.
enum class ResponseFormat { json, text, srt, vtt, verbose_json, diarized_json, rttm };

// How srt and vtt cues are laid out when the segments have words (whisper.utils.SubtitlesWriter).
struct SubtitleOptions {
  std::optional<int> max_line_width;      // characters per line, lines broken between words
  std::optional<int> max_line_count;      // lines per cue (with max_line_width: cues ignore
                                          // segment boundaries and break at pauses over 3 s)
  std::optional<int> max_words_per_line;  // words per line
  bool highlight_words = false;           // a cue per word, the word underlined (<u>)
  // True when any option is set (they need word timestamps).
  bool any() const {
    return max_line_width || max_line_count || max_words_per_line || highlight_words;
  }
};

// What a response holds beyond the text.
struct RenderOptions {
  bool segments = true;  // verbose_json: the `segments` list
  bool words = false;    // verbose_json: OpenAI's flat `words` list (word, start, end, probability)
  SubtitleOptions subtitles;  // srt, vtt
  bool logprobs = false;      // json, verbose_json: OpenAI's `logprobs` list of the text tokens
  bool usage = false;         // json, verbose_json: OpenAI's `usage` (duration, seconds)
};

// OpenAI's usage of a transcription billed by duration: {"type": "duration", "seconds": s}.
boost::json::object duration_usage(double seconds);
// OpenAI's logprobs list of every segment's text tokens, in order.
boost::json::array transcript_logprobs(const Transcription& t);

// The subtitle options as request fields: name, type, bounds, doc.
const std::vector<OptionSpec>& subtitle_option_specs();
// The subtitle options among a request's fields (`field(name)` gives a field's value, if sent).
// Throws sra::Error(invalid_request, field) for a value outside its bounds.
SubtitleOptions parse_subtitle_options(
    const std::function<std::optional<std::string>(const std::string&)>& field);

// nullopt for a name that is not a format.
std::optional<ResponseFormat> parse_response_format(const std::string& name);
const char* content_type(ResponseFormat format);

// The body for `format`. `task` is "transcribe" or "translate" (verbose_json names it); rttm
// names the recording `task` too.
std::string render(const Transcription& t, ResponseFormat format, const std::string& task,
                   const RenderOptions& options = {});
boost::json::value verbose_json(const Transcription& t, const std::string& task,
                                const RenderOptions& options = {});
// OpenAI's TranscriptionDiarized: task, duration, text, segments (type, id, start, end, text,
// speaker), usage when asked.
boost::json::value diarized_json(const Transcription& t, const std::string& task,
                                 const RenderOptions& options = {});

// "00:01:02,345" (srt) or "00:01:02.345" (vtt).
std::string subtitle_time(double seconds, char decimal_marker);

}  // namespace sra::http
