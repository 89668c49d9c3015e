#include "http/formats.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/languages.h"
#include "core/text.h"

namespace sra::http {
namespace {

// `text` with every "-->" made "->": inside a cue it would end the cue line early.
std::string without_arrows(std::string text) {
  for (std::size_t at = text.find("-->"); at != std::string::npos; at = text.find("-->", at)) {
    text.replace(at, 3, "->");
  }
  return text;
}

// Subtitle cue text: stripped, and "-->" cannot appear inside a cue (whisper.utils does this).
std::string cue_text(const std::string& text) {
  return without_arrows(strip(text));
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

// Python's len() of UTF-8 text: code points.
std::size_t text_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

struct Cue {
  double start = 0;
  double end = 0;
  std::string text;
  std::string speaker;  // diarized: who speaks in the cue (its first word's speaker)
};

bool has_words(const Transcription& t) {
  for (const auto& s : t.segments)
    if (!s.words.empty()) return true;
  return false;
}

// whisper.utils.SubtitlesWriter.iterate_result's iterate_subtitles: words grouped into lines and
// cues. Each word of a cue keeps its leading space, or a line break before it.
std::vector<std::vector<Word>> word_subtitles(const Transcription& t, const SubtitleOptions& o) {
  const bool preserve_segments = !o.max_line_count || !o.max_line_width;
  const std::size_t max_line_width = static_cast<std::size_t>(o.max_line_width.value_or(1000));
  const std::size_t max_words = static_cast<std::size_t>(o.max_words_per_line.value_or(1000));
  std::vector<std::vector<Word>> out;
  std::size_t line_len = 0;
  int line_count = 1;
  std::vector<Word> subtitle;
  double last = 0;  // get_start: the first word's start
  for (const auto& s : t.segments) {
    if (!s.words.empty()) {
      last = s.words.front().start;
      break;
    }
  }
  for (const auto& segment : t.segments) {
    for (std::size_t chunk = 0; chunk < segment.words.size(); chunk += max_words) {
      std::size_t count = std::min(max_words, segment.words.size() - chunk);
      for (std::size_t i = 0; i < count; ++i) {
        Word timing = segment.words[chunk + i];
        bool long_pause = !preserve_segments && timing.start - last > 3.0;
        bool has_room = line_len + text_length(timing.word) <= max_line_width;
        bool seg_break = i == 0 && !subtitle.empty() && preserve_segments;
        if (line_len > 0 && has_room && !long_pause && !seg_break) {
          line_len += text_length(timing.word);  // the line goes on
        } else {
          timing.word = strip(timing.word);
          if ((!subtitle.empty() && o.max_line_count &&
               (long_pause || line_count >= *o.max_line_count)) ||
              seg_break) {
            out.push_back(std::move(subtitle));  // a new cue
            subtitle.clear();
            line_count = 1;
          } else if (line_len > 0) {
            ++line_count;  // a new line
            timing.word = "\n" + timing.word;
          }
          line_len = text_length(strip(timing.word));
        }
        last = timing.start;
        subtitle.push_back(std::move(timing));
      }
    }
  }
  if (!subtitle.empty()) out.push_back(std::move(subtitle));
  return out;
}

// `word` underlined after its leading white space ("\nword" -> "\n<u>word</u>").
std::string underline(const std::string& word) {
  std::size_t body = 0;
  while (body < word.size() && std::isspace(static_cast<unsigned char>(word[body]))) ++body;
  return word.substr(0, body) + "<u>" + word.substr(body) + "</u>";
}

// The cues of a transcription: from words when it has them, else one per segment with text.
std::vector<Cue> subtitle_cues(const Transcription& t, const SubtitleOptions& o,
                               char decimal_marker) {
  std::vector<Cue> out;
  if (!has_words(t)) {
    for (const auto& s : cues(t)) out.push_back({s.start, s.end, cue_text(s.text), s.speaker});
    return out;
  }
  // Words are written as they are (OpenAI's writer strips nothing), but without arrows.
  for (const auto& subtitle : word_subtitles(t, o)) {
    std::string text;
    for (const auto& w : subtitle) text += w.word;
    if (!o.highlight_words) {
      out.push_back({subtitle.front().start, subtitle.back().end, without_arrows(text),
                     subtitle.front().speaker});
      continue;
    }
    // A cue per word with that word underlined, and the whole text in the gaps between words.
    double last = subtitle.front().start;
    for (std::size_t i = 0; i < subtitle.size(); ++i) {
      const Word& w = subtitle[i];
      if (subtitle_time(last, decimal_marker) != subtitle_time(w.start, decimal_marker))
        out.push_back({last, w.start, without_arrows(text), subtitle.front().speaker});
      std::string marked;
      for (std::size_t j = 0; j < subtitle.size(); ++j)
        marked += j == i ? underline(subtitle[j].word) : subtitle[j].word;
      out.push_back({w.start, w.end, without_arrows(marked), subtitle.front().speaker});
      last = w.end;
    }
  }
  return out;
}

OptionSpec subtitle_spec(std::string name, OptionType type, double max, std::string doc) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = type;
  s.default_text = type == OptionType::boolean ? "`false`" : "none";
  s.doc = std::move(doc);
  s.min = 1;
  s.max = max;
  s.nullable = type != OptionType::boolean;
  return s;
}

}  // namespace

std::optional<ResponseFormat> parse_response_format(const std::string& name) {
  if (name == "json") return ResponseFormat::json;
  if (name == "text") return ResponseFormat::text;
  if (name == "srt") return ResponseFormat::srt;
  if (name == "vtt") return ResponseFormat::vtt;
  if (name == "verbose_json") return ResponseFormat::verbose_json;
  if (name == "diarized_json") return ResponseFormat::diarized_json;
  if (name == "rttm") return ResponseFormat::rttm;
  return std::nullopt;
}

const char* content_type(ResponseFormat format) {
  switch (format) {
    case ResponseFormat::json:
    case ResponseFormat::verbose_json:
    case ResponseFormat::diarized_json:
      return "application/json";
    case ResponseFormat::text:
    case ResponseFormat::rttm:
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

// Width and count bound what one cue holds (2,000 characters), and with highlight_words the
// response (a cue per word, each with its whole cue): about 2 kB per word of the transcript.
const std::vector<OptionSpec>& subtitle_option_specs() {
  using T = OptionType;
  static const std::vector<OptionSpec> table = {
      subtitle_spec("max_line_width", T::integer, 200,
                    "srt/vtt with word times: characters per line before a line break"),
      subtitle_spec("max_line_count", T::integer, 10,
                    "srt/vtt with word times and max_line_width: lines per cue"),
      subtitle_spec("max_words_per_line", T::integer, 1000,
                    "srt/vtt with word times: words per line"),
      subtitle_spec("highlight_words", T::boolean, 1,
                    "srt/vtt with word times: a cue per word, the word underlined"),
  };
  return table;
}

SubtitleOptions parse_subtitle_options(
    const std::function<std::optional<std::string>(const std::string&)>& field) {
  SubtitleOptions o;
  for (const auto& spec : subtitle_option_specs()) {
    auto text = field(spec.name);
    if (!text) continue;
    ParsedOption v = parse_option(spec, *text);
    std::optional<int> number;
    if (!v.unset) number = static_cast<int>(v.number);
    if (spec.name == "max_line_width") o.max_line_width = number;
    if (spec.name == "max_line_count") o.max_line_count = number;
    if (spec.name == "max_words_per_line") o.max_words_per_line = number;
    if (spec.name == "highlight_words") o.highlight_words = v.flag;
  }
  return o;
}

boost::json::value verbose_json(const Transcription& t, const std::string& task,
                                const RenderOptions& options) {
  namespace json = boost::json;
  json::array segments;
  for (const auto& s : t.segments) {
    json::array tokens;
    for (int id : s.tokens) tokens.emplace_back(id);
    json::object segment{{"id", s.id},
                         {"seek", s.seek},
                         {"start", round3(s.start)},
                         {"end", round3(s.end)},
                         {"text", s.text},
                         {"tokens", std::move(tokens)},
                         {"temperature", s.temperature},
                         {"avg_logprob", s.avg_logprob},
                         {"compression_ratio", s.compression_ratio},
                         {"no_speech_prob", s.no_speech_prob}};
    if (t.diarized) segment["speaker"] = s.speaker;
    segments.emplace_back(std::move(segment));
  }
  // OpenAI names the language in words ("english").
  std::string language = language_name(t.language);
  if (language.empty()) language = t.language;
  json::object out{
      {"task", task}, {"language", language}, {"duration", round3(t.duration)}, {"text", t.text}};
  if (options.words) {
    // OpenAI's TranscriptionWord (the word without its leading space, start, end), plus the
    // probability as faster-whisper servers give it.
    json::array words;
    for (const auto& s : t.segments) {
      for (const auto& w : s.words) {
        json::object word{{"word", strip(w.word)},
                          {"start", w.start},
                          {"end", w.end},
                          {"probability", w.probability}};
        if (t.diarized) word["speaker"] = w.speaker;
        words.emplace_back(std::move(word));
      }
    }
    out["words"] = std::move(words);
  }
  if (options.segments) out["segments"] = std::move(segments);
  if (options.logprobs) out["logprobs"] = transcript_logprobs(t);
  if (options.usage) out["usage"] = duration_usage(t.duration);
  return out;
}

boost::json::value diarized_json(const Transcription& t, const std::string& task,
                                 const RenderOptions& options) {
  namespace json = boost::json;
  json::array segments;
  for (const auto& s : t.segments) {
    if (strip(s.text).empty()) continue;
    segments.emplace_back(json::object{{"type", "transcript.text.segment"},
                                       {"id", "seg_" + std::to_string(segments.size())},
                                       {"start", round3(s.start)},
                                       {"end", round3(s.end)},
                                       {"text", s.text},
                                       {"speaker", s.speaker}});
  }
  json::object out{{"task", task},
                   {"duration", round3(t.duration)},
                   {"text", t.text},
                   {"segments", std::move(segments)}};
  if (options.usage) out["usage"] = duration_usage(t.duration);
  return out;
}

boost::json::object duration_usage(double seconds) {
  return boost::json::object{{"type", "duration"}, {"seconds", round3(seconds)}};
}

boost::json::array transcript_logprobs(const Transcription& t) {
  boost::json::array out;
  for (const auto& s : t.segments) {
    boost::json::array one = logprobs_json(s.logprobs);
    for (auto& v : one) out.push_back(std::move(v));
  }
  return out;
}

std::string render(const Transcription& t, ResponseFormat format, const std::string& task,
                   const RenderOptions& options) {
  switch (format) {
    case ResponseFormat::json: {
      boost::json::object out{{"text", t.text}};
      if (options.logprobs) out["logprobs"] = transcript_logprobs(t);
      if (options.usage) out["usage"] = duration_usage(t.duration);
      return boost::json::serialize(out);
    }
    case ResponseFormat::verbose_json:
      return boost::json::serialize(verbose_json(t, task, options));
    case ResponseFormat::diarized_json:
      return boost::json::serialize(diarized_json(t, task, options));
    case ResponseFormat::rttm: {
      std::string out;
      char line[256];
      for (const auto& turn : t.speaker_turns) {
        std::snprintf(line, sizeof line, " 1 %.3f %.3f <NA> <NA> ", turn.start,
                      turn.end - turn.start);
        out += "SPEAKER " + task + line + turn.speaker + " <NA> <NA>\n";
      }
      return out;
    }
    case ResponseFormat::text:
      return t.text + "\n";
    case ResponseFormat::srt: {
      std::string out;
      int index = 1;
      for (const auto& c : subtitle_cues(t, options.subtitles, ',')) {
        out += std::to_string(index++) + "\n" + subtitle_time(c.start, ',') + " --> " +
               subtitle_time(c.end, ',') + "\n" +
               (c.speaker.empty() ? "" : "[" + c.speaker + "] ") + c.text + "\n\n";
      }
      return out;
    }
    case ResponseFormat::vtt: {
      std::string out = "WEBVTT\n\n";
      for (const auto& c : subtitle_cues(t, options.subtitles, '.')) {
        out += subtitle_time(c.start, '.') + " --> " + subtitle_time(c.end, '.') + "\n" +
               (c.speaker.empty() ? "" : "<v " + c.speaker + ">") + c.text + "\n\n";
      }
      return out;
    }
  }
  return {};
}

}  // namespace sra::http
