#include "http/formats.h"

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>

#include "core/languages.h"
#include "core/text.h"

namespace sra::http {
namespace {

// Subtitle cue text: stripped, and "-->" cannot appear inside a cue (whisper.utils does this).
std::string cue_text(const std::string& text) {
  std::string out = strip(text);
  for (std::size_t at = out.find("-->"); at != std::string::npos; at = out.find("-->", at)) {
    out.replace(at, 3, "->");
  }
  return out;
}

// Segments to write as cues; a model without segments gets one cue for the whole text.
std::vector<Segment> cues(const Transcription& t) {
  std::vector<Segment> out;
  for (const auto& s : t.segments) {
    if (!strip(s.text).empty()) out.push_back(s);
  }
  if (out.empty() && !strip(t.text).empty()) {
    Segment s;
    s.start = 0;
    s.end = t.duration;
    s.text = t.text;
    out.push_back(s);
  }
  return out;
}

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

}  // namespace

std::optional<ResponseFormat> parse_response_format(const std::string& name) {
  if (name == "json") return ResponseFormat::json;
  if (name == "text") return ResponseFormat::text;
  if (name == "srt") return ResponseFormat::srt;
  if (name == "vtt") return ResponseFormat::vtt;
  if (name == "verbose_json") return ResponseFormat::verbose_json;
  return std::nullopt;
}

const char* content_type(ResponseFormat format) {
  switch (format) {
    case ResponseFormat::json:
    case ResponseFormat::verbose_json:
      return "application/json";
    case ResponseFormat::text:
      return "text/plain; charset=utf-8";
    case ResponseFormat::srt:
      return "application/x-subrip; charset=utf-8";
    case ResponseFormat::vtt:
      return "text/vtt; charset=utf-8";
  }
  return "application/json";
}

std::string subtitle_time(double seconds, char decimal_marker) {
  auto ms = static_cast<long long>(std::llround(std::max(0.0, seconds) * 1000.0));
  long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
  char out[32];
  std::snprintf(out, sizeof out, "%02lld:%02lld:%02lld%c%03lld", h, m, s, decimal_marker, rest);
  return out;
}

boost::json::value verbose_json(const Transcription& t, const std::string& task) {
  namespace json = boost::json;
  json::array segments;
  for (const auto& s : t.segments) {
    json::array tokens;
    for (int id : s.tokens) tokens.emplace_back(id);
    segments.emplace_back(json::object{{"id", s.id},
                                       {"seek", s.seek},
                                       {"start", round3(s.start)},
                                       {"end", round3(s.end)},
                                       {"text", s.text},
                                       {"tokens", std::move(tokens)},
                                       {"temperature", s.temperature},
                                       {"avg_logprob", s.avg_logprob},
                                       {"compression_ratio", s.compression_ratio},
                                       {"no_speech_prob", s.no_speech_prob}});
  }
  // OpenAI names the language in words ("english").
  std::string language = language_name(t.language);
  if (language.empty()) language = t.language;
  return json::object{{"task", task},
                      {"language", language},
                      {"duration", round3(t.duration)},
                      {"text", t.text},
                      {"segments", std::move(segments)}};
}

std::string render(const Transcription& t, ResponseFormat format, const std::string& task) {
  switch (format) {
    case ResponseFormat::json:
      return boost::json::serialize(boost::json::object{{"text", t.text}});
    case ResponseFormat::verbose_json:
      return boost::json::serialize(verbose_json(t, task));
    case ResponseFormat::text:
      return t.text + "\n";
    case ResponseFormat::srt: {
      std::string out;
      int index = 1;
      for (const auto& s : cues(t)) {
        out += std::to_string(index++) + "\n" + subtitle_time(s.start, ',') + " --> " +
               subtitle_time(s.end, ',') + "\n" + cue_text(s.text) + "\n\n";
      }
      return out;
    }
    case ResponseFormat::vtt: {
      std::string out = "WEBVTT\n\n";
      for (const auto& s : cues(t)) {
        out += subtitle_time(s.start, '.') + " --> " + subtitle_time(s.end, '.') + "\n" +
               cue_text(s.text) + "\n\n";
      }
      return out;
    }
  }
  return {};
}

}  // namespace sra::http
